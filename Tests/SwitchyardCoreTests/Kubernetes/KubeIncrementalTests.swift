// The translation memo never changes a result: random clusters under random sequences of
// changes, translated (and validated) with the memo kept from step to step, must equal a
// translation from scratch after every step - routes, upstreams, certificates, problems,
// served Ingresses, and the validated objects with their origins.

import Testing

@testable import SwitchyardCore

/// A small deterministic generator (SplitMix64), so a failing seed can be replayed.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random cluster objects from small pools of names, hosts and paths, so that conflicts,
/// shared Services and Secrets, missing references and canaries happen often.
struct ClusterGenerator {
    var rng: SeededRandom
    var version = 0

    mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &rng)] }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    mutating func count(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }

    let namespaces = ["default", "shop"]
    let serviceNames = ["web", "api", "img", "old", "bbs"]
    let ingressNames = ["a", "b", "c", "d", "e", "f"]
    let hosts: [String?] = ["a.example", "a.example", "b.example", "b.example", "*.example", "A.Example", nil, "bad host"]
    let paths = ["/", "/", "/api", "/api", "/api/", "/img", "/img", "api", "/(v1|v2)/x"]
    let times = ["", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"]
    let secretNames = ["tls-a", "tls-b"]
    let peNames = ["vm1", "vm2"]

    mutating func meta(_ name: String, ns: String, annotations: [String: String] = [:], labels: [String: String] = [:]) -> K8sMeta {
        version += 1
        return K8sMeta(
            namespace: ns, name: name, uid: "uid-\(ns)-\(name)", resourceVersion: "\(version)", creationTimestamp: pick(times),
            annotations: annotations, labels: labels)
    }

    mutating func servicePort(_ i: Int) -> K8sServicePort {
        let targets: [K8sPort?] = [nil, .number(8080), .number(9090), .name("http")]
        return K8sServicePort(
            name: chance(0.5) ? "" : ["http", "admin"][i % 2], port: pick([80, 80, 443, 8080]) + i, targetPort: pick(targets))
    }

    mutating func service(_ name: String, ns: String) -> K8sService {
        var annotations: [String: String] = [:]
        if chance(0.4) { annotations[K8sService.physicalEndpointsAnnotation] = pick(["vm1", "vm2", "vm1, vm2", "vm3"]) }
        let ports = (0..<pick([0, 1, 1, 1, 2])).map { servicePort($0) }
        return K8sService(
            meta: meta(name, ns: ns, annotations: annotations), type: chance(0.1) ? "ExternalName" : "ClusterIP",
            hasSelector: chance(0.8), ports: ports, externalName: "x.example")
    }

    mutating func sliceEndpoint(ipv6: Bool) -> K8sSliceEndpoint {
        let address = ipv6 ? "fd00::\(count(1...6))" : chance(0.05) ? "not-an-ip" : "10.0.\(count(0...1)).\(count(1...6))"
        return K8sSliceEndpoint(
            addresses: [address], ready: pick([nil, true, true, false]), terminating: pick([nil, false, false, true]))
    }

    mutating func slice(_ name: String, ns: String) -> K8sEndpointSlice {
        let type = pick(["IPv4", "IPv4", "IPv6", "FQDN"])
        let ports = chance(0.2) ? [] : [K8sEndpointPort(name: pick(["", "http", "admin"]), port: pick([8080, 9090, nil]))]
        return K8sEndpointSlice(
            meta: meta(name, ns: ns, labels: [K8sEndpointSlice.serviceNameLabel: pick(serviceNames)]), addressType: type,
            endpoints: (0..<count(0...4)).map { _ in sliceEndpoint(ipv6: type == "IPv6") }, ports: ports)
    }

    mutating func endpoints(_ name: String, ns: String) -> K8sEndpoints {
        K8sEndpoints(
            meta: meta(name, ns: ns),
            subsets: [
                K8sEndpointSubset(
                    addresses: (0..<count(0...3)).map { _ in chance(0.1) ? "nope" : "10.1.0.\(count(1...5))" },
                    ports: [K8sEndpointPort(port: pick([8080, 9090]))])
            ])
    }

    mutating func physical(_ name: String, ns: String) -> K8sPhysicalEndpoint {
        K8sPhysicalEndpoint(
            meta: meta(name, ns: ns),
            endpoints: (0..<count(0...3)).map { _ in chance(0.1) ? "nope" : "10.2.0.\(count(1...4)):\(pick([8080, 80, 9090]))" },
            httpDetect: pick([nil, "/health", "bad"]), interval: pick([nil, 5, 0]))
    }

    mutating func secret(_ name: String, ns: String) -> K8sTLSSecret {
        K8sTLSSecret(
            meta: meta(name, ns: ns), certificate: chance(0.9) ? "cert-\(count(1...3))" : nil, key: chance(0.9) ? "key" : nil)
    }

    mutating func backend(_ field: String) -> K8sBackend {
        K8sBackend(
            service: pick(serviceNames + ["missing"]),
            port: chance(0.8) ? .number(pick([80, 81, 443, 8080])) : .name(pick(["http", "admin"])),
            field: field)
    }

    mutating func ingress(_ name: String, ns: String) -> K8sIngress {
        var annotations: [String: String] = [:]
        let options: [(String, [String])] = [
            ("nginx.ingress.kubernetes.io/use-regex", ["true"]),
            ("nginx.ingress.kubernetes.io/rewrite-target", ["/", "/$1"]),
            ("nginx.ingress.kubernetes.io/ssl-redirect", ["false", "true"]),
            ("nginx.ingress.kubernetes.io/force-ssl-redirect", ["true"]),
            ("nginx.ingress.kubernetes.io/canary", ["true"]),
            ("nginx.ingress.kubernetes.io/canary-weight", ["20"]),
            ("nginx.ingress.kubernetes.io/canary-by-header", ["X-Canary"]),
            ("nginx.ingress.kubernetes.io/load-balance", ["ewma", "round_robin"]),
            ("nginx.ingress.kubernetes.io/limit-rps", ["5", "-1"]),
            ("nginx.ingress.kubernetes.io/configuration-snippet", ["x"]),
            ("nginx.ingress.kubernetes.io/unknown-thing", ["x"]),
            (KubeTranslationOptions.legacyClassAnnotation, ["switchyard", "other"]),
        ]
        for (annotation, values) in options where chance(0.12) { annotations[annotation] = pick(values) }
        var out = K8sIngress(
            meta: meta(name, ns: ns, annotations: annotations), className: pick(["switchyard", "switchyard", "switchyard", nil, "other"]))
        for i in 0..<pick([0, 1, 1, 2]) {
            let rulePaths = (0..<count(1...3)).map { j -> K8sIngressPath in
                let at = "spec.rules[\(i)].http.paths[\(j)]"
                return K8sIngressPath(
                    path: pick(paths), pathType: pick(K8sPathType.allCases), backend: backend("\(at).backend"), field: at)
            }
            out.rules.append(K8sIngressRule(host: pick(hosts), paths: rulePaths, field: "spec.rules[\(i)]"))
        }
        if chance(0.3) { out.defaultBackend = backend("spec.defaultBackend") }
        if chance(0.4) {
            out.tls = [
                K8sIngressTLS(
                    hosts: [pick(["a.example", "B.example", "*.example"])], secretName: pick([nil, "", "tls-a", "tls-b", "tls-missing"]),
                    field: "spec.tls[0]")
            ]
        }
        return out
    }

    mutating func ingressClass(_ name: String) -> K8sIngressClass {
        K8sIngressClass(
            meta: meta(name, ns: "", annotations: chance(0.5) ? [K8sIngressClass.defaultClassAnnotation: "true"] : [:]),
            controller: chance(0.95) ? KubeTranslationOptions.defaultControllerName : "someone.else/controller")
    }

    /// A new or changed object of a random kind.
    mutating func object() -> K8sObject {
        let ns = pick(namespaces)
        switch count(0...9) {
        case 0, 1: return .ingress(ingress(pick(ingressNames), ns: ns))
        case 2: return .service(service(pick(serviceNames), ns: ns))
        case 3, 4: return .endpointSlice(slice("\(pick(serviceNames))-\(count(1...2))", ns: ns))
        case 5: return .endpoints(endpoints(pick(serviceNames), ns: ns))
        case 6: return .physicalEndpoint(physical(pick(peNames), ns: ns))
        case 7: return .secret(secret(pick(secretNames), ns: ns))
        case 8: return .ingressClass(ingressClass("switchyard"))
        default: return .endpointSlice(slice("\(pick(serviceNames))-1", ns: ns))
        }
    }

    /// One change: an object added or replaced, removed, or one endpoint's readiness flipped.
    /// (The IngressClass is replaced, by one of another controller at times, never removed:
    /// without it nothing is served and the steps would test little.)
    mutating func change(_ state: inout ClusterState) {
        switch count(0...5) {
        case 0:
            let all: [(String, K8sKey)] =
                state.ingresses.keys.map { ("Ingress", $0) } + state.services.keys.map { ("Service", $0) }
                + state.endpointSlices.keys.map { ("EndpointSlice", $0) } + state.secrets.keys.map { ("Secret", $0) }
                + state.physicalEndpoints.keys.map { ("PhysicalEndpoint", $0) } + state.endpoints.keys.map { ("Endpoints", $0) }

            guard !all.isEmpty else { return }
            let (kind, key) = pick(all.sorted { ($0.0, $0.1) < ($1.0, $1.1) })
            state.remove(kind: kind, key: key)
        case 1, 2:
            let keys = state.endpointSlices.keys.sorted()
            guard !keys.isEmpty else { return }
            var slice = state.endpointSlices[pick(keys)]!
            guard !slice.endpoints.isEmpty else { return }
            let i = count(0...(slice.endpoints.count - 1))
            slice.endpoints[i].ready = !(slice.endpoints[i].ready ?? true)
            version += 1
            slice.meta.resourceVersion = "\(version)"
            state.insert(.endpointSlice(slice))
        default:
            state.insert(object())
        }
    }
}

