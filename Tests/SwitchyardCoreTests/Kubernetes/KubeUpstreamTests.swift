import Testing

@testable import SwitchyardCore

@Suite("Kubernetes translation: upstreams from Services, slices, Endpoints, PhysicalEndpoints")
struct KubeUpstreamTests {
    typealias P = Kube.P

    func upstream(of objects: [K8sObject], service: String = "svc", port: Int = 80) -> (KubeTranslation, KubeUpstreamDraft?) {
        let ingress = Kube.ingress("i", rules: [("h.example", [P("/", .prefix, service, port)])])
        let t = Kube.translate([.ingress(ingress)] + objects)
        return (t, t.upstreams.first)
    }

    func addresses(_ draft: KubeUpstreamDraft?) -> [String] {
        (draft?.document["endpoints"]?.items ?? []).compactMap { $0["address"]?.string }
    }

    @Test func readyEndpointsOnlyTerminatingNeverUnknownCountsAsReady() {
        let slice = Kube.slice(
            "s1", service: "svc",
            [
                K8sSliceEndpoint(addresses: ["10.0.0.1"], ready: true),
                K8sSliceEndpoint(addresses: ["10.0.0.2"], ready: false),
                K8sSliceEndpoint(addresses: ["10.0.0.3"], ready: nil),
                K8sSliceEndpoint(addresses: ["10.0.0.4"], ready: false, terminating: true),
            ])
        let (t, draft) = upstream(of: [.service(Kube.service("svc")), .endpointSlice(slice)])
        #expect(t.problems == [])
        #expect(addresses(draft) == ["10.0.0.1:8080", "10.0.0.3:8080"])
        #expect(draft?.document["health_check"] == nil)
        #expect(draft?.document["endpoints"]?.items.first?["health_check"] == nil)
    }

    @Test func targetPortByNameThroughTheSlicePortName() {
        let service = Kube.service(
            "svc", ports: [K8sServicePort(name: "web", port: 80, targetPort: .name("http")), K8sServicePort(name: "admin", port: 9000)])
        let slice = Kube.slice(
            "s1", service: "svc", ports: [K8sEndpointPort(name: "web", port: 8081), K8sEndpointPort(name: "admin", port: 9001)],
            [Kube.ready("10.0.0.1", "10.0.0.2")])
        let (_, draft) = upstream(of: [.service(service), .endpointSlice(slice)])
        #expect(addresses(draft) == ["10.0.0.1:8081", "10.0.0.2:8081"])
        let (_, admin) = upstream(of: [.service(service), .endpointSlice(slice)], port: 9000)
        #expect(addresses(admin) == ["10.0.0.1:9001", "10.0.0.2:9001"])
    }

    @Test func numericTargetPortFallbackWhenNoSlicePortMatchesByName() {
        let service = Kube.service("svc", ports: [K8sServicePort(name: "web", port: 80, targetPort: .number(7000))])
        let slice = Kube.slice("s1", service: "svc", ports: [K8sEndpointPort(name: "other", port: 1)], [Kube.ready("10.0.0.1")])
        let (_, draft) = upstream(of: [.service(service), .endpointSlice(slice)])
        #expect(addresses(draft) == ["10.0.0.1:7000"])
    }

    @Test func ipv6SlicesAndDuplicatesAcrossSlices() {
        let v4 = Kube.slice("a", service: "svc", [Kube.ready("10.0.0.1")])
        let v4again = Kube.slice("b", service: "svc", [Kube.ready("10.0.0.1")])
        let v6 = Kube.slice("c", service: "svc", type: "IPv6", [Kube.ready("fd00::1")])
        let fqdn = Kube.slice("d", service: "svc", type: "FQDN", [Kube.ready("pod.example")])
        let (t, draft) = upstream(of: [
            .service(Kube.service("svc")), .endpointSlice(v4), .endpointSlice(v4again), .endpointSlice(v6), .endpointSlice(fqdn),
        ])
        #expect(addresses(draft) == ["10.0.0.1:8080", "[fd00::1]:8080"])
        #expect(t.problems.map(\.object) == [K8sRef("EndpointSlice", "default", "d")])
        #expect(t.problems.first?.severity == .warning)
    }

