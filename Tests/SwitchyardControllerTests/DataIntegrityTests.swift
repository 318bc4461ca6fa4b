import Foundation
import Hummingbird
import HummingbirdTesting
import SwitchyardController
import SwitchyardCore
import SwitchyardRedis
import SwitchyardTestSupport
import Testing

// Configuration integrity (issue 16, M5 and M7): keys of the wrong type, the configuration
// history (epoch) after Redis lost its data, re-seeding. In-process API against a real
// Redis; edges are represented by the heartbeat hashes real edges write.

@Suite("Configuration integrity: wrong types, epochs, reseed")
struct DataIntegrityTests {
    static let upstream = #"{"endpoints":[{"address":"127.0.0.1:9"}]}"#

    /// Registers a live edge the way an edge's heartbeat does (lua/switchyard/sync/heartbeat.lua).
    func heartbeat(_ h: Harness, id: String, applied: Int64, epoch: String) async throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        _ = try await h.redis.send(
            "HSET", KeySchema.default.edge(id), "applied_version", "\(applied)", "epoch", epoch, "last_seen", "\(now)")
        _ = try await h.redis.send("ZADD", KeySchema.default.edges, "\(now)", id)
    }

    func epoch(_ h: Harness) async throws -> String? {
        try await h.redis.send("GET", KeySchema.default.epoch).text
    }

    @Test func aKeyOfTheWrongTypeIsNamedAndNothingIsWritten() async throws {
        try await withController { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/u", Self.upstream).status == 201)
            let before = try await h.storedVersion()
            _ = try await h.redis.send("SET", KeySchema.default.usedBy("u"), "typed by hand")
            let answer = try await h.request(.put, "/api/v1/routes/r", #"{"host":"a.test","path":"/","upstream":"u"}"#)
            #expect(answer.status == 500 && answer.errorCode == "store_corrupt", "\(answer.json)")
            #expect("\(answer.json)".contains(KeySchema.default.usedBy("u")), "\(answer.json)")
            #expect(try await h.storedVersion() == before)
            #expect(try await h.redis.send("GET", KeySchema.default.route("r")).text == nil)
        }
    }

    @Test func theFirstWriteStartsAHistoryTheStatusShows() async throws {
        try await withController { h in
            #expect(try await epoch(h) == nil)
            #expect(try await h.request(.put, "/api/v1/upstreams/u", Self.upstream).status == 201)
            let stored = try #require(try await epoch(h))
            #expect(stored.count == 32 && stored.allSatisfy(\.isHexDigit))
            let status = try await h.request(.get, "/api/v1/status")
            #expect(status.json["epoch"] == .string(stored), "\(status.json)")
        }
    }

    @Test func reseedNeedsRedissEpochNowAndStartsANewHistory() async throws {
        try await withController { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/u", Self.upstream).status == 201)
            let old = try #require(try await epoch(h))
            let version = try await h.storedVersion()
            // confirm is required, and must be an epoch or "none"
            for body in ["{}", #"{"confirm":"yes"}"#, #"{"confirm":"none","force":true}"#] {
                let answer = try await h.request(.post, "/api/v1/reseed", body)
                #expect(answer.status == 422, "\(body): \(answer.json)")
            }
            // "none" while Redis has an epoch: refused, naming Redis's epoch
            let wrong = try await h.request(.post, "/api/v1/reseed", #"{"confirm":"none"}"#)
            #expect(wrong.status == 409 && wrong.errorCode == "confirm_mismatch", "\(wrong.json)")
            #expect("\(wrong.json)".contains(old))
            let (versionAfter, epochAfter) = (try await h.storedVersion(), try await epoch(h))
            #expect(versionAfter == version && epochAfter == old)
            // the right one: a new epoch, adopted, above every version seen
            let seeded = try await h.request(.post, "/api/v1/reseed", #"{"confirm":"\#(old)"}"#)
            #expect(seeded.status == 200, "\(seeded.json)")
            guard case .string(let new)? = seeded.json["epoch"] else {
                Issue.record("no epoch in \(seeded.json)")
                return
            }
            #expect(new != old && seeded.json["previous_epoch"] == .string(old))
            #expect(try await h.redis.send("GET", KeySchema.default.adopt).text == new)
            #expect((seeded.version ?? 0) > version)
            // one resync entry in the stream, at the new version
            let last = try await h.redis.send("XREVRANGE", KeySchema.default.changes, "+", "-", "COUNT", "1")
            let entry = last.array?.first?.array
            #expect(entry?[0].text == "\(seeded.version ?? 0)-0")
            #expect(entry?[1].array?.compactMap(\.text).contains("resync") == true)
            // and this controller writes the new history
            #expect(try await h.request(.put, "/api/v1/upstreams/v", Self.upstream).status == 201)
            #expect(try await epoch(h) == new)
        }
    }

    @Test func aReseedDoneElsewhereIsFollowedAFlushIsNot() async throws {
        try await withController { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/u", Self.upstream).status == 201)
            let old = try #require(try await epoch(h))
            // another controller (or redis-cli) re-seeded: adopt names the new epoch
            _ = try await h.redis.send("FCALL", "sy_reseed", "1", KeySchema.default.version, old)
            let new = try #require(try await epoch(h))
            #expect(new != old)
            #expect(try await h.request(.put, "/api/v1/upstreams/v", Self.upstream).status == 201)
            // an epoch changed without adopt (a backup of another installation) is not followed
            _ = try await h.redis.send("SET", KeySchema.default.epoch, String(repeating: "e", count: 32))
            let refused = try await h.request(.put, "/api/v1/upstreams/w", Self.upstream)
            #expect(refused.status == 409 && refused.errorCode == "redis_data_lost", "\(refused.json)")
            #expect(try await h.redis.send("GET", KeySchema.default.upstream("w")).text == nil)
        }
    }

    @Test func writesAreRefusedWhileALiveEdgeHoldsAnotherHistory() async throws {
        try await withController { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/u", Self.upstream).status == 201)
            let current = try #require(try await epoch(h))
            let version = try await h.storedVersion()
            // an edge that applied version 104 of another epoch (Redis was replaced under it)
            let other = String(repeating: "a", count: 32)
            try await heartbeat(h, id: "edge-x", applied: 104, epoch: other)
            let refused = try await h.request(.put, "/api/v1/upstreams/v", Self.upstream)
            #expect(refused.status == 409 && refused.errorCode == "epoch_conflict", "\(refused.json)")
            #expect("\(refused.json)".contains("edge-x") && "\(refused.json)".contains("/api/v1/reseed"), "\(refused.json)")
            #expect(try await h.storedVersion() == version)
            let status = try await h.request(.get, "/api/v1/status")
            #expect("\(status.json)".contains("keeps its configuration"), "\(status.json)")
            // the same edge back on Redis's history: writes go through
            try await heartbeat(h, id: "edge-x", applied: version, epoch: current)
            #expect(try await h.request(.put, "/api/v1/upstreams/v", Self.upstream).status == 201)
        }
    }

    @Test func aControllerThatKnowsNoHistoryCannotStartOneUnderLiveEdges() async throws {
        try await withController { h in
            // Redis is empty, and this controller never wrote: but a live edge serves version 7
            try await heartbeat(h, id: "edge-1", applied: 7, epoch: String(repeating: "b", count: 32))
            let refused = try await h.request(.put, "/api/v1/upstreams/u", Self.upstream)
            #expect(refused.status == 409 && refused.errorCode == "redis_data_lost", "\(refused.json)")
            #expect("\(refused.json)".contains("edge-1"), "\(refused.json)")
            let (versionAfter, epochAfter) = (try await h.storedVersion(), try await epoch(h))
            #expect(versionAfter == 0 && epochAfter == nil)
            // re-seeding the empty Redis starts above the edge's version
            let seeded = try await h.request(.post, "/api/v1/reseed", #"{"confirm":"none"}"#)
            #expect(seeded.status == 200 && (seeded.version ?? 0) == 8, "\(seeded.json)")
        }
    }

    // MARK: M6: documents changed behind sy_apply's back

    @Test func theDocumentCheckNamesEveryDocumentThatIsNotWhatSyApplyWrote() async throws {
        try await withController { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/u", Self.upstream).status == 201)
            for id in ["edited", "kept", "unindexed"] {
                let body = #"{"host":"\#(id).test","path":"/","upstream":"u"}"#
                #expect(try await h.request(.put, "/api/v1/routes/\(id)", body).status == 201)
            }
            let clean = try await h.request(.get, "/api/v1/status?check=documents")
            #expect(clean.status == 200 && clean.json["documents"]?["differ"]?.count == 0, "\(clean.json)")
            #expect(clean.json["documents"]?["checked"] == .integer(4))
            // four ways to change Redis behind sy_apply's back
            let key = KeySchema.default.route("edited")
            let stored = try #require(try await h.redis.send("GET", key).text)
            _ = try await h.redis.send("SET", key, stored.replacingOccurrences(of: #""priority":0"#, with: #""priority":7"#))
            _ = try await h.redis.send("SET", KeySchema.default.route("typed"), #"{"version":1,"id":"typed"}"#)
            _ = try await h.redis.send("SADD", KeySchema.default.routes, "typed", "ghost")
            _ = try await h.redis.send("SREM", KeySchema.default.routes, "unindexed")
            let version = try await h.storedVersion()
            let check = try await h.request(.get, "/api/v1/status?check=documents")
            #expect(check.status == 200, "\(check.json)")
            var found: [String: String] = [:]
            if case .array(let items)? = check.json["documents"]?["differ"] {
                for item in items {
                    if case .string(let k)? = item["key"], case .string(let p)? = item["problem"] { found[k] = p }
                }
            }
            #expect(
                found == ["route:edited": "edited", "route:typed": "unrecorded", "route:ghost": "missing", "route:unindexed": "unindexed"],
                "\(found)")
            #expect("\(check.json["problems"] ?? .null)".contains("sy_digest"), "\(check.json)")
            #expect(try await h.storedVersion() == version)  // a check writes nothing
            // adopting them (sy_digest) leaves only the document without its index entry's
            // counterpart: nothing
            _ = try await h.redis.send("SREM", KeySchema.default.routes, "ghost")
            _ = try await h.redis.send("FCALL", "sy_digest", "1", KeySchema.default.version)
            let after = try await h.request(.get, "/api/v1/status?check=documents")
            #expect(after.json["documents"]?["differ"]?.count == 0, "\(after.json)")
            // an unknown check is refused
            #expect(try await h.request(.get, "/api/v1/status?check=everything").status == 422)
        }
    }

    // MARK: L4: the batch bound

    static func upstreams(_ range: Range<Int>, padding: Int = 0) -> String {
        let pad = padding > 0 ? #","health_check":{"type":"http","path":"/\#(String(repeating: "p", count: padding))"}"# : ""
        return range.map { #"{"name":"u\#($0)","endpoints":[]\#(pad)}"# }.joined(separator: ",")
    }

    @Test func anAtomicBatchIsBoundedInObjectsAndBytesAndNamesTheBounds() async throws {
        try await withController { h in
            let tooMany = try await h.request(.post, "/api/v1/apply", #"{"upstreams":[\#(Self.upstreams(0..<1001))]}"#)
            #expect(tooMany.status == 413 && tooMany.errorCode == "too_large", "\(tooMany.json)")
            #expect("\(tooMany.json)".contains("1000") && "\(tooMany.json)".contains("\(Batch.maxBytes)"))
            #expect("\(tooMany.json)".contains("atomic=false"))
            // few objects, but more bytes than the bound
            let big = try await h.request(.post, "/api/v1/apply", #"{"upstreams":[\#(Self.upstreams(0..<3, padding: 900_000))]}"#)
            #expect(big.status == 413 && big.errorCode == "too_large", "\(big.status)")
            #expect(try await h.storedVersion() == 0)
            // exactly the bound is one version
            let full = try await h.request(.post, "/api/v1/apply", #"{"upstreams":[\#(Self.upstreams(0..<1000))]}"#)
            #expect(full.status == 200 && full.version == 1, "\(full.json)")
            // the Function keeps the same bound for callers that bypass the controller
            var args = ["FCALL", "sy_apply", "1", KeySchema.default.version]
            for i in 0...Batch.maxObjects { args += ["put", "upstream", "raw\(i)", #"{"name":"raw\#(i)","endpoints":[]}"#, "", ""] }
            let raw = try await h.redis.send(args)
            guard case .error(let message) = raw else {
                Issue.record("1,001 operations in one FCALL were accepted: \(raw)")
                return
            }
            #expect(message.contains("too_large"), "\(message)")
            // an unknown parameter or value is refused
            #expect(try await h.request(.post, "/api/v1/apply?atomic=yes", #"{"upstreams":[]}"#).status == 422)
            #expect(try await h.request(.post, "/api/v1/apply?atomc=false", #"{"upstreams":[]}"#).status == 422)
        }
    }

    @Test func aNonAtomicBatchIsAppliedInPartsOfAtMostTheBound() async throws {
        try await withController { h in
            let body = #"{"upstreams":[\#(Self.upstreams(0..<2300))],"routes":[{"id":"r","host":"a.test","path":"/","upstream":"u2299"}]}"#
            let answer = try await h.request(.post, "/api/v1/apply?atomic=false", body)
            #expect(answer.status == 200, "\(answer.json)")
            #expect(answer.json["versions"] == .array([.integer(1), .integer(2), .integer(3)]), "\(answer.json)")
            #expect(answer.json["changed"] == .integer(2301) && answer.version == 3)
            #expect(try await h.redis.send("SCARD", KeySchema.default.upstreams).integer == 2300)
            #expect(try await h.redis.send("HGET", KeySchema.default.uses, "r").text == "u2299")
            // a part refused by Redis stops there, and the answer says what was applied
            _ = try await h.redis.send("HSET", KeySchema.default.owners, "upstream:v1500", "k8s/switchyard")
            _ = try await h.redis.send("SET", KeySchema.default.upstream("v1500"), #"{"version":3,"name":"v1500","endpoints":[]}"#)
            _ = try await h.redis.send("SADD", KeySchema.default.upstreams, "v1500")
            let vs = (0..<2000).map { #"{"name":"v\#($0)","endpoints":[{"address":"127.0.0.1:9"}]}"# }.joined(separator: ",")
            let refused = try await h.request(.post, "/api/v1/apply?atomic=false", #"{"upstreams":[\#(vs)]}"#)
            #expect(refused.status == 409 && refused.errorCode == "owned", "\(refused.json)")
            #expect(refused.json["error"]?["applied_versions"] == .array([.integer(4)]), "\(refused.json)")
            #expect(try await h.redis.send("EXISTS", KeySchema.default.upstream("v999")).integer == 1)
            #expect(try await h.redis.send("EXISTS", KeySchema.default.upstream("v1000")).integer == 0)
        }
    }
}
