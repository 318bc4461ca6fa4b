// Convergence: do the live edges hold exactly what Redis holds?
//
// Every edge heartbeats (about once a second, and right after it applies a new version) a
// hash with its applied version and the digest of the documents in its shared dict; sy_apply
// keeps the same digest of the documents in Redis (redis/README.md, "The digest"). An edge
// is converged when it has applied the version Redis has and reports Redis's digest. The
// edges' hashes are read BEFORE Redis's version and digest (one pipeline, in order), so an
// edge can never look ahead of the version it is compared with.
//
// The verdict (`Convergence.evaluate`) is pure and tested without sockets; `ConfigStore.
// convergence(waitFor:timeout:)` reads Redis and, for `GET /status?wait_version=N`, polls
// until every live edge has applied N or the timeout passes.

import Logging
import SwitchyardCore
import SwitchyardRedis

/// One edge's registration as read from Redis.
public struct EdgeHeartbeat: Sendable {
    public var id: String
    /// The fields of `switchyard:{cfg}:edge:<id>` in Redis's order (empty once it expired).
    public var fields: [(String, String)]
    /// Its score in `switchyard:{cfg}:edges`: the last heartbeat, ms since the epoch.
    public var heartbeat: Int64

    public init(id: String, fields: [(String, String)], heartbeat: Int64) {
        self.id = id
        self.fields = fields
        self.heartbeat = heartbeat
    }

    public func field(_ name: String) -> String? { fields.first(where: { $0.0 == name })?.1 }

    public var appliedVersion: Int64? { field("applied_version").flatMap { Int64($0) } }

    /// The edge's digest; nil for an edge that does not report one (older than this feature).
    public var digest: String? { field("digest").flatMap { $0.isEmpty ? nil : $0 } }

    public var lastSeen: Int64 { field("last_seen").flatMap { Int64($0) } ?? heartbeat }

    /// The configuration history of its applied version; nil when it knows none (older
    /// edges, or an edge that has applied nothing with an epoch yet).
    public var epoch: String? { field("epoch").flatMap { $0.isEmpty ? nil : $0 } }

    /// Why the edge holds its configuration instead of following Redis (its own words), nil
    /// when it follows.
    public var conflict: String? { field("conflict").flatMap { $0.isEmpty ? nil : $0 } }

    /// How many documents the edge loaded although they were changed in Redis behind
    /// sy_apply's back (redis/README.md, "The digest"), and the first of them.
    public var outOfBand: Int { field("out_of_band").flatMap { Int($0) } ?? 0 }
    public var outOfBandKeys: [String] { (field("out_of_band_keys") ?? "").split(separator: ",").map(String.init) }

    /// The regex engine its `ngx.re` runs (`pcre1`, `pcre2`); nil for older edges.
    public var regexEngine: String? { field("regex").flatMap { $0.isEmpty ? nil : $0 } }

    /// The digest Redis has if the only difference is those documents.
    public var recordedDigest: String? { field("recorded_digest").flatMap { $0.isEmpty ? nil : $0 } }
}

/// The configuration version and digest in Redis, read after the edges' heartbeats.
public struct ConfigState: Sendable, Equatable {
    public var version: Int64
    /// nil when Redis has none yet: data written before the digest existed, until the next
    /// write computes it (an empty configuration's digest is `Convergence.zeroDigest`).
    public var digest: String?
    /// The configuration history (redis/README.md, "When Redis lost its data"); nil before
    /// the first write, and after Redis lost its data.
    public var epoch: String?
    /// The epoch an operator re-seeded: edges of another epoch follow this one.
    public var adopt: String?

    public init(version: Int64, digest: String?, epoch: String? = nil, adopt: String? = nil) {
        self.version = version
        self.digest = digest
        self.epoch = epoch
        self.adopt = adopt
    }
}

/// The verdict about one edge.
public struct EdgeVerdict: Sendable, Equatable {
    public var id: String
    /// Heartbeat within `Convergence.liveMilliseconds`; only live edges count.
    public var live: Bool
    /// Applied the version Redis has, with the same digest.
    public var inSync: Bool
    /// Why this live edge keeps the answer from being converged (nil when it does not).
    public var problem: String?
}

