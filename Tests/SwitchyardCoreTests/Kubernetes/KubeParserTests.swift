import Testing

@testable import SwitchyardCore

@Suite("Kubernetes objects from JSON")
struct KubeParserTests {
    let parser = KubeObjectParser()

    func parse(_ text: String) -> KubeObjectParser.Outcome { parser.parse(Kube.json(text)) }

    func problems(_ outcome: KubeObjectParser.Outcome) -> [String] {
        if case .invalid(_, let problems) = outcome { return problems.map { "\($0.field): \($0.message)" } }
        return []
    }

    @Test func ingressV1() throws {
        let outcome = parse(
            #"""
            {"apiVersion":"networking.k8s.io/v1","kind":"Ingress",
             "metadata":{"name":"bbs","namespace":"web","creationTimestamp":"2025-01-01T00:00:00Z","uid":"u1","resourceVersion":"7",
                         "annotations":{"nginx.ingress.kubernetes.io/proxy-read-timeout":"300"}},
             "spec":{"ingressClassName":"switchyard",
               "defaultBackend":{"service":{"name":"fallback","port":{"number":80}}},
               "tls":[{"hosts":["bbs.test.com"],"secretName":"prod-web-ssl"}],
               "rules":[{"host":"bbs.test.com","http":{"paths":[
                 {"path":"/api","pathType":"Prefix","backend":{"service":{"name":"bbs-backend","port":{"number":8004}}}},
                 {"path":"/x","pathType":"Exact","backend":{"service":{"name":"bbs-backend","port":{"name":"http"}}}}]}},
                 {"http":{"paths":[{"pathType":"ImplementationSpecific","backend":{"service":{"name":"any","port":{"number":1}}}}]}}]}}
            """#)
        guard case .object(.ingress(let ingress)) = outcome else {
            Issue.record("not parsed: \(outcome)")
            return
        }
        #expect(ingress.meta.key == K8sKey("web", "bbs"))
        #expect(ingress.meta.creationTimestamp == "2025-01-01T00:00:00Z")
        #expect(ingress.meta.annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "300")
        #expect(ingress.className == "switchyard")
        #expect(ingress.defaultBackend == K8sBackend(service: "fallback", port: .number(80), field: "spec.defaultBackend"))
        #expect(ingress.tls == [K8sIngressTLS(hosts: ["bbs.test.com"], secretName: "prod-web-ssl", field: "spec.tls[0]")])
        #expect(ingress.rules.count == 2)
        #expect(ingress.rules[0].paths.map(\.pathType) == [.prefix, .exact])
        #expect(ingress.rules[0].paths[1].backend.port == .name("http"))
        #expect(ingress.rules[1].host == nil)
        #expect(ingress.rules[1].paths[0].path == "/")
        #expect(ingress.rules[1].paths[0].field == "spec.rules[1].http.paths[0]")
    }

    @Test func ingressV1beta1WithServiceNameAndBackend() throws {
        let outcome = parse(
            #"""
            {"apiVersion":"extensions/v1beta1","kind":"Ingress","metadata":{"name":"test","namespace":"kube-system"},
             "spec":{"backend":{"serviceName":"default-http-backend","servicePort":"http"},
                     "rules":[{"http":{"paths":[{"path":"/api","backend":{"serviceName":"heapster","servicePort":80}}]}}]}}
            """#)
        guard case .object(.ingress(let ingress)) = outcome else {
            Issue.record("not parsed: \(outcome)")
            return
        }
        #expect(ingress.apiVersion == "extensions/v1beta1")
        #expect(ingress.defaultBackend == K8sBackend(service: "default-http-backend", port: .name("http"), field: "spec.backend"))
        #expect(ingress.rules[0].paths[0].pathType == .implementationSpecific)
        #expect(
            ingress.rules[0].paths[0].backend
                == K8sBackend(service: "heapster", port: .number(80), field: "spec.rules[0].http.paths[0].backend"))
    }

    @Test func misspeltPathTypeIsAnErrorNotADefault() {
        let outcome = parse(
            #"""
            {"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"i"},
             "spec":{"rules":[{"host":"h","http":{"paths":[{"path":"/","pathType":"Prefixx","backend":{"service":{"name":"s","port":{"number":80}}}}]}}]}}
            """#)
        #expect(
            problems(outcome) == [
                "spec.rules[0].http.paths[0].pathType: 'Prefixx' is not a path type (Exact, Prefix or ImplementationSpecific)"
            ])
        if case .invalid(let ref, _) = outcome { #expect(ref == K8sRef("Ingress", "default", "i")) }
    }

    @Test func everyProblemOfAnObjectIsListed() {
        let outcome = parse(
            #"""
            {"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"i","annotations":{"a":300}},
             "spec":{"rules":[{"http":{"paths":[{"path":"/","backend":{"service":{"name":"s","port":{"number":"80"}}}},
                                               {"path":"/x","pathType":"Exact","backend":{"resource":{"kind":"Bucket","name":"b"}}}]}}]}}
            """#)
        #expect(
            problems(outcome) == [
                "metadata.annotations.a: must be a string, not number (quote it in YAML)",
                "spec.rules[0].http.paths[0].pathType: is required",
                "spec.rules[0].http.paths[0].backend.service.port.number: must be an integer, not string",
                "spec.rules[0].http.paths[0].backend.service.port: needs number or name",
                "spec.rules[0].http.paths[1].backend.resource: resource backends are not supported (switchyard sends requests to Services)",
            ])
    }

    @Test func unsupportedVersionNamesTheField() {
        let outcome = parse(#"{"apiVersion":"networking.k8s.io/v2","kind":"Ingress","metadata":{"name":"i"},"spec":{}}"#)
        #expect(problems(outcome).first?.hasPrefix("apiVersion: Ingress 'networking.k8s.io/v2' is not read") == true)
    }

    @Test func otherKindsAndSecretTypesAreIgnored() {
        if case .ignored(let ref, _) = parse(#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"}}"#) {
            #expect(ref == K8sRef("Deployment", "default", "d"))
        } else {
            Issue.record("a Deployment is not ignored")
        }
        if case .ignored = parse(#"{"apiVersion":"v1","kind":"Secret","type":"Opaque","metadata":{"name":"s"},"data":{}}"#) {
        } else {
            Issue.record("an Opaque Secret is not ignored")
        }
    }

    @Test func tlsSecretFromDataOrStringData() {
        // base64("PEMCERT") = UEVNQ0VSVA==
        let outcome = parse(
            #"{"apiVersion":"v1","kind":"Secret","type":"kubernetes.io/tls","metadata":{"name":"t"},"data":{"tls.crt":"UEVNQ0VSVA=="},"stringData":{"tls.key":"PEMKEY"}}"#
        )
        #expect(
            outcome == .object(.secret(K8sTLSSecret(meta: K8sMeta(namespace: "default", name: "t"), certificate: "PEMCERT", key: "PEMKEY")))
        )
        let bad = parse(#"{"apiVersion":"v1","kind":"Secret","type":"kubernetes.io/tls","metadata":{"name":"t"},"data":{"tls.crt":"***"}}"#)
        #expect(problems(bad) == ["data.tls.crt: is not base64 of PEM text"])
    }

    @Test func serviceSliceEndpointsAndPhysicalEndpoint() {
        let service = parse(
            #"""
            {"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"n",
              "annotations":{"test.api.io/physical.deployment.endpoints":"a, b,a"}},
             "spec":{"selector":{"app":"x"},"ports":[{"name":"http","port":80,"targetPort":"web"},{"port":81,"targetPort":"8081"}]}}
            """#)
        guard case .object(.service(let s)) = service else {
            Issue.record("\(service)")
            return
        }
        #expect(s.hasSelector)
        #expect(
            s.ports == [
                K8sServicePort(name: "http", port: 80, targetPort: .name("web")), K8sServicePort(port: 81, targetPort: .number(8081)),
            ])
        #expect(s.physicalEndpointNames == ["a", "b"])

        let slice = parse(
            #"""
            {"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"s-abc","namespace":"n","labels":{"kubernetes.io/service-name":"s"}},
             "addressType":"IPv4","endpoints":[{"addresses":["10.0.0.1"],"conditions":{"ready":true,"terminating":false}}],
             "ports":[{"name":"http","port":8080}]}
            """#)
        guard case .object(.endpointSlice(let sl)) = slice else {
            Issue.record("\(slice)")
            return
        }
        #expect(sl.serviceName == "s")
        #expect(sl.endpoints == [K8sSliceEndpoint(addresses: ["10.0.0.1"], ready: true, terminating: false)])
        #expect(sl.ports == [K8sEndpointPort(name: "http", port: 8080)])

        let endpoints = parse(
            #"{"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"s"},"subsets":[{"addresses":[{"ip":"10.0.0.9"}],"ports":[{"name":"http","port":8001}]}]}"#
        )
        #expect(
            endpoints
                == .object(
                    .endpoints(
                        K8sEndpoints(
                            meta: K8sMeta(namespace: "default", name: "s"),
                            subsets: [K8sEndpointSubset(addresses: ["10.0.0.9"], ports: [K8sEndpointPort(name: "http", port: 8001)])]))))

        let physical = parse(
            #"{"apiVersion":"test.api.io/v1beta1","kind":"PhysicalEndpoint","metadata":{"name":"p","namespace":"test"},"spec":{"endpoints":["10.0.0.1:10001"],"http_detect":"/conf/","interval":10}}"#
        )
        #expect(
            physical
                == .object(
                    .physicalEndpoint(
                        K8sPhysicalEndpoint(
                            meta: K8sMeta(namespace: "test", name: "p"), endpoints: ["10.0.0.1:10001"], httpDetect: "/conf/", interval: 10))
                ))
        let otherGroup = KubeObjectParser(physicalEndpointAPIVersion: "infra.example/v1").parse(
            Kube.json(#"{"apiVersion":"infra.example/v1","kind":"PhysicalEndpoint","metadata":{"name":"p"},"spec":{"endpoints":[]}}"#))
        if case .object(.physicalEndpoint) = otherGroup {} else { Issue.record("configured group not read: \(otherGroup)") }
    }

    @Test func ingressClassIsClusterScoped() {
        let outcome = parse(
            #"{"apiVersion":"networking.k8s.io/v1","kind":"IngressClass","metadata":{"name":"switchyard","annotations":{"ingressclass.kubernetes.io/is-default-class":"true"}},"spec":{"controller":"switchyard.io/ingress-controller"}}"#
        )
        guard case .object(.ingressClass(let c)) = outcome else {
            Issue.record("\(outcome)")
            return
        }
        #expect(c.meta.namespace == "")
        #expect(c.isDefault)
        #expect(c.controller == KubeTranslationOptions.defaultControllerName)
    }
}
