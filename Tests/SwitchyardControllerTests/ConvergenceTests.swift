import Foundation
import Hummingbird
import HummingbirdTesting
import SwitchyardController
import SwitchyardCore
import SwitchyardRedis
import SwitchyardTestSupport
import Testing

@Suite("Convergence verdicts (pure)")
struct ConvergenceVerdictTests {
    let now: Int64 = 1_700_000_000_000

    func edge(_ id: String, _ applied: Int64?, _ digest: String?, age: Int64 = 500) -> EdgeHeartbeat {
        var fields: [(String, String)] = [("id", id), ("last_seen", "\(now - age)")]
        if let applied { fields.append(("applied_version", "\(applied)")) }
        if let digest { fields.append(("digest", digest)) }
        return EdgeHeartbeat(id: id, fields: fields, heartbeat: now - age)
    }

    @Test func edgesAtTheVersionWithTheDigestHaveConverged() {
        let state = ConfigState(version: 7, digest: "00000000000aa")
        let verdicts = Convergence.evaluate(
            state: state, edges: [edge("a", 7, "00000000000aa"), edge("b", 7, "00000000000aa")],
            now: now, target: nil)
        #expect(verdicts.allSatisfy { $0.live && $0.inSync && $0.problem == nil })
    }

    @Test func aLaggingLiveEdgeIsAProblemAStaleOneIsNot() {
        let state = ConfigState(version: 7, digest: "00000000000aa")
        let verdicts = Convergence.evaluate(
            state: state, edges: [edge("slow", 5, "0000000000001"), edge("gone", 3, "0000000000002", age: 6_000)], now: now, target: nil)
        #expect(verdicts[0].live && !verdicts[0].inSync)
        #expect(verdicts[0].problem == "edge slow has applied version 5, not yet 7")
        #expect(!verdicts[1].live && verdicts[1].problem == nil)
    }

    @Test func sameVersionOtherDigestIsADivergence() {
        let state = ConfigState(version: 7, digest: "00000000000aa")
        let verdict = Convergence.evaluate(state: state, edges: [edge("odd", 7, "00000000000bb")], now: now, target: nil)[0]
        #expect(!verdict.inSync)
        #expect(verdict.problem?.contains("digest 00000000000bb, Redis has 00000000000aa") == true)
    }

    @Test func waitingForAnOlderVersionAcceptsEdgesOnTheirWay() {
        let state = ConfigState(version: 9, digest: "00000000000aa")
        let verdicts = Convergence.evaluate(
            state: state, edges: [edge("a", 8, "0000000000001"), edge("b", 9, "00000000000aa")],
            now: now, target: 8)
        #expect(verdicts.allSatisfy { $0.problem == nil })
        #expect(!verdicts[0].inSync && verdicts[1].inSync)
        // but an edge at Redis's version with another digest is still a problem
        let odd = Convergence.evaluate(state: state, edges: [edge("c", 9, "0000000000003")], now: now, target: 8)[0]
        #expect(odd.problem != nil)
    }

    @Test func digestsThatCannotBeComparedDoNotBlock() {
        // an edge older than the digest, and Redis data written before it existed
        let old = Convergence.evaluate(
            state: ConfigState(version: 4, digest: "00000000000aa"), edges: [edge("old", 4, nil)],
            now: now, target: nil)[0]
        #expect(old.inSync && old.problem == nil)
        let noDigest = Convergence.evaluate(
            state: ConfigState(version: 4, digest: nil), edges: [edge("a", 4, "0000000000001")],
            now: now, target: nil)[0]
        #expect(noDigest.inSync && noDigest.problem == nil)
        // an empty Redis has the zero digest
        let empty = Convergence.evaluate(
            state: ConfigState(version: 0, digest: nil), edges: [edge("a", 0, "0000000000001")],
            now: now, target: nil)[0]
        #expect(!empty.inSync && empty.problem != nil)
    }

    @Test func anEdgeAheadOfRedisOrWithoutAVersionIsAProblem() {
        let state = ConfigState(version: 3, digest: "00000000000aa")
        let verdicts = Convergence.evaluate(
            state: state, edges: [edge("ahead", 9, "00000000000aa"), edge("blank", nil, nil)],
            now: now, target: nil)
        // it keeps its configuration instead of following Redis back: the problem says why and how to end it
        #expect(verdicts[0].problem?.contains("keeps its configuration") == true, "\(verdicts[0].problem ?? "nil")")
        #expect(verdicts[0].problem?.contains("POST /api/v1/reseed") == true)
        #expect(verdicts[1].problem == "edge blank reports no applied version")
    }