@Suite("Kubernetes translation: the memo gives what a translation from scratch gives")
struct KubeIncrementalTests {
    static let now = CertificateTests.now

    func lowering() -> KubeLowering { KubeLowering(validator: Validator(regex: PCRE2RegexChecker()), now: Self.now) }

    func expectSame(_ a: KubeDesired, _ b: KubeDesired, _ context: String) {
        #expect(a.routes == b.routes, "routes \(context)")
        #expect(a.upstreams == b.upstreams, "upstreams \(context)")
        #expect(a.certificates == b.certificates, "certificates \(context)")
        #expect(a.origins == b.origins, "origins \(context)")
        #expect(a.problems == b.problems, "problems \(context)")
    }

    static let seeds = 0..<24
    static let steps = 40

    /// Translates (and validates) a random cluster through `steps` random changes with the
    /// memos kept, comparing with a translation from scratch after every step; answers how
    /// many steps had valid routes and upstreams at all.
    @discardableResult
    func run(seed: Int) -> Int {
        var generator = ClusterGenerator(rng: SeededRandom(seed: UInt64(seed) &* 7919 &+ 17))
        let defaultBackend: K8sKey? = seed % 3 == 0 ? K8sKey("default", "web") : nil
        let options = KubeTranslationOptions(watchIngressWithoutClass: seed % 4 == 1, defaultBackend: defaultBackend)
        let translator = KubeTranslator(options: options)
        // our IngressClass, a Service with endpoints per name and namespace, then random objects
        var state = Kube.state([])
        for ns in generator.namespaces {
            for name in generator.serviceNames {
                state.insert(.service(generator.service(name, ns: ns)))
                state.insert(.endpointSlice(generator.slice("\(name)-1", ns: ns)))
            }
            for name in generator.ingressNames { state.insert(.ingress(generator.ingress(name, ns: ns))) }
        }
        for _ in 0..<generator.count(16...40) { state.insert(generator.object()) }
        var memo = KubeTranslationMemo()
        var validated = KubeLoweringMemo()
        var certificates = KubeCertificateCache()
        var stepsWithRoutes = 0
        for step in 0..<Self.steps {
            let incremental = translator.translate(state, memo: &memo)
            let fresh = translator.translate(state)
            #expect(incremental == fresh, "seed \(seed) step \(step)")
            if incremental != fresh { return stepsWithRoutes }
            var freshCertificates = KubeCertificateCache()
            let desired = lowering().lower(incremental, cache: &certificates, memo: &validated)
            expectSame(desired, lowering().lower(fresh, cache: &freshCertificates), "seed \(seed) step \(step)")
            if !desired.routes.isEmpty && !desired.upstreams.isEmpty { stepsWithRoutes += 1 }
            for _ in 0..<generator.count(1...3) { generator.change(&state) }
        }
        return stepsWithRoutes
    }

