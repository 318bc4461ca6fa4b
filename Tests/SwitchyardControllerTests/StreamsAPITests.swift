import Foundation
import Logging
import SwitchyardController
import SwitchyardCore
import SwitchyardRedis
import SwitchyardTestSupport
import Testing

// Streams as a kind of the configuration (docs/stream.md): written by sy_apply through PUT
// /streams and POST /apply, in the history (revert), the digest, dry runs and If-Match;
// against a real redis-server.
@Suite("Streams are configuration objects: apply, history, revert, digest")
struct StreamsAPITests {
    static let upstream = #"{"endpoints":[{"address":"127.0.0.1:9001"}]}"#

    func text(_ h: Harness, _ key: String) async throws -> String? { try await h.redis.send("GET", key).text }

    /// The digest from scratch: sy_digest over what is stored must find nothing to adopt
    /// and the same digest sy_apply kept.
    func digestAgrees(_ h: Harness) async throws -> Bool {
        let kept = try await text(h, KeySchema.default.digest)
        let reply = try await h.redis.send("FCALL", "sy_digest", "1", KeySchema.default.version).array ?? []
        return reply.count == 3 && reply[1].text == kept && reply[2].integer == 0
    }

    @Test func putGetDeleteWriteOneVersionOfTheConfiguration() async throws {
        try await withController { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/pg", Self.upstream).status == 201)
            let before = try await h.storedVersion()
            let created = try await h.request(.put, "/api/v1/streams/db", #"{"listen":15432,"upstream":"pg"}"#)
            #expect(created.status == 201)
            #expect(created.version == before + 1)
            #expect(try await h.storedVersion() == before + 1)
            #expect(try await h.redis.send("SISMEMBER", KeySchema.default.streams, "db").integer == 1)
            #expect(try await h.redis.send("HEXISTS", KeySchema.default.hashes, "stream:db").integer == 1)
            #expect(try await digestAgrees(h))
            // identical: nothing written
            let same = try await h.request(.put, "/api/v1/streams/db", #"{"listen":15432,"upstream":"pg"}"#)
            #expect(same.status == 200 && same.version == before + 1)
            let got = try await h.request(.get, "/api/v1/streams/db")
            #expect(got.json["listen"] == .integer(15432) && got.json["version"] == .integer(before + 1))
            #expect(got.headers[.eTag] == "\"\(before + 1)\"")
            let list = try await h.request(.get, "/api/v1/streams")
            #expect(list.json["items"]?[0]?["id"] == .string("db") && list.version == before + 1)
            // the change stream names it like any object (the edges replay it)
            let last = try await h.redis.send("XREVRANGE", KeySchema.default.changes, "+", "-", "COUNT", "1").array?.first
            let fields = last?.array?[1].array?.compactMap(\.text) ?? []
            #expect(fields.contains("stream") && fields.contains("db"))
            let deleted = try await h.request(.delete, "/api/v1/streams/db")
            #expect(deleted.status == 200 && deleted.version == before + 2)
            #expect(try await text(h, KeySchema.default.stream("db")) == nil)
            #expect(try await h.redis.send("HEXISTS", KeySchema.default.hashes, "stream:db").integer == 0)
            #expect(try await h.request(.delete, "/api/v1/streams/db").status == 404)
            #expect(try await digestAgrees(h))
        }
    }

    @Test func refusalsNameTheFieldAndWriteNothing() async throws {
        try await withController { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/pg", Self.upstream).status == 201)
            #expect(try await h.request(.put, "/api/v1/streams/a", #"{"listen":15000,"upstream":"pg"}"#).status == 201)
            let version = try await h.storedVersion()
            let missing = try await h.request(.put, "/api/v1/streams/b", #"{"listen":15001,"upstream":"nope"}"#)
            #expect(missing.status == 422 && missing.errorFields == ["upstream"])
            let clash = try await h.request(.put, "/api/v1/streams/b", #"{"listen":15000,"upstream":"pg"}"#)
            #expect(clash.status == 409 && clash.errorCode == "port_conflict")
            #expect(clash.json["error"]?["field"] == .string("listen") && clash.json["error"]?["stream"] == .string("a"))
            // the same port over udp is another listener
            let udp = try await h.request(.put, "/api/v1/streams/b", #"{"listen":15000,"protocol":"udp","upstream":"pg"}"#)
            #expect(udp.status == 201)
            let inUse = try await h.request(.delete, "/api/v1/upstreams/pg")
            #expect(inUse.status == 409 && inUse.json["error"]?["streams"] == .array(["a", "b"]))
            #expect(try await h.storedVersion() == version + 1)
            #expect(try await h.request(.delete, "/api/v1/streams/a").status == 200)
        }
    }

    @Test func applyWritesStreamsWithTheRestAndPrunesThem() async throws {
        try await withController { h in
            let body = """
                {"upstreams":[{"name":"pg","endpoints":[{"address":"127.0.0.1:9001"}]}],
                 "streams":[{"id":"db","listen":15432,"upstream":"pg"},{"id":"dns","listen":15353,"protocol":"udp","upstream":"pg"}]}
                """
            let dry = try await h.request(.post, "/api/v1/apply?dry_run=true", body)
            #expect(dry.status == 200 && dry.json["changed"] == .integer(3))
            #expect(try await h.storedVersion() == 0)
            let applied = try await h.request(.post, "/api/v1/apply", body)
            #expect(applied.status == 200 && applied.json["changed"] == .integer(3))
            let version = try #require(applied.version)
            #expect(try await h.request(.get, "/api/v1/streams/dns").json["protocol"] == .string("udp"))
            // refusals name the field of the batch
            let bad = try await h.request(.post, "/api/v1/apply", #"{"streams":[{"id":"x","listen":70000,"upstream":"pg"}]}"#)
            #expect(bad.status == 422 && bad.errorFields == ["streams[0].listen"])
            let missing = try await h.request(.post, "/api/v1/apply", #"{"streams":[{"id":"x","listen":1,"upstream":"nope"}]}"#)
            #expect(missing.status == 422 && missing.errorFields == ["streams[0].upstream"])
            let clash = try await h.request(
                .post, "/api/v1/apply", #"{"streams":[{"id":"x","listen":1,"upstream":"pg"},{"id":"y","listen":15432,"upstream":"pg"}]}"#)
            #expect(clash.status == 409 && clash.json["error"]?["field"] == .string("streams[1].listen"))
            // an upstream and the stream that uses it go in one change, in either order
            let both = try await h.request(.post, "/api/v1/apply", #"{"delete":{"upstreams":["pg"],"streams":["db","dns"]}}"#)
            #expect(both.status == 200 && both.version == version + 1)
            #expect(try await h.request(.get, "/api/v1/streams").json["items"] == .array([]))
            #expect(try await digestAgrees(h))

            // an owner's document: prune removes the streams it no longer names
            let owned = """
                {"upstreams":[{"name":"pg","endpoints":[{"address":"127.0.0.1:9001"}]}],
                 "streams":[{"id":"s1","listen":16001,"upstream":"pg"},{"id":"s2","listen":16002,"upstream":"pg"}]}
                """
            #expect(try await h.request(.post, "/api/v1/apply?owner=tool&prune=true", owned).status == 200)
            let fewer =
                #"{"upstreams":[{"name":"pg","endpoints":[{"address":"127.0.0.1:9001"}]}],"streams":[{"id":"s1","listen":16001,"upstream":"pg"}]}"#
            let pruned = try await h.request(.post, "/api/v1/apply?owner=tool&prune=true", fewer)
            #expect(pruned.status == 200 && pruned.json["pruned"] == .array(["stream:s2"]))
            #expect(try await h.request(.get, "/api/v1/streams/s2").status == 404)
            // owned: the admin API may not change it
            #expect(try await h.request(.delete, "/api/v1/streams/s1").status == 409)
        }
    }

    @Test func historyRecordsAStreamAndRevertRestoresIt() async throws {
        try await withController { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/pg", Self.upstream).status == 201)
            #expect(try await h.request(.put, "/api/v1/streams/db", #"{"listen":15432,"upstream":"pg"}"#).status == 201)
            let target = try await h.storedVersion()
            let stored = try await text(h, KeySchema.default.stream("db"))
            let digestAtTarget = try await text(h, KeySchema.default.digest)
            #expect(try await h.request(.put, "/api/v1/streams/db", #"{"listen":15433,"upstream":"pg"}"#).status == 200)
            #expect(try await h.request(.put, "/api/v1/streams/new", #"{"listen":15434,"upstream":"pg"}"#).status == 201)
            let entry = try await h.request(.get, "/api/v1/history/\(target + 1)")
            #expect(entry.json["objects"]?[0]?["kind"] == .string("stream"))
            #expect(entry.json["objects"]?[0]?["fields"]?[0]?["field"] == .string("listen"))
            let revert = try await h.request(.post, "/api/v1/revert", #"{"to_version":\#(target)}"#)
            #expect(revert.status == 200)
            #expect(try await text(h, KeySchema.default.stream("db")) == stored)
            #expect(try await text(h, KeySchema.default.stream("new")) == nil)
            #expect(try await text(h, KeySchema.default.digest) == digestAtTarget)
            #expect(revert.json["digest"] == revert.json["digest_at_version"])
            #expect(try await digestAgrees(h))
        }
    }

    @Test func streamsOfTheFirstVersionAreMigratedOnce() async throws {
        try await withController { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/pg", Self.upstream).status == 201)
            // as the first version's sy_stream left them: its own version, change stream, no hash
            _ = try await h.redis.send("SET", KeySchema.default.stream("old"), #"{"version":3,"id":"old","listen":15999,"upstream":"pg"}"#)
            _ = try await h.redis.send("SADD", KeySchema.default.streams, "old")
            _ = try await h.redis.send("SET", KeySchema.default.base + "stream_version", "3")
            _ = try await h.redis.send("XADD", KeySchema.default.base + "stream_changes", "3-0", "kind", "stream", "id", "old")
            let before = try await h.storedVersion()
            let library = try String(contentsOf: repositoryRoot().appendingPathComponent("redis/switchyard.lua"), encoding: .utf8)
            let store = ConfigStore(redis: h.redis, library: library, logger: Logger(label: "test.migrate"))
            #expect(try await store.migrateStreams() == 1)
            #expect(try await h.storedVersion() == before + 1)
            #expect(
                try await h.redis.send("EXISTS", KeySchema.default.base + "stream_version", KeySchema.default.base + "stream_changes")
                    .integer == 0)
            #expect(try await digestAgrees(h))
            // a resync entry: every edge reloads once and then holds the stream
            let last = try await h.redis.send("XREVRANGE", KeySchema.default.changes, "+", "-", "COUNT", "1").array?.first
            #expect(last?.array?[1].array?.compactMap(\.text).contains("resync") == true)
            #expect(try await store.migrateStreams() == 0)
            #expect(try await h.storedVersion() == before + 1)
            #expect(try await h.request(.get, "/api/v1/streams/old").json["listen"] == .integer(15999))
        }
    }
}