    @Test func anEdgeOfAnotherEpochIsAConflictUnlessRedisWasReseeded() {
        func withEpoch(_ e: EdgeHeartbeat, _ epoch: String, conflict: String? = nil) -> EdgeHeartbeat {
            var e = e
            e.fields.append(("epoch", epoch))
            if let conflict { e.fields.append(("conflict", conflict)) }
            return e
        }
        let digest = "00000000000aa"
        // Redis flushed, then a write started epoch e2 at version 1; the edge holds 104 of e1
        let flushed = ConfigState(version: 1, digest: digest, epoch: "e2")
        let held = Convergence.evaluate(
            state: flushed, edges: [withEpoch(edge("a", 104, digest), "e1", conflict: "Redis holds epoch e2 at version 1")],
            now: now, target: nil)[0]
        #expect(held.problem?.contains("Redis holds epoch e2 at version 1") == true, "\(held.problem ?? "nil")")
        #expect(held.problem?.contains(#"{"confirm":"e2"}"#) == true, "\(held.problem ?? "nil")")
        #expect(!held.inSync)
        // re-seeded: the edge follows (it is only behind), no conflict
        var reseeded = flushed
        reseeded.adopt = "e2"
        let following = Convergence.evaluate(state: reseeded, edges: [withEpoch(edge("a", 104, digest), "e1")], now: now, target: nil)[0]
        #expect(following.problem?.contains("keeps its configuration") != true, "\(following.problem ?? "nil")")
        // the same epoch, Redis behind the edge (an older backup): a conflict, named by versions
        let older = Convergence.evaluate(
            state: ConfigState(version: 90, digest: digest, epoch: "e1"), edges: [withEpoch(edge("a", 104, digest), "e1")],
            now: now, target: nil)[0]
        #expect(older.problem?.contains("at version 90, behind it") == true, "\(older.problem ?? "nil")")
        // Redis lost everything (no epoch, version 0): the edge keeps its configuration, a problem too
        let empty = Convergence.evaluate(
            state: ConfigState(version: 0, digest: nil), edges: [withEpoch(edge("a", 104, digest), "e1")], now: now, target: nil)[0]
        #expect(empty.problem?.contains(#"{"confirm":"none"}"#) == true, "\(empty.problem ?? "nil")")
        // an edge that knows no epoch yet, at Redis's version: in sync
        let plain = Convergence.evaluate(
            state: ConfigState(version: 7, digest: digest, epoch: "e1"), edges: [edge("a", 7, digest)], now: now, target: nil)[0]
        #expect(plain.problem == nil && plain.inSync)
    }

    @Test func anEdgeHoldingDocumentsEditedByHandIsNamedWithThem() {
        var e = edge("a", 7, "000000000000b")
        e.fields += [("out_of_band", "2"), ("out_of_band_keys", "route:x,route:y"), ("recorded_digest", "00000000000aa")]
        let verdict = Convergence.evaluate(state: ConfigState(version: 7, digest: "00000000000aa"), edges: [e], now: now, target: nil)[0]
        #expect(verdict.problem?.contains("route:x, route:y") == true, "\(verdict.problem ?? "nil")")
        #expect(verdict.problem?.contains("sy_digest") == true && verdict.problem?.contains("differ too") == false)
        // and when the rest differs too, it says so
        e.fields.removeAll { $0.0 == "recorded_digest" }
        let worse = Convergence.evaluate(state: ConfigState(version: 7, digest: "00000000000aa"), edges: [e], now: now, target: nil)[0]
        #expect(worse.problem?.contains("differ too") == true, "\(worse.problem ?? "nil")")
    }