    @Test(arguments: seeds)
    func randomChangesGiveTheSameResultAsFromScratch(seed: Int) {
        run(seed: seed)
    }

    /// The generator must make clusters that translate to something most of the time, or the
    /// comparison above would prove little.
    @Test func theRandomClustersMostlyServeSomething() {
        let served = Self.seeds.map { run(seed: $0) }
        #expect(served.reduce(0, +) >= Self.seeds.count * Self.steps * 6 / 10, "steps with routes per seed: \(served)")
        #expect(served.allSatisfy { $0 > 0 }, "steps with routes per seed: \(served)")
    }

    @Test func aReadinessFlipChangesItsServicesUpstreamOnly() {
        var state = Kube.state([
            .service(Kube.service("web")), .service(Kube.service("api")),
            .endpointSlice(Kube.slice("web-1", service: "web", [Kube.ready("10.0.0.1"), Kube.ready("10.0.0.2")])),
            .endpointSlice(Kube.slice("api-1", service: "api", [Kube.ready("10.0.1.1")])),
            .ingress(Kube.ingress("i", rules: [("h.example", [Kube.P("/", .prefix, "web"), Kube.P("/api", .prefix, "api")])])),
        ])
        let translator = KubeTranslator()
        var memo = KubeTranslationMemo()
        let before = translator.translate(state, memo: &memo)
        var slice = state.endpointSlices[K8sKey("default", "web-1")]!
        slice.endpoints[1].ready = false
        state.insert(.endpointSlice(slice))
        let after = translator.translate(state, memo: &memo)
        #expect(after == translator.translate(state))
        let api = before.upstreams.first { $0.origin.key.name == "api" }!
        let web = after.upstreams.first { $0.origin.key.name == "web" }!
        #expect(after.addresses(web.id) == ["10.0.0.1:8080"])
        #expect(after.upstreams.first { $0.id == api.id } == api)
        #expect(after.routes == before.routes)
    }
}