/// The whole answer of `GET /api/v1/status`.
public struct ConvergenceReport: Sendable {
    public var state: ConfigState
    public var edges: [EdgeHeartbeat]
    public var verdicts: [EdgeVerdict]
    /// Every live edge has applied at least the target version, and every live edge at
    /// Redis's version reports Redis's digest.
    public var converged: Bool
    /// The version waited for (`wait_version`), or nil for a plain status.
    public var target: Int64?
    /// Time spent waiting.
    public var waited: Duration = .zero
    public var timeout: Duration?

    public var problems: [String] { verdicts.compactMap(\.problem) }
}

public enum Convergence {
    /// An edge whose last heartbeat is older than this (five missed beats) is not live: it
    /// is listed but cannot hold up convergence (its registration expires after 15 s).
    public static let liveMilliseconds: Int64 = 5_000
    /// The digest of an empty configuration.
    public static let zeroDigest = "0000000000000"
    /// Largest `timeout_ms` a status request may wait.
    public static let maxTimeoutMilliseconds: Int64 = 60_000
    /// `timeout_ms` when only `wait_version` is given.
    public static let defaultTimeoutMilliseconds: Int64 = 10_000

    /// Judges every edge. `target`: the version waited for (nil: Redis's version);
    /// `regexEngine`: the engine the controller validates regexes with (nil: not compared);
    /// `keys`: the group's keys, named in the advice.
    public static func evaluate(
        state: ConfigState, edges: [EdgeHeartbeat], now: Int64, target: Int64?, regexEngine: String? = nil,
        keys: KeySchema = .default
    ) -> [EdgeVerdict] {
        let redisDigest = state.digest ?? (state.version == 0 ? zeroDigest : nil)
        let goal = target ?? state.version
        return edges.map { edge in
            let live = now - edge.lastSeen <= liveMilliseconds
            let applied = edge.appliedVersion
            let digestMatches: Bool? = {
                guard let redisDigest, let digest = edge.digest else { return nil }  // cannot compare
                return digest == redisDigest
            }()
            let inSync = applied == state.version && digestMatches != false
            var problem: String?
            if live {
                if let applied, let conflict = conflict(edge, applied: applied, state: state) {
                    let confirm = state.epoch ?? "none"
                    problem =
                        "edge \(edge.id) keeps its configuration (version \(applied) of \(edge.epoch.map { "epoch \($0)" } ?? "no epoch")) "
                        + "instead of following Redis: \(conflict). Writes are refused until an operator restores Redis's data, "
                        + "or re-seeds it: POST /api/v1/reseed {\"confirm\":\"\(confirm)\"} (switchyard reseed --confirm \(confirm))"
                } else if let applied {
                    if applied < goal {
                        problem = "edge \(edge.id) has applied version \(applied), not yet \(goal)"
                    } else if applied == state.version, digestMatches == false {
                        problem =
                            "edge \(edge.id) has version \(applied) but digest \(edge.digest ?? "?"), "
                            + "Redis has \(redisDigest ?? "?"): "
                        if edge.outOfBand > 0 {
                            let listed =
                                edge.outOfBandKeys.joined(separator: ", ") + (edge.outOfBand > edge.outOfBandKeys.count ? ", ..." : "")
                            problem! +=
                                "it holds \(edge.outOfBand) document(s) changed in Redis behind sy_apply's back (\(listed)): "
                                + "write them through the API, or adopt them with FCALL sy_digest 1 \(keys.version)"
                            if edge.recordedDigest != redisDigest { problem! += "; its other documents differ too (see its log)" }
                        } else {
                            problem! += "its documents differ (see its log and /_switchyard/status)"
                        }
                    }
                } else {
                    problem = "edge \(edge.id) reports no applied version"
                }
                if let regexEngine, let engine = edge.regexEngine, engine != regexEngine {
                    let mismatch =
                        "edge \(edge.id) runs regexes with \(engine) (its ngx.re), the controller validates them with "
                        + "\(regexEngine): a route regex one accepts may be refused by the other; start the controller with "
                        + "--regex-engine \(engine)"
                    problem = problem.map { "\($0); \(mismatch)" } ?? mismatch
                }
            }
            return EdgeVerdict(id: edge.id, live: live, inSync: inSync, problem: problem)
        }
    }