    @Test func slicesOfOtherServicesAndNamespacesAreNotMixedIn() {
        let mine = Kube.slice("a", service: "svc", [Kube.ready("10.0.0.1")])
        let other = Kube.slice("b", service: "other", [Kube.ready("10.0.0.2")])
        let elsewhere = Kube.slice("c", service: "svc", ns: "elsewhere", [Kube.ready("10.0.0.3")])
        let (_, draft) = upstream(of: [
            .service(Kube.service("svc")), .endpointSlice(mine), .endpointSlice(other), .endpointSlice(elsewhere),
        ])
        #expect(addresses(draft) == ["10.0.0.1:8080"])
    }

    @Test func selectorlessServiceWithHandWrittenEndpoints() {
        let service = Kube.service(
            "bbs-frontend", ports: [K8sServicePort(name: "http", port: 8001, targetPort: .number(8001))], selector: false)
        let endpoints = K8sEndpoints(
            meta: Kube.meta("bbs-frontend"),
            subsets: [
                K8sEndpointSubset(
                    addresses: ["192.0.2.57"], notReadyAddresses: ["192.0.2.58"], ports: [K8sEndpointPort(name: "http", port: 8001)])
            ])
        let (t, draft) = upstream(of: [.service(service), .endpoints(endpoints)], service: "bbs-frontend", port: 8001)
        #expect(t.problems == [])
        #expect(addresses(draft) == ["192.0.2.57:8001"])
    }

    @Test func slicesWinOverEndpointsWhenBothExist() {
        // a cluster mirrors Endpoints into slices: reading both would double nothing, but the
        // slices are the source of truth
        let endpoints = K8sEndpoints(
            meta: Kube.meta("svc"), subsets: [K8sEndpointSubset(addresses: ["10.9.9.9"], ports: [K8sEndpointPort(port: 8080)])])
        let slice = Kube.slice("s", service: "svc", [Kube.ready("10.0.0.1")])
        let (_, draft) = upstream(of: [.service(Kube.service("svc")), .endpoints(endpoints), .endpointSlice(slice)])
        #expect(addresses(draft) == ["10.0.0.1:8080"])
    }

    @Test func serviceWithoutEndpointsIsAnEmptyUpstream() {
        let (t, draft) = upstream(of: [.service(Kube.service("svc"))])
        #expect(t.problems == [])
        #expect(draft != nil)
        #expect(addresses(draft) == [])
    }

    // MARK: PhysicalEndpoint

    func physical(_ name: String = "machines", endpoints: [String], detect: String? = "/conf/", interval: Int? = 10) -> K8sPhysicalEndpoint
    {
        K8sPhysicalEndpoint(meta: Kube.meta(name, ns: "test"), endpoints: endpoints, httpDetect: detect, interval: interval)
    }

    func annotated(_ names: String, ports: [K8sServicePort] = [K8sServicePort(port: 10001, targetPort: .number(10001))]) -> K8sService {
        Kube.service("test-service", ns: "test", ports: ports, annotations: [K8sService.physicalEndpointsAnnotation: names])
    }

    func translateTest(_ objects: [K8sObject], port: Int = 10001) -> (KubeTranslation, KubeUpstreamDraft?) {
        let ingress = Kube.ingress("i", ns: "test", rules: [("h.example", [P("/", .prefix, "test-service", port)])])
        let t = Kube.translate([.ingress(ingress)] + objects)
        return (t, t.upstreams.first)
    }

    @Test func physicalMachinesJoinPodsAndOnlyTheyAreChecked() {
        let slice = Kube.slice("s", service: "test-service", ns: "test", ports: [K8sEndpointPort(port: 10001)], [Kube.ready("10.1.0.5")])
        let (t, draft) = translateTest([
            .service(annotated("machines")), .endpointSlice(slice),
            .physicalEndpoint(physical(endpoints: ["192.0.2.1:10001", "192.0.2.2:10001"])),
        ])
        #expect(t.problems == [])
        let endpoints = draft?.document["endpoints"]?.items ?? []
        #expect(endpoints.compactMap { $0["address"]?.string } == ["10.1.0.5:10001", "192.0.2.1:10001", "192.0.2.2:10001"])
        // pods are exempt (Kubernetes readiness decides); machines are checked
        #expect(endpoints.map { $0["health_check"] } == [.bool(false), nil, nil])
        #expect(draft?.document["health_check"] == Kube.json(#"{"type":"http","path":"/conf/","interval_ms":10000}"#))
        #expect(draft?.physical == [K8sKey("test", "machines"): ["192.0.2.1:10001", "192.0.2.2:10001"]])
    }

