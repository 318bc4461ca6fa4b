import Testing

@testable import SwitchyardCore

@Suite("Kubernetes translation: annotations, TLS, canary")
struct KubeAnnotationTests {
    typealias P = Kube.P
    static let nginx = "nginx.ingress.kubernetes.io/"

    func translate(_ annotations: [String: String], paths: [P] = [P("/api", .prefix, "svc")], extra: [K8sObject] = []) -> KubeTranslation {
        let ingress = Kube.ingress("i", annotations: annotations, rules: [("h.example", paths)])
        return Kube.translate([.ingress(ingress), .service(Kube.service("svc")), .service(Kube.service("canary"))] + extra)
    }

    // (annotations, route member, expected JSON)
    @Test(arguments: [
        (["proxy-body-size": "8m"], "max_body_bytes", "8388608"),
        (["proxy-body-size": "512k"], "max_body_bytes", "524288"),
        (["proxy-read-timeout": "300"], "timeouts", #"{"read_ms":300000}"#),
        (
            ["proxy-connect-timeout": "5", "proxy-send-timeout": "30s", "proxy-read-timeout": "60"], "timeouts",
            #"{"connect_ms":5000,"send_ms":30000,"read_ms":60000}"#
        ),
        (["limit-rps": "10"], "rate_limit", #"{"rps":10,"burst":50,"key":"ip"}"#),
        (["limit-rps": "10", "limit-burst-multiplier": "2"], "rate_limit", #"{"rps":10,"burst":20,"key":"ip"}"#),
        (["whitelist-source-range": "10.0.0.0/8, 192.0.2.7"], "allow", #"["10.0.0.0/8","192.0.2.7"]"#),
        (["allowlist-source-range": "10.0.0.0/8"], "allow", #"["10.0.0.0/8"]"#),
        (["denylist-source-range": "10.6.6.0/24"], "deny", #"["10.6.6.0/24"]"#),
        (["force-ssl-redirect": "true"], "https_redirect", "true"),
        (["hsts": "true", "hsts-max-age": "600"], "hsts", #"{"max_age_s":600}"#),
        (["rewrite-target": "/v2"], "rewrite", #"{"replace_prefix":"/v2"}"#),
    ])
    func routeMembers(annotations: [String: String], member: String, expected: String) {
        let t = translate(Dictionary(uniqueKeysWithValues: annotations.map { (Self.nginx + $0.key, $0.value) }))
        #expect(t.problems == [])
        #expect(t.routes.first?.document[member] == Kube.json(expected))
        #expect(t.routes.first?.annotations[member]?.hasPrefix(Self.nginx) == true)
    }

    // (annotations, upstream member, expected JSON)
    @Test(arguments: [
        (["backend-protocol": "HTTPS"], "scheme", #""https""#),
        (["load-balance": "least_conn"], "balance", #""least_conn""#),
        (["upstream-hash-by": "$request_uri"], "hash_on", #""uri""#),
        (["upstream-hash-by": "$http_x_user_id"], "hash_on", #""header:x-user-id""#),
        (["upstream-hash-by": "$cookie_session"], "hash_on", #""cookie:session""#),
        (["affinity": "cookie", "session-cookie-name": "route"], "sticky", #"{"cookie":"route"}"#),
        (["affinity": "cookie"], "balance", #""sticky""#),
        (["proxy-next-upstream-tries": "3"], "retries", "2"),
    ])
    func upstreamMembers(annotations: [String: String], member: String, expected: String) {
        let t = translate(Dictionary(uniqueKeysWithValues: annotations.map { (Self.nginx + $0.key, $0.value) }))
        #expect(t.problems == [])
        #expect(t.upstreams.count == 1)
        #expect(t.upstreams.first?.document[member] == Kube.json(expected))
    }

    @Test func upstreamPolicyGivesAnUpstreamOfItsOwn() {
        let plain = Kube.ingress("plain", rules: [("a.example", [P("/", .prefix, "svc")])])
        let sticky = Kube.ingress(
            "sticky", annotations: [Self.nginx + "affinity": "cookie"], rules: [("b.example", [P("/", .prefix, "svc")])])
        let t = Kube.translate([.ingress(plain), .ingress(sticky), .service(Kube.service("svc"))])
        #expect(t.upstreams.count == 2)
        #expect(Set(t.routes.compactMap(\.upstream)).count == 2)
        #expect(Set(t.upstreams.map { $0.origin }) == [K8sRef("Service", "default", "svc")])
    }

    @Test func switchyardPrefixWinsOverNginx() {
        let t = translate([Self.nginx + "limit-rps": "10", "switchyard.io/limit-rps": "20"])
        #expect(t.routes.first?.document["rate_limit"]?["rps"] == .integer(20))
        #expect(t.routes.first?.annotations["rate_limit"] == "switchyard.io/limit-rps")
    }

    @Test func oldPrefixIsHonoured() {
        // the seed ingress-v1beta1.yaml writes ingress.kubernetes.io/ssl-redirect
        let t = translate(["ingress.kubernetes.io/force-ssl-redirect": "true"])
        #expect(t.problems == [])
        #expect(t.routes.first?.document["https_redirect"] == .bool(true))
    }

    @Test func unknownAndUnhonourableAnnotationsAreReportedNeverDropped() {
        let t = translate([
            Self.nginx + "auth-url": "http://auth", Self.nginx + "proxy-body-size": "200m", Self.nginx + "backend-protocol": "GRPC",
            "switchyard.io/made-up": "x", "kubectl.kubernetes.io/last-applied-configuration": "{}", Self.nginx + "limit-rps": "lots",
        ])
        #expect(t.routes.count == 1)
        #expect(t.routes.first?.document["max_body_bytes"] == nil)
        #expect(
            t.problems.map(\.field) == [
                "metadata.annotations.nginx.ingress.kubernetes.io/auth-url",
                "metadata.annotations.nginx.ingress.kubernetes.io/backend-protocol",
                "metadata.annotations.nginx.ingress.kubernetes.io/limit-rps",
                "metadata.annotations.nginx.ingress.kubernetes.io/proxy-body-size",
                "metadata.annotations.switchyard.io/made-up",
            ])
        #expect(t.problems.allSatisfy { $0.severity == .warning })
    }

    @Test func snippetsRefuseTheWholeIngress() {
        let t = translate([Self.nginx + "configuration-snippet": "more_set_headers x;"])
        #expect(t.routes.isEmpty)
        #expect(t.ingresses.isEmpty)
        #expect(t.problems.map(\.reason) == ["SnippetRefused"])
        #expect(t.problems.first?.severity == .error)
        let server = translate(["switchyard.io/server-snippet": "x"])
        #expect(server.routes.isEmpty)
    }

    @Test func rewriteTargetWithCaptureGroupsMakesARegexRoute() {
        let t = translate([Self.nginx + "rewrite-target": "/$2"], paths: [P("/something(/|$)(.*)", .implementationSpecific, "svc")])
        #expect(t.problems == [])
        let route = t.routes.first
        #expect(route?.match == "regex")
        #expect(route?.path == "(?i)^/something(/|$)(.*)")
        #expect(route?.document["rewrite"] == Kube.json(#"{"regex":"(?i)^/something(/|$)(.*)","replacement":"/$2"}"#))
    }

    @Test func rewriteTargetWithGroupsOnAPrefixPathIsAnError() {
        let t = translate(
            [Self.nginx + "rewrite-target": "/$1"], paths: [P("/api", .prefix, "svc"), P("/x(.*)", .implementationSpecific, "svc")])
        #expect(t.routes.map(\.match) == ["regex"])
        #expect(t.problems.map(\.field) == ["spec.rules[0].http.paths[0].pathType"])
    }

    // MARK: TLS

    func secret(_ name: String = "web-tls", cert: String? = "CERT", key: String? = "KEY") -> K8sObject {
        .secret(K8sTLSSecret(meta: Kube.meta(name), certificate: cert, key: key))
    }

    @Test func tlsSectionGivesACertificateAndRedirect() {
        let ingress = Kube.ingress(
            "i", rules: [("h.example", [P("/", .prefix, "svc")]), ("plain.example", [P("/", .prefix, "svc")])],
            tls: [(["h.example"], "web-tls")])
        let t = Kube.translate([.ingress(ingress), .service(Kube.service("svc")), secret()])
        #expect(t.problems == [])
        #expect(t.certificates.count == 1)
        let certificate = t.certificates[0]
        #expect(certificate.origin == K8sRef("Secret", "default", "web-tls"))
        #expect(certificate.hosts == ["h.example"])
        #expect(certificate.document == Kube.json(#"{"cert":"CERT","key":"KEY"}"#))
        #expect(Names.isValid(certificate.id))
        let secure = t.routes(host: "h.example", path: "/").first
        #expect(secure?.document["https_redirect"] == .bool(true))
        #expect(secure?.redirectCertificate == certificate.id)
        #expect(t.routes(host: "plain.example", path: "/").first?.document["https_redirect"] == nil)
    }

    @Test func sslRedirectFalseKeepsPlainHTTP() {
        let ingress = Kube.ingress(
            "i", annotations: [Self.nginx + "ssl-redirect": "false"], rules: [("h.example", [P("/", .prefix, "svc")])],
            tls: [(["h.example"], "web-tls")])
        let t = Kube.translate([.ingress(ingress), .service(Kube.service("svc")), secret()])
        #expect(t.certificates.count == 1)
        #expect(t.routes.first?.document["https_redirect"] == nil)
    }

    @Test func missingSecretIsReportedAndNoRedirect() {
        let ingress = Kube.ingress("i", rules: [("h.example", [P("/", .prefix, "svc")])], tls: [(["h.example"], "ghost")])
        let t = Kube.translate([.ingress(ingress), .service(Kube.service("svc"))])
        #expect(t.certificates.isEmpty)
        #expect(t.routes.count == 1)
        #expect(t.routes.first?.document["https_redirect"] == nil)
        #expect(t.problems.map(\.field) == ["spec.tls[0].secretName"])
        #expect(t.problems.first?.reason == "MissingSecret")
        #expect(t.problems.first?.severity == .warning)  // served without the certificate, as ingress-nginx does
    }

    @Test func oneSecretTwoIngressesOneCertificate() {
        let a = Kube.ingress("a", rules: [("a.example", [P("/", .prefix, "svc")])], tls: [(["a.example"], "web-tls")])
        let b = Kube.ingress("b", rules: [("b.example", [P("/", .prefix, "svc")])], tls: [(["b.example"], "web-tls")])
        let t = Kube.translate([.ingress(a), .ingress(b), .service(Kube.service("svc")), secret()])
        #expect(t.certificates.count == 1)
        #expect(t.certificates.first?.hosts == ["a.example", "b.example"])
        #expect(t.certificates.first?.usedBy == [K8sRef("Ingress", "default", "a"), K8sRef("Ingress", "default", "b")])
    }

    // MARK: Canary

    func canary(_ annotations: [String: String], path: P = P("/api", .prefix, "canary")) -> K8sIngress {
        var all = [Self.nginx + "canary": "true"]
        for (k, v) in annotations { all[Self.nginx + k] = v }
        return Kube.ingress("c", created: "2030-01-01T00:00:00Z", annotations: all, rules: [("h.example", [path])])
    }

    @Test func canaryWeightSplitsThePrimaryRoute() {
        let t = translate([:], extra: [.ingress(canary(["canary-weight": "20"]))])
        #expect(t.problems == [])
        #expect(t.routes.count == 1)
        let route = t.routes[0]
        #expect(route.upstream == nil)
        let split = route.document["split"]?.items ?? []
        #expect(split.map { t.service(ofUpstream: $0["upstream"]?.string) } == ["default/svc", "default/canary"])
        #expect(split.map { $0["weight"] } == [.integer(80), .integer(20)])
        #expect(t.ingresses.count == 2)
    }

    @Test func canaryByHeaderAndCookie() {
        let byHeader = translate([:], extra: [.ingress(canary(["canary-by-header": "X-Canary", "canary-by-header-value": "yes"]))])
        let member = byHeader.routes.first?.document["canary"]
        #expect(member?["header"] == "X-Canary")
        #expect(member?["value"] == "yes")
        #expect(byHeader.service(ofUpstream: member?["upstream"]?.string) == "default/canary")
        #expect(byHeader.service(ofUpstream: byHeader.routes.first?.upstream) == "default/svc")
        let byCookie = translate([:], extra: [.ingress(canary(["canary-by-cookie": "canary"]))])
        #expect(byCookie.routes.first?.document["canary"]?["cookie"] == "canary")
        #expect(byCookie.routes.first?.document["canary"]?["value"] == "always")
    }

    @Test func canaryWithoutPrimaryIsReported() {
        let t = translate([:], extra: [.ingress(canary(["canary-weight": "50"], path: P("/elsewhere", .prefix, "canary")))])
        #expect(t.routes.count == 1)
        #expect(t.routes.first?.document["split"] == nil)
        #expect(t.problems.map(\.reason) == ["CanaryWithoutPrimary"])
    }
}
