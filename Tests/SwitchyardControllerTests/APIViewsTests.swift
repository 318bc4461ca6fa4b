import SwitchyardCore
import Testing

@testable import SwitchyardController

/// The JSON shapes the admin API answers (API/Views.swift) and its URL helpers, without a
/// server: what the handlers build from the core's values.
@Suite("API views")
struct APIViewsTests {
    let route = Route(id: "bbs-api", host: "bbs.test.com", path: "/api", match: .prefix, upstream: "backend", priority: 0)

    @Test func apiObjectAddsVersion() {
        #expect(
            route.document.adding(version: 7).canonical
                == #"{"host":"bbs.test.com","id":"bbs-api","match":"prefix","path":"/api","priority":0,"upstream":"backend","version":7}"#)
    }

    @Test func apiViewAddsHealthOnlyWithACheck() throws {
        let a = try EndpointAddress.parse("10.0.0.1:80").get()
        let b = try EndpointAddress.parse("10.0.0.2:80").get()
        var upstream = Upstream(name: "web", endpoints: [Endpoint(address: a), Endpoint(address: b)])
        let records = ["10.0.0.1:80": HealthRecord(state: .down, since: 0, reason: "timeout", prober: "p1")]
        #expect(
            UpstreamHealthView.json(Stored(value: upstream, version: 3), records: records, proberAlive: true)
                == upstream.document.adding(version: 3))
        upstream.healthCheck = HealthCheck()
        let view = UpstreamHealthView.json(Stored(value: upstream, version: 3), records: records, proberAlive: false)
        guard case .array(let endpoints)? = view["endpoints"] else { Issue.record("no endpoints"); return }
        #expect(endpoints[0]["health"] == "down")
        #expect(endpoints[0]["health_reason"] == "timeout")
        #expect(endpoints[0]["health_since"] == "1970-01-01T00:00:00.000Z")
        #expect(endpoints[0]["health_prober"] == "p1")
        #expect(endpoints[1]["health"] == "unknown")
        #expect(endpoints[1]["health_since"] == nil)
        #expect(view["health_stale"] == true)
    }

    @Test func edgeStatusComputesLagAndTimes() {
        let edge = EdgeStatus.json(
            id: "e1", fields: [("id", "e1"), ("applied_version", "5"), ("last_seen", "1700000000123"), ("pid", "42"), ("listen", "8080")],
            heartbeat: 1, version: 8)
        #expect(edge["lag"] == .integer(3))
        #expect(edge["applied_version"] == .integer(5))
        #expect(edge["last_seen"] == .string("2023-11-14T22:13:20.123Z"))
        #expect(edge["pid"] == .integer(42))
        #expect(edge["listen"] == .string("8080"))
        let expired = EdgeStatus.json(id: "e2", fields: [], heartbeat: 1_700_000_000_123, version: 8)
        #expect(expired["lag"] == .null)
        #expect(expired["last_seen"] == .string("2023-11-14T22:13:20.123Z"))
    }

    @Test func certificateAnswerHasNoKeyAndCountsDaysLeft() throws {
        let now: Int64 = 1_800_000_000  // 2027-01-15
        let day: Int64 = 86400
        let leaf = try #require(
            OpenSSL.generate(
                CertificateRequest(
                    commonName: "leaf", dnsNames: ["a.example.com", "*.a.example.com"], notBefore: now - day, notAfter: now + 90 * day)))
        let body: JSONValue = ["cert": .string(leaf.certificate), "key": .string(leaf.key), "default": true]
        let c = try CertificateValidator().certificate(body, id: "site", now: now).get()
        let api = c.apiDocument(version: 9, keyEncrypted: false, now: now)
        #expect(api["key"] == nil && api["key_enc"] == nil)
        #expect(api["expires_in_days"] == .integer(90))
        #expect(api["expiring_soon"] == .bool(false))
        #expect(c.apiDocument(version: 9, keyEncrypted: false, now: c.notAfter - 29 * day)["expiring_soon"] == .bool(true))
    }

    @Test func percentDecoding() {
        #expect(percentDecoded("%5B%3A%3A1%5D%3A8080") == "[::1]:8080")
        #expect(percentDecoded("10.0.0.1:80") == "10.0.0.1:80")
        #expect(percentDecoded("a+b%2fc") == "a+b/c")
        #expect(percentDecoded("%zz") == nil)
        #expect(percentDecoded("%C3") == nil)
    }
}
