import Foundation
import SwitchyardCore
import SwitchyardKubeSource
import SwitchyardTestSupport
import Testing

@Suite("switchyard apply: reading manifests")
struct ManifestTests {
    func read(_ text: String, name: String = "test.yaml") -> ManifestSet {
        var set = ManifestSet()
        set.read(text, name: name, parser: KubeObjectParser())
        return set
    }

    func seed(_ name: String) throws -> String {
        try String(contentsOf: repositoryRoot().appendingPathComponent("Tests/Fixtures/seeds/\(name)"), encoding: .utf8)
    }

    @Test func everySeedReads() throws {
        let bbs = read(try seed("bbs-vm.yaml"), name: "bbs-vm.yaml")
        #expect(bbs.errors.map(\.description) == [])
        #expect(bbs.objectCount == 5)
        #expect(bbs.state.services[K8sKey("default", "bbs-frontend")]?.hasSelector == false)
        #expect(bbs.state.endpoints[K8sKey("default", "bbs-backend")]?.subsets.first?.addresses == ["127.0.0.27"])
        #expect(bbs.state.ingresses[K8sKey("default", "bbs")]?.meta.annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "300")

        let old = read(try seed("ingress-v1beta1.yaml"), name: "ingress-v1beta1.yaml")
        #expect(old.errors.map(\.description) == [])
        let ingress = old.state.ingresses[K8sKey("kube-system", "test")]
        #expect(ingress?.apiVersion == "extensions/v1beta1")
        #expect(ingress?.rules.first?.paths.first?.backend.service == "heapster")

        let physical = read(try seed("physical-endpoint.yaml"), name: "physical-endpoint.yaml")
        #expect(physical.errors.map(\.description) == [])
        #expect(
            physical.state.physicalEndpoints[K8sKey("test", "phyendpoint-example")]?.endpoints == ["127.0.0.11:10001", "127.0.0.12:10001"])
        #expect(physical.state.services[K8sKey("test", "test-service")]?.physicalEndpointNames == ["phyendpoint-example"])
    }

    @Test func problemsNameFileDocumentObjectAndField() {
        let set = read(
            """
            apiVersion: v1
            kind: Service
            metadata: {name: ok}
            spec: {ports: [{port: 80}]}
            ---
            # a comment-only document still counts
            ---
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata:
              name: typo
              namespace: web
              annotations:
                nginx.ingress.kubernetes.io/proxy-read-timeout: 300
            spec:
              rules:
              - host: a.example
                http:
                  paths:
                  - {path: /, pathType: Prefixx, backend: {service: {name: ok, port: {number: 80}}}}
            """, name: "app.yaml")
        #expect(
            set.errors.map(\.description) == [
                "app.yaml#3 (line 8) Ingress web/typo: metadata.annotations.nginx.ingress.kubernetes.io/proxy-read-timeout: must be a string, not number (quote it in YAML)",
                "app.yaml#3 (line 8) Ingress web/typo: spec.rules[0].http.paths[0].pathType: 'Prefixx' is not a path type (Exact, Prefix or ImplementationSpecific)",
            ])
        #expect(set.objectCount == 1)
    }

    @Test func duplicatesListsAndIgnoredKinds() {
        let set = read(
            """
            apiVersion: v1
            kind: List
            items:
            - {apiVersion: v1, kind: Service, metadata: {name: a}, spec: {ports: [{port: 80}]}}
            - {apiVersion: apps/v1, kind: Deployment, metadata: {name: d}}
            ---
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"ports": [{"port": 81}]}}
            """)
        #expect(set.objectCount == 1)
        #expect(
            set.errors.map(\.description) == [
                "test.yaml#2 (line 7) Service default/a: metadata.name: is also defined at test.yaml#1 items[0] (line 1)"
            ])
        #expect(set.ignored.count == 1)
        #expect(set.ignored.first?.origin.description == "test.yaml#1 items[1] (line 1)")
    }

    @Test func notYAMLIsOneError() {
        let set = read("apiVersion: v1\nkind: [unclosed\n")
        #expect(set.errors.count == 1)
        #expect(set.errors.first?.description.hasPrefix("test.yaml#0") == true)
    }
}