    @Test func anEdgeRunningAnotherRegexEngineIsAProblem() {
        var pcre2 = edge("a", 7, "00000000000aa")
        pcre2.fields.append(("regex", "pcre2"))
        var pcre1 = edge("b", 7, "00000000000aa")
        pcre1.fields.append(("regex", "pcre1"))
        let older = edge("c", 7, "00000000000aa")  // reports none: not compared
        let verdicts = Convergence.evaluate(
            state: ConfigState(version: 7, digest: "00000000000aa"), edges: [pcre2, pcre1, older], now: now, target: nil,
            regexEngine: "pcre1")
        #expect(verdicts[0].problem?.contains("--regex-engine pcre2") == true, "\(verdicts[0].problem ?? "nil")")
        #expect(verdicts[1].problem == nil && verdicts[2].problem == nil)
        // a stale edge is listed, never a problem
        var gone = pcre2
        gone.fields.removeAll { $0.0 == "last_seen" }
        gone.heartbeat = now - 60_000
        #expect(
            Convergence.evaluate(
                state: ConfigState(version: 7, digest: "00000000000aa"), edges: [gone], now: now, target: nil, regexEngine: "pcre1")[0]
                .problem == nil)
    }

    @Test func waitParametersAreValidated() {
        let plain = Convergence.waitParameters([])
        #expect(plain.target == nil && plain.timeout == .zero && plain.problems.isEmpty)
        let wait = Convergence.waitParameters([("wait_version", "12")])
        #expect(wait.target == 12 && wait.timeout == .milliseconds(10_000) && wait.problems.isEmpty)
        let both = Convergence.waitParameters([("wait_version", "0"), ("timeout_ms", "60000")])
        #expect(both.target == 0 && both.timeout == .seconds(60) && both.problems.isEmpty)
        for bad in [
            [("wait_version", "-1")], [("wait_version", "x")], [("wait_version", "1"), ("timeout_ms", "60001")],
            [("wait_version", "1"), ("timeout_ms", "-5")], [("timeout_ms", "100")], [("wait_versoin", "1")],
        ] {
            #expect(!Convergence.waitParameters(bad).problems.isEmpty, "\(bad)")
        }
        let many = Convergence.waitParameters([("wait_version", "x"), ("timeout_ms", "y"), ("other", "")])
        #expect(Set(many.problems.map(\.field)) == ["wait_version", "timeout_ms", "other"])
    }
}

@Suite("Digest in Redis and GET /status", .serialized)
struct DigestAndStatusTests {
    /// The digest computed by an independent script over the indexed documents.
    static let recompute = """
        local d = 0
        for _, kind in ipairs({'upstream', 'route'}) do
          for _, id in ipairs(redis.call('SMEMBERS', KEYS[1] .. kind .. 's')) do
            local doc = redis.call('GET', KEYS[1] .. kind .. ':' .. id)
            if doc then d = (d + tonumber(redis.sha1hex(kind .. ':' .. id .. '\\n' .. doc):sub(1, 13), 16)) % 2^52 end
          end
        end
        return string.format('%013x', d)
        """

    func digests(_ h: Harness) async throws -> (stored: String?, recomputed: String?) {
        let stored = try await h.redis.send("GET", ConfigStore.digestKey).text
        let recomputed = try await h.redis.send("EVAL", Self.recompute, "1", KeySchema.default.base).text
        return (stored, recomputed)
    }

