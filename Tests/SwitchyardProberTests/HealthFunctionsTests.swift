import Foundation
import SwitchyardRedis
import SwitchyardTestSupport
import Testing

@testable import SwitchyardCore

/// sy_lease and sy_health (redis/switchyard.lua) against a real redis-server.
@Suite("Health Functions in Redis", .serialized)
struct HealthFunctionsTests {
    static let library = try! String(contentsOf: repositoryRoot().appendingPathComponent("redis/switchyard.lua"), encoding: .utf8)

    func withLibrary(_ body: @Sendable (RedisClient) async throws -> Void) async throws {
        try await withTemporaryRedis { server in
            let redis = RedisClient(configuration: server.configuration())
            _ = try await redis.send(["FUNCTION", "LOAD", "REPLACE", Self.library]).throwingErrorReply()
            do {
                try await body(redis)
            } catch {
                await redis.close()
                throw error
            }
            await redis.close()
        }
    }

    func lease(_ redis: RedisClient, _ id: String, _ ms: Int = 3000) async throws -> RedisReply {
        try await redis.send(HealthCall.lease(prober: id, leaseMs: ms, heartbeatMs: ms, heartbeat: #"{"prober":"\#(id)"}"#))
    }

    @Test func onlyOneProberHoldsTheLeaseAndOnlyTheHolderRenews() async throws {
        try await withLibrary { redis in
            #expect(try await lease(redis, "p1") == .array([.integer(1), .string(Array("acquired".utf8))]))
            let other = try await lease(redis, "p2")
            #expect(other.array?[0] == .integer(0))
            #expect(other.array?[1].text == "p1")
            #expect(try await lease(redis, "p1") == .array([.integer(1), .string(Array("renewed".utf8))]))
            #expect(try await redis.send("GET", KeySchema.default.proberLease).text == "p1")
            #expect(try await redis.send("GET", KeySchema.default.proberHeartbeat).text == #"{"prober":"p1"}"#)
            let ttl = try await redis.send("PTTL", KeySchema.default.proberHeartbeat).integer ?? -1
            #expect(ttl > 0 && ttl <= 3000)
            // only the holder releases; releasing deletes the heartbeat too
            #expect(try await lease(redis, "p2", 0).array?[1].text == "not_holder")
            #expect(try await lease(redis, "p1", 0).array?[1].text == "released")
            #expect(try await redis.send("EXISTS", KeySchema.default.proberLease, KeySchema.default.proberHeartbeat).integer == 0)
            #expect(try await lease(redis, "p2").array?[1].text == "acquired")
        }
    }

    @Test func healthWritesNeedTheLeaseAndBumpTheVersionPerChange() async throws {
        try await withLibrary { redis in
            let down = HealthRecord(state: .down, since: 10, reason: "timeout", prober: "p1")
            let refused = try await redis.send(HealthCall.health(prober: "p1", [.set(upstream: "u", address: "10.0.0.1:80", record: down)]))
            guard case .error(let message) = refused else { Issue.record("expected not_leader"); return }
            #expect(message.contains("not_leader"))
            _ = try await lease(redis, "p1")

            let reply = try await redis.send(
                HealthCall.health(
                    prober: "p1",
                    [
                        .set(upstream: "u", address: "10.0.0.1:80", record: down),
                        .set(
                            upstream: "u", address: "10.0.0.2:80",
                            record: HealthRecord(state: .up, since: 11, reason: "status 200", prober: "p1")),
                    ]))
            #expect(reply == .array([.integer(2), .integer(2)]))
            #expect(try await redis.send("HGET", KeySchema.default.health("u"), "10.0.0.1:80").text == down.json)
            #expect(try await redis.send("SMEMBERS", KeySchema.default.healthUpstreams).array?.compactMap(\.text) == ["u"])

            // the same state again changes nothing and keeps the original "since"
            let later = HealthRecord(state: .down, since: 99, reason: "refused", prober: "p1")
            #expect(
                try await redis.send(HealthCall.health(prober: "p1", [.set(upstream: "u", address: "10.0.0.1:80", record: later)]))
                    == .array([.integer(2), .integer(0)]))
            #expect(try await redis.send("HGET", KeySchema.default.health("u"), "10.0.0.1:80").text == down.json)

            // a malformed batch writes nothing
            let bad = try await redis.send([
                "FCALL", "sy_health", "1", KeySchema.default.healthVersion, "p1",
                "del", "u", "10.0.0.1:80", "", "set", "u", "10.0.0.3:80", #"{"state":"sideways"}"#,
            ])
            guard case .error = bad else { Issue.record("expected bad_request"); return }
            #expect(try await redis.send("HLEN", KeySchema.default.health("u")).integer == 2)

            #expect(
                try await redis.send(
                    HealthCall.health(prober: "p1", [.delete(upstream: "u", address: "10.0.0.1:80"), .drop(upstream: "u")]))
                    == .array([.integer(4), .integer(2)]))
            #expect(try await redis.send("EXISTS", KeySchema.default.health("u")).integer == 0)
            #expect(try await redis.send("SCARD", KeySchema.default.healthUpstreams).integer == 0)
            #expect(try await redis.send("GET", KeySchema.default.healthVersion).integer == 4)
        }
    }

    @Test func theFunctionsDeriveTheSchemaKeys() {
        let base = KeySchema.default.base
        #expect(KeySchema.default.healthVersion == base + "health_version")
        #expect(KeySchema.default.proberLease == base + "prober:lease")
        for fragment in [
            #"base .. "health_events""#, #"base .. "health_upstreams""#, #"base .. "prober:lease""#,
            #"base .. "prober:heartbeat""#, #"base .. "health:" .. op.upstream"#,
            #"base_of(keys[1] or "", "health_version")"#, #"base_of(keys[1] or "", "prober:lease")"#,
        ] {
            #expect(Self.library.contains(fragment), "\(fragment)")
        }
        #expect(KeySchema.default.healthEvents == base + "health_events")
        #expect(KeySchema.default.healthUpstreams == base + "health_upstreams")
        #expect(KeySchema.default.proberHeartbeat == base + "prober:heartbeat")
        #expect(KeySchema.default.health("u") == base + "health:u")
    }
}