    /// Why a live edge will not follow Redis, nil when it follows: the edges' own rule
    /// (lua/switchyard/sync/plan.lua), which sy_apply applies too before any write. Another
    /// epoch is followed only when re-seeded (`adopt` names it); a version behind the
    /// applied one never. The edge's own words when it says.
    static func conflict(_ edge: EdgeHeartbeat, applied: Int64, state: ConfigState) -> String? {
        let redis = "Redis has \(state.epoch.map { "epoch \($0)" } ?? "no epoch") at version \(state.version)"
        if let epoch = edge.epoch, epoch != state.epoch {
            if let redisEpoch = state.epoch, state.adopt == redisEpoch { return nil }  // re-seeded: it follows
            return edge.conflict ?? redis
        }
        if applied > state.version { return edge.conflict ?? "\(redis), behind it" }
        return nil
    }

    /// The status body: version, digest, epoch, converged, problems, every edge (with `live`
    /// and `in_sync`) and, when waiting, what was waited for.
    /// `group`: the group the controller serves (`--group`), answered as `group`.
    public static func json(_ report: ConvergenceReport, group: String = KeySchema.defaultGroup) -> JSONValue {
        var edges: [JSONValue] = []
        for (edge, verdict) in zip(report.edges, report.verdicts) {
            var object = EdgeStatus.json(id: edge.id, fields: edge.fields, heartbeat: edge.heartbeat, version: report.state.version)
            if case .object(var members) = object {
                members.removeAll { ["digest", "live", "in_sync"].contains($0.key) }
                members.append(("digest", edge.digest.map { .string($0) } ?? .null))
                members.append(("live", .bool(verdict.live)))
                members.append(("in_sync", .bool(verdict.inSync)))
                object = .object(members)
            }
            edges.append(object)
        }
        var body: [(key: String, value: JSONValue)] = [
            ("group", .string(group)),
            ("version", .integer(report.state.version)),
            ("digest", report.state.digest.map { .string($0) } ?? (report.state.version == 0 ? .string(zeroDigest) : .null)),
            ("epoch", report.state.epoch.map { .string($0) } ?? .null),
            ("converged", .bool(report.converged)),
            ("problems", .array(report.problems.map { .string($0) })),
            ("live_edges", .integer(Int64(report.verdicts.filter(\.live).count))),
            ("edges", .array(edges)),
        ]
        if let target = report.target {
            body.append(
                (
                    "wait",
                    [
                        "version": .integer(target),
                        "timeout_ms": .integer(milliseconds(report.timeout ?? .zero)),
                        "waited_ms": .integer(milliseconds(report.waited)),
                    ]
                ))
        }
        return .object(body)
    }

    /// `wait_version`, `timeout_ms` and `check` from the query string of `GET /status`: nil
    /// target for a plain status; `checkDocuments` for `check=documents`. `problems` lists
    /// everything wrong (answered with 422); unknown parameters are problems too, so a typo
    /// cannot turn a wait into an instant answer.
    public static func waitParameters(
        _ query: [(String, String)]
    ) -> (target: Int64?, timeout: Duration, problems: [FieldError], checkDocuments: Bool) {
        var problems: [FieldError] = []
        var target: Int64?
        var timeoutMs: Int64?
        var checkDocuments = false
        for (key, value) in query {
            switch key {
            case "check":
                if value == "documents" {
                    checkDocuments = true
                } else {
                    problems.append(
                        FieldError(field: "check", code: .invalid, message: "check must be 'documents', not '\(value)'"))
                }
            case "wait_version":
                if let v = Int64(value), v >= 0 {
                    target = v
                } else {
                    problems.append(
                        FieldError(
                            field: "wait_version", code: .invalid,
                            message: "wait_version must be a non-negative integer, not '\(value)'"))
                }
            case "timeout_ms":
                if let v = Int64(value), (0...maxTimeoutMilliseconds).contains(v) {
                    timeoutMs = v
                } else {
                    problems.append(
                        FieldError(
                            field: "timeout_ms", code: .invalid,
                            message: "timeout_ms must be an integer from 0 to \(maxTimeoutMilliseconds), not '\(value)'"))
                }
            default:
                problems.append(
                    FieldError(
                        field: key, code: .unknownField,
                        message: "unknown parameter '\(key)' (use wait_version, timeout_ms and check)"))
            }
        }
        if timeoutMs != nil, target == nil, !problems.contains(where: { $0.field == "wait_version" }) {
            problems.append(FieldError(field: "timeout_ms", code: .invalid, message: "timeout_ms needs wait_version"))
        }
        return (target, Duration.milliseconds(timeoutMs ?? (target == nil ? 0 : defaultTimeoutMilliseconds)), problems, checkDocuments)
    }

