import Foundation
import Hummingbird
import HummingbirdTesting
import SwitchyardController
import SwitchyardCore
import SwitchyardRedis
import SwitchyardTestSupport
import Testing

// The controller's settings for the document contract (--regex-engine,
// --allow-link-local-endpoints), the members writers set (owner, source) and where the
// reason Redis does not answer goes (issue 16), in-process against a real Redis.

@Suite("Admin API: the document contract's settings")
struct ContractAPITests {
    static let pcre2: @Sendable (inout Configuration) -> Void = { $0.regexEngine = .pcre2 }
    static let linkLocal: @Sendable (inout Configuration) -> Void = { $0.allowLinkLocalEndpoints = true }

    @Test func regexEngineFlagChoosesTheCompiler() async throws {
        // (*pla:...) is PCRE2-only: refused with the default engine (the edges' PCRE 8.x)
        try await withController { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/u", #"{"endpoints":[]}"#).status == 201)
            let r = try await h.request(.put, "/api/v1/routes/r", #"{"host":"a.test","path":"(*pla:/a)","match":"regex","upstream":"u"}"#)
            #expect(r.status == 422 && r.errorFields == ["path"], "\(r.json)")
        }
        try await withController(configure: Self.pcre2) { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/u", #"{"endpoints":[]}"#).status == 201)
            let r = try await h.request(.put, "/api/v1/routes/r", #"{"host":"a.test","path":"(*pla:/a)","match":"regex","upstream":"u"}"#)
            #expect(r.status == 201, "\(r.json)")
        }
    }

    @Test func linkLocalEndpointsNeedTheFlag() async throws {
        let body = #"{"endpoints":[{"address":"169.254.169.254:80"}]}"#
        try await withController { h in
            let r = try await h.request(.put, "/api/v1/upstreams/meta", body)
            #expect(r.status == 422 && r.errorFields == ["endpoints[0].address"], "\(r.json)")
            let one = try await h.request(.put, "/api/v1/upstreams/meta/endpoints/169.254.169.254:80")
            #expect(one.status == 422 && one.errorFields == ["address"], "\(one.json)")
            #expect(try await h.storedVersion() == 0)
        }
        try await withController(configure: Self.linkLocal) { h in
            let r = try await h.request(.put, "/api/v1/upstreams/meta", body)
            #expect(r.status == 201, "\(r.json)")
        }
    }

    @Test func ownerAndSourceAreRefusedInRequestBodies() async throws {
        try await withController { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/u", #"{"endpoints":[],"owner":"k8s/x"}"#).status == 422)
            let r = try await h.request(
                .put, "/api/v1/routes/r", #"{"host":"a.test","path":"/","upstream":"u","source":"k8s:a/b"}"#)
            #expect(r.status == 422 && r.errorFields.contains("source"), "\(r.json)")
            #expect(try await h.storedVersion() == 0)
        }
    }

    @Test func exemptEndpointsShowAsUnchecked() async throws {
        try await withController { h in
            let body =
                #"{"endpoints":[{"address":"127.0.0.1:9"},{"address":"127.0.0.2:9","health_check":false}],"#
                + #""health_check":{"type":"tcp"}}"#
            #expect(try await h.request(.put, "/api/v1/upstreams/u", body).status == 201)
            let r = try await h.request(.get, "/api/v1/upstreams/u")
            #expect(r.json["endpoints"]?[0]?["health"] == "unknown", "\(r.json)")
            #expect(r.json["endpoints"]?[1]?["health"] == "unchecked", "\(r.json)")
            #expect(r.json["endpoints"]?[1]?["health_check"] == false, "\(r.json)")
        }
    }

    /// `/healthz` needs no token, so it says only whether Redis answers; the authenticated
    /// status says why not.
    @Test func theReasonRedisIsAwayIsForTheTokenHolder() async throws {
        let deadPort = try await withTemporaryRedis { server in server.port }
        let configuration = Configuration(
            redisPort: deadPort, adminToken: "test-token", requestTimeout: .seconds(2), redisTimeout: .seconds(1),
            functionsPath: repositoryRoot().appendingPathComponent("redis/switchyard.lua").path, logLevel: .critical)
        let app = try await buildApplication(configuration: configuration)
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                let json = try JSONValue.parse(String(buffer: response.body))
                #expect(json["status"] == "ok" && json["redis"] == false, "\(json)")
                if case .object(let members) = json { #expect(members.map(\.key).sorted() == ["redis", "status"]) }
            }
            var headers = HTTPFields()
            headers[.authorization] = "Bearer test-token"
            try await client.execute(uri: "/api/v1/status", method: .get, headers: headers) { response in
                let text = String(buffer: response.body)
                #expect(response.status == .serviceUnavailable, "\(text)")
                #expect(text.contains(String(deadPort)), "the authenticated status does not say why: \(text)")
            }
        }
    }
}
