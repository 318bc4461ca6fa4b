// JSON values, resource paths and the typed models, against documents shaped like the API's.

import Foundation
import Testing

@testable import SwitchyardKube

@Suite struct ModelTests {
    @Test func jsonValueRoundTripsAndKeepsIntegers() throws {
        let text = #"{"a":[1,2.5,"x",true,null],"b":{"c":9007199254740993}}"#
        let value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(value["a"]?[0] == .int(1) && value["a"]?[1] == .double(2.5) && value["a"]?[4] == .null)
        #expect(value["b"]?["c"]?.intValue == 9_007_199_254_740_993)
        #expect(String(decoding: try value.jsonData(), as: UTF8.self) == text)
    }

    @Test func resourcePaths() {
        #expect(Ingress.resource.collectionPath(namespace: "web") == "/apis/networking.k8s.io/v1/namespaces/web/ingresses")
        #expect(Ingress.resource.collectionPath(namespace: nil) == "/apis/networking.k8s.io/v1/ingresses")
        #expect(Service.resource.objectPath(namespace: "a", name: "b", subresource: "status") == "/api/v1/namespaces/a/services/b/status")
        #expect(IngressClass.resource.objectPath(namespace: "ignored", name: "c") == "/apis/networking.k8s.io/v1/ingressclasses/c")
        #expect(
            PhysicalEndpoint.resourceType(group: "pe.example.com", version: "v1").collectionPath(namespace: "t")
                == "/apis/pe.example.com/v1/namespaces/t/physicalendpoints")
    }

    @Test func seedShapedObjectsDecode() throws {
        let pe = try JSONDecoder().decode(
            PhysicalEndpoint.self,
            from: Data(
                """
                {"apiVersion":"test.api.io/v1beta1","kind":"PhysicalEndpoint","metadata":{"name":"phyendpoint-example","namespace":"test"},
                 "spec":{"endpoints":["127.0.0.11:10001","127.0.0.12:10001"],"http_detect":"/conf/","interval":10}}
                """.utf8))
        #expect(pe.spec == PhysicalEndpointSpec(endpoints: ["127.0.0.11:10001", "127.0.0.12:10001"], httpDetect: "/conf/", interval: 10))
        #expect(pe.key == ObjectKey(namespace: "test", name: "phyendpoint-example"))
        let svc = try JSONDecoder().decode(
            Service.self,
            from: Data(
                """
                {"metadata":{"name":"s","namespace":"n","annotations":{"test.api.io/physical.deployment.endpoints":"a,b"}},
                 "spec":{"ports":[{"port":80,"targetPort":"http"},{"port":81,"targetPort":8081}],"selector":{"app":"x"}}}
                """.utf8))
        #expect(svc.spec?.ports?.map(\.targetPort) == [.string("http"), .int(8081)])
        #expect(svc.metadata.annotations?[PhysicalEndpoint.serviceAnnotation] == "a,b")
        let secret = Secret(
            metadata: ObjectMeta(name: "t"), type: Secret.tlsType,
            data: ["tls.crt": b64("CERT"), "tls.key": b64("KEY")])
        #expect(secret.tlsPair?.certificate == "CERT" && secret.tlsPair?.key == "KEY")
        let slice = try JSONDecoder().decode(
            EndpointSlice.self,
            from: Data(
                """
                {"metadata":{"name":"s-1","labels":{"kubernetes.io/service-name":"s"}},"addressType":"IPv6",
                 "endpoints":[{"addresses":["::1"],"conditions":{"ready":false,"terminating":true}}],"ports":[{"name":"http","port":8080}]}
                """.utf8))
        #expect(slice.serviceName == "s" && slice.endpoints?.first?.conditions?.terminating == true)
    }

    @Test func lenientDecodingNamesTheObjectAndTheField() throws {
        let list = try JSONDecoder().decode(
            LenientList<Ingress>.self,
            from: Data(
                """
                {"metadata":{"resourceVersion":"7"},"items":[
                  {"metadata":{"name":"ok","namespace":"a"},"spec":{}},
                  {"metadata":{"name":"bad","namespace":"a","resourceVersion":"6"},"spec":{"rules":[{"http":{"paths":[{"backend":{"service":{"name":"s","port":{"number":"eighty"}}}}]}}]}}]}
                """.utf8))
        #expect(list.items?.count == 2)
        guard case .failure(let error) = list.items?[1].result else {
            Issue.record("the malformed item decoded")
            return
        }
        let failure = list.items![1].failure(error)
        #expect(failure.key == ObjectKey(namespace: "a", name: "bad") && failure.resourceVersion == "6")
        #expect(failure.message.hasPrefix("spec.rules[0].http.paths[0].backend.service.port.number"))
    }
}
