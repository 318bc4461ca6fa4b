import Testing

@testable import SwitchyardCore

@Suite("Kubernetes translation: validated by the admin API's rules")
struct KubeLoweringTests {
    typealias P = Kube.P
    static let now = CertificateTests.now

    func lower(_ t: KubeTranslation) -> KubeDesired {
        var cache = KubeCertificateCache()
        return KubeLowering(validator: Validator(regex: PCRE2RegexChecker()), now: Self.now).lower(t, cache: &cache)
    }

    @Test func validObjectsBecomeModelValuesWithTheirOrigins() {
        let ingress = Kube.ingress(
            "web", annotations: ["nginx.ingress.kubernetes.io/limit-rps": "5"],
            rules: [("h.example", [P("/exact", .exact, "svc"), P("/impl", .implementationSpecific, "svc")])])
        let slice = Kube.slice("s", service: "svc", [Kube.ready("10.0.0.1")])
        let desired = lower(Kube.translate([.ingress(ingress), .service(Kube.service("svc")), .endpointSlice(slice)]))
        #expect(desired.problems == [])
        #expect(desired.routes.count == 2)
        #expect(Set(desired.routes.map(\.match)) == [.exact, .prefix])
        #expect(desired.routes.allSatisfy { $0.policies.rateLimit == RateLimit(rps: 5, burst: 25, key: .ip) })
        #expect(desired.upstreams.map { $0.endpoints.map(\.address.description) } == [["10.0.0.1:8080"]])
        #expect(desired.origin(.route, desired.routes[0].id) == K8sRef("Ingress", "default", "web"))
        #expect(desired.origin(.upstream, desired.upstreams[0].name) == K8sRef("Service", "default", "svc"))
    }

    @Test func aValueTheRulesRefuseSkipsTheRouteAndNamesTheAnnotation() {
        let ingress = Kube.ingress(
            "web", annotations: ["nginx.ingress.kubernetes.io/whitelist-source-range": "10.0.0.1/8"],
            rules: [("h.example", [P("/a", .exact, "svc")])])
        let other = Kube.ingress("other", rules: [("o.example", [P("/a", .exact, "svc")])])
        let desired = lower(Kube.translate([.ingress(ingress), .ingress(other), .service(Kube.service("svc"))]))
        #expect(desired.routes.map(\.host) == ["o.example"])
        #expect(desired.problems.map(\.field) == ["metadata.annotations.nginx.ingress.kubernetes.io/whitelist-source-range"])
        #expect(desired.problems.first?.object == K8sRef("Ingress", "default", "web"))
        #expect(desired.problems.first?.severity == .error)
    }

    @Test func certificatesAreCheckedAndABrokenOneDropsItsRedirect() {
        let good = CertificateTests.make(["good.example"], issuer: CertificateTests.ca)
        let ingress = Kube.ingress(
            "web",
            rules: [
                ("good.example", [P("/", .exact, "svc")]), ("bad.example", [P("/", .exact, "svc")]),
                ("other.example", [P("/", .exact, "svc")]),
            ],
            tls: [(["good.example", "other.example"], "good"), (["bad.example"], "bad")])
        let t = Kube.translate([
            .ingress(ingress), .service(Kube.service("svc")),
            .secret(K8sTLSSecret(meta: Kube.meta("good"), certificate: good.certificate, key: good.key)),
            .secret(K8sTLSSecret(meta: Kube.meta("bad"), certificate: "not a certificate", key: "nor a key")),
        ])
        #expect(t.routes.filter { $0.document["https_redirect"] == .bool(true) }.count == 3)
        let desired = lower(t)
        #expect(desired.certificates.map(\.names) == [["good.example"]])
        #expect(desired.routes.count == 3)
        #expect(desired.routes.first { $0.host == "bad.example" }?.tls.httpsRedirect == false)
        #expect(desired.routes.first { $0.host == "good.example" }?.tls.httpsRedirect == true)
        #expect(
            desired.problems.map { "\($0.object) \($0.field) \($0.reason)" } == [
                "Secret default/bad data.tls.crt InvalidCertificate", "Secret default/good data.tls.crt CertificateNameMismatch",
            ])
    }

    @Test func theCertificateCacheChecksOncePerContent() {
        let good = CertificateTests.make(["good.example"], issuer: CertificateTests.ca)
        let t = Kube.translate([
            .ingress(Kube.ingress("web", rules: [("good.example", [P("/", .exact, "svc")])], tls: [(["good.example"], "good")])),
            .service(Kube.service("svc")), .secret(K8sTLSSecret(meta: Kube.meta("good"), certificate: good.certificate, key: good.key)),
        ])
        var cache = KubeCertificateCache()
        let lowering = KubeLowering(now: Self.now)
        _ = lowering.lower(t, cache: &cache)
        #expect(cache.entries.count == 1)
        // a cached failure for the same text is served from the cache: poison the entry and see it come back
        let id = t.certificates[0].id
        cache.entries[id]!.result = .failure(CertificateValidator.Failure(problems: [("cert", "unparsable", "cached")]))
        #expect(lowering.lower(t, cache: &cache).certificates.isEmpty)
        // changed text is checked again
        var rotated = t
        let next = CertificateTests.make(["good.example"], issuer: CertificateTests.ca)
        rotated.certificates[0].certificatePEM = next.certificate
        rotated.certificates[0].keyPEM = next.key
        #expect(lowering.lower(rotated, cache: &cache).certificates.count == 1)
        // gone from the translation, gone from the cache
        _ = lowering.lower(KubeTranslation(), cache: &cache)
        #expect(cache.entries.isEmpty)
    }

    @Test func catchAllHostIsAValidRouteHost() throws {
        let route = try Validator(regex: PCRE2RegexChecker()).route(Kube.json(#"{"host":"*","path":"/","upstream":"u"}"#), id: "any").get()
        #expect(route.host == "*")
        #expect(throws: HostNameError.self) { try HostNames.canonical("*x").get() }
    }

    /// segment_prefix, one_label wildcards, the catch-all host and `health_check: false` are
    /// the k8s-model.md contract: this passes once the model (H3's branch) accepts them.
    @Test func contractFieldsPassValidation() {
        let ingress = Kube.ingress(
            "web",
            rules: [("*.apps.example", [P("/api/", .prefix, "test-service", 10001)]), (nil, [P("/", .prefix, "test-service", 10001)])])
        let service = Kube.service(
            "test-service", ports: [K8sServicePort(port: 10001, targetPort: .number(10001))],
            annotations: [K8sService.physicalEndpointsAnnotation: "machines"])
        let slice = Kube.slice("s", service: "test-service", ports: [K8sEndpointPort(port: 10001)], [Kube.ready("10.1.0.5")])
        let physical = K8sPhysicalEndpoint(meta: Kube.meta("machines"), endpoints: ["192.0.2.1:10001"], httpDetect: "/conf/", interval: 10)
        let desired = lower(Kube.translate([.ingress(ingress), .service(service), .endpointSlice(slice), .physicalEndpoint(physical)]))
        #expect(desired.problems == [])
        #expect(desired.routes.count == 2)
        #expect(desired.upstreams.count == 1)
        #expect(desired.upstreams.first?.healthCheck?.path == "/conf/")
    }
}