    static func milliseconds(_ d: Duration) -> Int64 {
        let (seconds, attoseconds) = d.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

extension ConfigStore {
    /// The edges' heartbeats (pruning those older than the registration TTL), then Redis's
    /// version and digest, in that order.
    public func heartbeats() async throws(StoreError) -> (state: ConfigState, edges: [EdgeHeartbeat]) {
        let now = Self.nowMilliseconds()
        let cutoff = now - Int64(KeySchema.edgeTTLSeconds) * 1000
        let members = try await pipelined([
            ["ZREMRANGEBYSCORE", keys.edges, "-inf", "(\(cutoff)"],
            ["ZRANGEBYSCORE", keys.edges, "\(cutoff)", "+inf", "WITHSCORES"],
        ])
        guard let flat = members[1].array else { throw StoreError(.unexpected, "unexpected ZRANGEBYSCORE reply") }
        var ids: [(id: String, score: Int64)] = []
        var i = 0
        while i + 1 < flat.count {
            if let id = flat[i].text, let score = flat[i + 1].text.flatMap(Double.init) {
                ids.append((id, Int64(score)))
            }
            i += 2
        }
        // the hashes first, Redis's version and digest last: an edge cannot be ahead of it
        let replies = try await pipelined(
            ids.map { ["HGETALL", keys.edge($0.id)] } + [
                ["MGET", keys.version, keys.digest, keys.epoch, keys.adopt]
            ])
        guard let state = replies.last?.array, state.count == 4 else { throw StoreError(.unexpected, "unexpected MGET reply") }
        let version: Int64
        switch state[0] {
        case .null: version = 0
        default:
            guard let v = state[0].integer else { throw StoreError(.corrupt, "\(keys.version) is not an integer") }
            version = v
        }
        var edges: [EdgeHeartbeat] = []
        for (member, hash) in zip(ids, replies.dropLast()) {
            var fields: [(String, String)] = []
            let items = hash.array ?? []
            var j = 0
            while j + 1 < items.count {
                if let k = items[j].text, let v = items[j + 1].text { fields.append((k, v)) }
                j += 2
            }
            edges.append(EdgeHeartbeat(id: member.id, fields: fields, heartbeat: member.score))
        }
        return (ConfigState(version: version, digest: state[1].text, epoch: state[2].text, adopt: state[3].text), edges)
    }

    /// The status; with `target`, waits (polling every `pollInterval`) until every live edge
    /// has applied at least `target` and agrees with Redis, or `timeout` passes.
    public func convergence(
        waitFor target: Int64? = nil, timeout: Duration = .zero, pollInterval: Duration = .milliseconds(50)
    ) async throws(StoreError) -> ConvergenceReport {
        let clock = ContinuousClock()
        let start = clock.now
        while true {
            let (state, edges) = try await heartbeats()
            let verdicts = Convergence.evaluate(
                state: state, edges: edges, now: Self.nowMilliseconds(), target: target, regexEngine: regexEngine, keys: keys)
            let converged = verdicts.allSatisfy { $0.problem == nil }
            let waited = clock.now - start
            if target == nil || converged || waited >= timeout || Task.isCancelled {
                return ConvergenceReport(
                    state: state, edges: edges, verdicts: verdicts, converged: converged,
                    target: target, waited: waited, timeout: target == nil ? nil : timeout)
            }
            try? await Task.sleep(for: min(pollInterval, timeout - waited))
        }
    }

    /// `switchyard:{cfg}:digest` (the default group's), kept by sy_apply (redis/README.md, "The digest").
    public static let digestKey = KeySchema.default.digest

    private func pipelined(_ commands: [[String]]) async throws(StoreError) -> [RedisReply] {
        do { return try await redis.pipeline(commands) } catch { throw StoreError.from(error) }
    }
}
