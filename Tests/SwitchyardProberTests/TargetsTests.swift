import Testing

@testable import SwitchyardCore
@testable import SwitchyardProber

@Suite("Prober targets")
struct ProberTargetsTests {
    func upstream(_ text: String) throws -> Upstream { try Upstream(document: try JSONValue.parse(text)) }

    @Test func endpointsExemptFromTheCheckAreNotProbed() throws {
        // k8s-model.md: pods (health_check false) next to machines in one upstream
        let u = try upstream(
            #"{"name":"u","health_check":{"type":"http","path":"/conf/","interval_ms":1000},"endpoints":[{"address":"10.1.0.5:80","health_check":false},{"address":"192.0.2.1:80"},{"address":"192.0.2.2:80","health_check":true}]}"#
        )
        #expect(UpstreamTargets(u)?.addresses.map(\.description) == ["192.0.2.1:80", "192.0.2.2:80"])
        #expect(UpstreamTargets(u)?.check.path == "/conf/")
    }

    @Test func noHealthCheckNoTargets() throws {
        #expect(UpstreamTargets(try upstream(#"{"name":"u","endpoints":[{"address":"10.1.0.5:80"}]}"#)) == nil)
    }
}