    @Test func everyWriteKeepsTheDigestOfTheStoredDocuments() async throws {
        try await withController { h in
            try await h.request(.put, "/api/v1/upstreams/backend", backendBody)
            var (stored, recomputed) = try await digests(h)
            #expect(stored != nil && stored?.count == 13 && stored == recomputed)
            try await h.request(.put, "/api/v1/routes/bbs-api", routeBody)
            try await h.request(.put, "/api/v1/upstreams/backend/endpoints/10.0.0.2:80")
            try await h.request(
                .post, "/api/v1/apply",
                #"{"upstreams":[{"name":"web","endpoints":[]}],"routes":[{"id":"web","host":"w.test","path":"/","upstream":"web"}]}"#)
            (stored, recomputed) = try await digests(h)
            #expect(stored == recomputed)
            // an identical put changes nothing, the digest included
            let before = stored
            try await h.request(.put, "/api/v1/routes/bbs-api", routeBody)
            #expect(try await digests(h).stored == before)
            try await h.request(.delete, "/api/v1/routes/web")
            try await h.request(.delete, "/api/v1/upstreams/web")
            (stored, recomputed) = try await digests(h)
            #expect(stored == recomputed && stored != before)
            // deleting everything brings it back to zero
            try await h.request(.delete, "/api/v1/routes/bbs-api")
            try await h.request(.delete, "/api/v1/upstreams/backend")
            #expect(try await digests(h).stored == Convergence.zeroDigest)
        }
    }

    @Test func aMissingDigestIsRecomputedAndSyDigestAdoptsHandEdits() async throws {
        try await withController { h in
            try await h.request(.put, "/api/v1/upstreams/backend", backendBody)
            try await h.request(.put, "/api/v1/routes/bbs-api", routeBody)
            // data from before the digest existed: the next write computes it from scratch
            _ = try await h.redis.send("DEL", ConfigStore.digestKey)
            try await h.request(.put, "/api/v1/upstreams/backend/endpoints/10.0.0.3:80")
            var (stored, recomputed) = try await digests(h)
            #expect(stored != nil && stored == recomputed)
            // a document typed in by hand is invisible to sy_apply...
            _ = try await h.redis.send("SET", KeySchema.default.route("by-hand"), "garbage {")
            _ = try await h.redis.send("SADD", KeySchema.default.routes, "by-hand")
            (stored, recomputed) = try await digests(h)
            #expect(stored != recomputed)
            // ...until sy_digest adopts it: the recorded hashes and the digest follow what is
            // stored, and the version moves once (a resync entry) so the edges reload it
            let version = try await h.storedVersion()
            let reply = try await h.redis.send("FCALL", "sy_digest", "1", KeySchema.default.version)
            #expect(reply.array?.first?.integer == version + 1)
            (stored, recomputed) = try await digests(h)
            #expect(stored == recomputed && reply.array?[1].text == stored)
            #expect(reply.array?[2].integer == 1)  // one document adopted
            #expect(try await h.storedVersion() == version + 1)
            // nothing left to adopt: nothing moves
            let again = try await h.redis.send("FCALL", "sy_digest", "1", KeySchema.default.version)
            #expect(again.array?.first?.integer == version + 1 && again.array?[2].integer == 0)
            // and from then on writes keep it, the garbage's replacement included
            try await h.request(.put, "/api/v1/routes/by-hand", #"{"host":"h.test","path":"/","upstream":"backend"}"#)
            (stored, recomputed) = try await digests(h)
            #expect(stored == recomputed)
        }
    }

    /// Registers a fake edge the way an edge's heartbeat does.
    func register(_ h: Harness, _ id: String, applied: Int64, digest: String) async throws {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let now = Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
        _ = try await h.redis.send(
            "HSET", KeySchema.default.edge(id), "id", id, "applied_version", "\(applied)", "digest", digest,
            "last_seen", "\(now)", "listen", "127.0.0.1:1")
        _ = try await h.redis.send("ZADD", KeySchema.default.edges, "\(now)", id)
    }

    @Test func statusComparesEdgesWithRedisAndWaits() async throws {
        try await withController { h in
            let empty = try await h.request(.get, "/api/v1/status")
            #expect(
                empty.status == 200 && empty.json["converged"] == .bool(true) && empty.json["digest"] == .string(Convergence.zeroDigest))
            try await h.request(.put, "/api/v1/upstreams/backend", backendBody)
            let version = try await h.storedVersion()
            let digest = try #require(try await digests(h).stored)
            try await register(h, "e1", applied: version, digest: digest)
            try await register(h, "e2", applied: version - 1, digest: "0000000000001")

            var answer = try await h.request(.get, "/api/v1/status")
            #expect(answer.json["converged"] == .bool(false))
            #expect(answer.json["problems"] == .array([.string("edge e2 has applied version \(version - 1), not yet \(version)")]))
            #expect(answer.json["live_edges"] == .integer(2))
            let e1 = try #require(answer.json["edges"]?[0])
            #expect(e1["id"] == "e1" && e1["in_sync"] == .bool(true) && e1["live"] == .bool(true) && e1["digest"] == .string(digest))
            #expect(e1["lag"] == .integer(0))

            // waiting for a version e2 never reports: a clear "no" at the timeout
            let clock = ContinuousClock()
            var start = clock.now
            answer = try await h.request(.get, "/api/v1/status?wait_version=\(version)&timeout_ms=300")
            #expect(clock.now - start >= .milliseconds(300) && clock.now - start < .seconds(2))
            #expect(answer.status == 200 && answer.json["converged"] == .bool(false))
            #expect(answer.json["wait"]?["version"] == .integer(version) && answer.json["wait"]?["timeout_ms"] == .integer(300))

            // e2 catches up while the request waits: answered as soon as it has
            start = clock.now
            async let waited = h.request(.get, "/api/v1/status?wait_version=\(version)&timeout_ms=5000")
            try await Task.sleep(for: .milliseconds(200))
            try await register(h, "e2", applied: version, digest: digest)
            answer = try await waited
            #expect(answer.json["converged"] == .bool(true) && clock.now - start < .seconds(2))

            // an edge with the right version but other documents
            try await register(h, "e2", applied: version, digest: "0000000000bad")
            answer = try await h.request(.get, "/api/v1/status")
            #expect(answer.json["converged"] == .bool(false))
            #expect(answer.json["edges"]?[1]?["in_sync"] == .bool(false))

            let invalid = try await h.request(.get, "/api/v1/status?wait_version=1&timeout_ms=70000")
            #expect(invalid.status == 422 && invalid.errorFields == ["timeout_ms"])
        }
    }
}