    @Test func physicalEndpointWithoutHttpDetectHasNoCheck() {
        let slice = Kube.slice("s", service: "test-service", ns: "test", ports: [K8sEndpointPort(port: 10001)], [Kube.ready("10.1.0.5")])
        let (_, draft) = translateTest([
            .service(annotated("machines")), .endpointSlice(slice),
            .physicalEndpoint(physical(endpoints: ["192.0.2.1:10001"], detect: nil, interval: nil)),
        ])
        #expect(draft?.document["health_check"] == nil)
        #expect((draft?.document["endpoints"]?.items ?? []).allSatisfy { $0["health_check"] == nil })
    }

    @Test func malformedPhysicalEndpointIsReportedAndSkippedPodsStay() {
        let slice = Kube.slice("s", service: "test-service", ns: "test", ports: [K8sEndpointPort(port: 10001)], [Kube.ready("10.1.0.5")])
        let (t, draft) = translateTest([
            .service(annotated("broken,good")), .endpointSlice(slice),
            .physicalEndpoint(physical("broken", endpoints: ["not-an-address", "192.0.2.9:10001"])),
            .physicalEndpoint(physical("good", endpoints: ["192.0.2.1:10001"])),
        ])
        #expect(addresses(draft) == ["10.1.0.5:10001", "192.0.2.1:10001"])
        #expect(t.problems.map(\.object) == [K8sRef("PhysicalEndpoint", "test", "broken")])
        #expect(t.problems.map(\.field) == ["spec.endpoints[0]"])
    }

    @Test func missingPhysicalEndpointIsReportedOnTheService() {
        let (t, draft) = translateTest([.service(annotated("ghost"))])
        #expect(draft != nil)
        #expect(t.problems.map(\.object) == [K8sRef("Service", "test", "test-service")])
        #expect(t.problems.first?.field == "metadata.annotations.test.api.io/physical.deployment.endpoints")
    }

    @Test func badIntervalIsAnError() {
        let (t, draft) = translateTest([
            .service(annotated("machines")), .physicalEndpoint(physical(endpoints: ["192.0.2.1:10001"], interval: 0)),
        ])
        #expect(addresses(draft) == [])
        #expect(t.problems.map(\.field) == ["spec.interval"])
    }

    @Test func severalPortsTakeTheirOwnMachines() {
        let service = annotated(
            "machines",
            ports: [K8sServicePort(name: "http", port: 80, targetPort: .number(8080)), K8sServicePort(name: "admin", port: 9000)])
        let pe = physical(endpoints: ["192.0.2.1:8080", "192.0.2.1:9000"])
        let (_, web) = translateTest([.service(service), .physicalEndpoint(pe)], port: 80)
        let (_, admin) = translateTest([.service(service), .physicalEndpoint(pe)], port: 9000)
        #expect(addresses(web) == ["192.0.2.1:8080"])
        #expect(addresses(admin) == ["192.0.2.1:9000"])
    }

    @Test func conflictingHealthChecksUseTheFirstAndWarn() {
        let (t, draft) = translateTest([
            .service(annotated("a,b")), .physicalEndpoint(physical("a", endpoints: ["192.0.2.1:10001"], detect: "/a")),
            .physicalEndpoint(physical("b", endpoints: ["192.0.2.2:10001"], detect: "/b")),
        ])
        #expect(draft?.document["health_check"]?["path"]?.string == "/a")
        #expect(addresses(draft) == ["192.0.2.1:10001", "192.0.2.2:10001"])
        #expect(t.problems.map(\.reason) == ["ConflictingHealthCheck"])
    }
}
