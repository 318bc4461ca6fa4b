import Foundation
import Hummingbird
import HummingbirdTesting
import SwitchyardController
import SwitchyardCore
import SwitchyardRedis
import SwitchyardTestSupport
import Testing

// Issue 16 (hardening): the controller's API holes, in-process against a real Redis.
// Each test fails on the code the issue was filed against.

@Suite("Hardening: admin API (issue 16)")
struct HardeningAPITests {
    /// `GET /healthz` needs no token: it may say whether Redis answers, never where Redis
    /// is or what it said.
    @Test func healthzWithoutATokenHidesTheRedisAddressAndError() async throws {
        // a port where a Redis was a moment ago: nothing listens there now
        let deadPort = try await withTemporaryRedis { server in server.port }
        let configuration = Configuration(
            redisPort: deadPort, adminToken: "test-token", requestTimeout: .seconds(2), redisTimeout: .seconds(1),
            functionsPath: repositoryRoot().appendingPathComponent("redis/switchyard.lua").path, logLevel: .critical)
        let app = try await buildApplication(configuration: configuration)
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(!text.contains(String(deadPort)), "\(text)")
                #expect(!text.contains("127.0.0.1"), "\(text)")
                #expect(!text.contains("refused"), "\(text)")
            }
        }
    }

    /// After Redis lost its data (FLUSHDB, a restart without persistence) a controller that
    /// has seen the configuration refuses writes instead of starting a new history at
    /// version 1, which edges would follow into an empty configuration.
    @Test func writesAfterRedisLostItsDataAreRefused() async throws {
        try await withController { h in
            let up = try await h.request(.put, "/api/v1/upstreams/u", #"{"endpoints":[{"address":"127.0.0.1:9"}]}"#)
            #expect(up.status == 201)
            let route = try await h.request(.put, "/api/v1/routes/r", #"{"host":"a.test","path":"/","upstream":"u"}"#)
            #expect(route.status == 201)
            _ = try await h.redis.send("FLUSHDB")
            let after = try await h.request(.put, "/api/v1/upstreams/other", #"{"endpoints":[{"address":"127.0.0.1:9"}]}"#)
            #expect(after.status >= 400 && after.errorCode != nil, "accepted into an emptied Redis: \(after.status) \(after.json)")
            #expect(try await h.storedVersion() == 0, "something was written")
        }
    }

    /// A document changed behind sy_apply's back (redis-cli SET) is named by the status's
    /// document check, and an API write of it repairs the digest.
    @Test func handEditedDocumentsAreNamedAndRepairedByTheNextWrite() async throws {
        try await withController { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/u", #"{"endpoints":[{"address":"127.0.0.1:9"}]}"#).status == 201)
            #expect(try await h.request(.put, "/api/v1/routes/r", #"{"host":"a.test","path":"/","upstream":"u"}"#).status == 201)
            let key = KeySchema.default.route("r")
            guard let stored = try await h.redis.send("GET", key).text else {
                Issue.record("route r not stored")
                return
            }
            _ = try await h.redis.send("SET", key, stored.replacingOccurrences(of: #""priority":0"#, with: #""priority":7"#))
            let check = try await h.request(.get, "/api/v1/status?check=documents")
            #expect(check.status == 200, "\(check.json)")
            #expect("\(check.json)".contains("route:r"), "the status does not name route:r: \(check.json)")
            // the next API write of the hand-edited route leaves a digest that describes
            // exactly the documents Redis holds
            #expect(
                try await h.request(.put, "/api/v1/routes/r", #"{"host":"a.test","path":"/","upstream":"u","priority":3}"#).status == 200)
            let stats = try await h.request(.get, "/api/v1/status")
            let digest = try await h.redis.send("GET", KeySchema.default.digest).text
            let recomputed = try await h.redis.send("FCALL", "sy_digest", "1", KeySchema.default.version).array?[1].text
            #expect(digest != nil && digest == recomputed, "digest \(digest ?? "nil"), recomputed \(recomputed ?? "nil"); \(stats.json)")
        }
    }
}
