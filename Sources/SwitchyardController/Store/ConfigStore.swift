// The controller's view of the configuration in Redis. Reads use plain commands over the
// index sets (never KEYS or SCAN); every write is one FCALL of sy_apply, which re-checks
// everything atomically. Read-modify-write (endpoint joins and leaves, create-or-replace)
// is optimistic: read the stored version, write with `expect = version`, and retry on
// version_mismatch a bounded number of times within the request deadline.

import Logging
import SwitchyardCore
import SwitchyardRedis

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct ConfigStore: Sendable {
    public let redis: RedisClient
    /// The keys of the group this store reads and writes (`--group`; `switchyard:{cfg}:` by default).
    public let keys: KeySchema
    /// Source of the Function library (redis/switchyard.lua).
    public let library: String
    public var logger: Logger
    /// Tries of an optimistic write before answering 409.
    public var maxAttempts: Int = 20
    /// Upper bound for the whole retry loop of one request.
    public var deadline: Duration = .seconds(10)
    /// Keys per MGET when listing.
    public var chunkSize: Int = 500
    /// The regex engine the controller validates with (`pcre1` or `pcre2`): the status
    /// names every live edge whose `ngx.re` runs another one (its heartbeat's `regex`).
    public var regexEngine: String = "pcre1"
    /// The configuration history this controller writes (shared by every copy of the store).
    let history = HistoryMemory()
    /// Retention of the change history (`<base>history`), passed to every sy_apply.
    public var historyLimits = HistoryLimits.fromEnvironment()

    public init(redis: RedisClient, library: String, logger: Logger, keys: KeySchema = .default) {
        self.redis = redis
        self.keys = keys
        self.library = library
        self.logger = logger
    }

    // MARK: - Function library

    /// `FUNCTION LOAD REPLACE` the library. Idempotent; also called when Redis lost it.
    public func loadLibrary() async throws(StoreError) {
        let reply = try await send(["FUNCTION", "LOAD", "REPLACE", library])
        if case .error(let message) = reply {
            throw StoreError(.unexpected, "FUNCTION LOAD failed: \(message)")
        }
        logger.info("redis function library loaded", metadata: ["library": "\(reply.text ?? "?")"])
    }

    // MARK: - Reads

    public func version() async throws(StoreError) -> Int64 {
        try version(from: try await send(["GET", keys.version]))
    }

    public func route(_ id: String) async throws(StoreError) -> Stored<Route>? {
        try await object(keys.route(id)) { bytes throws(DocumentError) in try StoredDocument.route(bytes) }
    }

    public func upstream(_ name: String) async throws(StoreError) -> Stored<Upstream>? {
        try await object(keys.upstream(name)) { bytes throws(DocumentError) in try StoredDocument.upstream(bytes) }
    }

    public func routes() async throws(StoreError) -> (items: [Stored<Route>], version: Int64) {
        try await list(.route) { bytes throws(DocumentError) in try StoredDocument.route(bytes) }
    }

    public func upstreams() async throws(StoreError) -> (items: [Stored<Upstream>], version: Int64) {
        try await list(.upstream) { bytes throws(DocumentError) in try StoredDocument.upstream(bytes) }
    }

    /// Which of `names` are existing upstreams (one SMISMEMBER).
    public func existingUpstreams(_ names: [String]) async throws(StoreError) -> Set<String> {
        let unique = Array(Set(names)).sorted()
        if unique.isEmpty { return [] }
        let reply = try await send(["SMISMEMBER", keys.upstreams] + unique)
        guard let flags = reply.array, flags.count == unique.count else {
            throw StoreError(.unexpected, "unexpected SMISMEMBER reply")
        }
        return Set(zip(unique, flags).compactMap { $1.integer == 1 ? $0 : nil })
    }

    func object<T>(_ key: String, _ decode: ([UInt8]) throws(DocumentError) -> T) async throws(StoreError) -> T? {
        let reply = try await send(["GET", key])
        switch reply {
        case .null: return nil
        case .string(let bytes):
            do { return try decode(bytes) } catch {
                throw StoreError(.corrupt, "\(key): \(error)", underlying: error)
            }
        default: throw StoreError(.unexpected, "unexpected reply to GET \(key)")
        }
    }

    /// The version first, then the index and documents: every item is at least as new as
    /// the version answered (a client replaying changes after it may see some twice).
    func list<T>(_ kind: ObjectKind, _ decode: ([UInt8]) throws(DocumentError) -> T) async throws(StoreError) -> (
        items: [T], version: Int64
    ) {
        let replies = try await pipeline([["GET", keys.version], ["SMEMBERS", keys.index(kind)]])
        let version = try self.version(from: replies[0])
        guard let members = replies[1].array else { throw StoreError(.unexpected, "unexpected SMEMBERS reply") }
        let ids = members.compactMap(\.text).sorted()
        var items: [T] = []
        items.reserveCapacity(ids.count)
        var start = 0
        while start < ids.count {
            let chunk = Array(ids[start..<min(start + chunkSize, ids.count)])
            start += chunk.count
            let reply = try await send(["MGET"] + chunk.map { keys.object(kind, $0) })
            guard let docs = reply.array, docs.count == chunk.count else { throw StoreError(.unexpected, "unexpected MGET reply") }
            for (id, doc) in zip(chunk, docs) {
                guard case .string(let bytes) = doc else { continue }  // deleted since SMEMBERS
                do {
                    items.append(try decode(bytes))
                } catch {
                    // one hand-damaged document must not hide all the others
                    logger.error(
                        "skipping undecodable stored document",
                        metadata: [
                            "\(kind.logKey)": "\(id)", "error": "\(error)",
                        ])
                }
            }
        }
        return (items, version)
    }

    // MARK: - Writes

    /// One FCALL of sy_apply, continuing the history this controller knows (its epoch:
    /// redis/README.md, "When Redis lost its data"). Reloads the library once if Redis has
    /// lost it (restart without persistence, FUNCTION FLUSH). Redis without that history
    /// (flushed, restarted empty, restored from another installation) is `.dataLost`,
    /// unless an operator re-seeded it (its `adopt` key names its epoch), which this
    /// controller then follows as the edges do. `owner`: the writer (nil: none, the admin
    /// API); an object owned by another writer is refused with `owned` and nothing is
    /// written (redis/README.md, "Owners").
    ///
    /// The request's `ChangeRequest` (note, If-Match, dry run) and `Principal` (who) go with
    /// the call into the history; `ifVersion` overrides the request's precondition, `force`
    /// skips the owner check (a revert with include_owned). A dry run throws `.dryRun` with
    /// the report after sy_apply checked the call without writing.
    public func apply(
        _ operations: [ApplyOperation], owner: String? = nil, ifVersion: Int64? = nil, force: Bool = false, note: String? = nil,
        report: Bool = false
    ) async throws(StoreError) -> ApplyResult {
        var known = history.epoch
        if known == nil { known = try await readEpoch().epoch }
        var followedReseed = false
        let change = ChangeRequest.current
        let options = ApplyOptions(
            who: Principal.name ?? owner ?? "system", note: note ?? change?.note, ifVersion: ifVersion ?? change?.ifVersion,
            dryRun: change?.dryRun ?? false, keep: historyLimits, force: force, report: report)
        while true {
            let command = Self.applyCommand(operations, epoch: known, owner: owner, options: options, keys: keys)
            var reply = try await sendWrite(command)
            if case .error(let message) = reply, message.lowercased().contains("function not found") {
                logger.warning("sy_apply is not loaded in redis; loading the library again")
                try await loadLibrary()
                reply = try await sendWrite(command)
            }
            switch reply {
            case .array(let items) where items.count >= 2:
                guard let version = items[0].integer, let changed = items[1].integer else { break }
                if items.count >= 3, let epoch = items[2].text, !epoch.isEmpty { history.remember(epoch, version: version) }
                if options.dryRun {
                    let report = try await dryRunReport(operations, version: version)
                    throw StoreError(.dryRun, "dry run: nothing was written", report: report)
                }
                var outcomes: [ObjectOutcome] = []
                if options.report, items.count >= 4, let flat = items[3].array {
                    var i = 0
                    while i + 1 < flat.count {
                        outcomes.append(ObjectOutcome(version: flat[i].integer ?? 0, created: flat[i + 1].integer == 1))
                        i += 2
                    }
                }
                return ApplyResult(version: version, changed: changed, report: outcomes)
            case .error(let message):
                guard let error = ApplyError.parse(message) else { throw StoreError(.unexpected, "sy_apply failed: \(message)") }
                if case .other(let code, _) = error, code == "no_epoch" || code == "epoch_mismatch", let passed = known {
                    let now = try await readEpoch()
                    if !followedReseed, let epoch = now.epoch, now.adopt == epoch, epoch != passed {
                        logger.notice("redis was re-seeded; following its new epoch", metadata: ["config.epoch": "\(epoch)"])
                        history.remember(epoch, version: now.version)
                        known = epoch
                        followedReseed = true
                        continue
                    }
                    throw StoreError(.dataLost, history.lostMessage(known: passed, redis: now), apply: error)
                }
                throw StoreError(.rejected, "sy_apply refused: \(error)", apply: error)
            default:
                break
            }
            throw StoreError(.unexpected, "unexpected reply to FCALL sy_apply")
        }
    }

    /// Redis's epoch, adopt key and version now; remembers the epoch when it knew none.
    func readEpoch() async throws(StoreError) -> RedisHistory {
        let reply = try await send(["MGET", keys.epoch, keys.adopt, keys.version])
        guard let items = reply.array, items.count == 3 else { throw StoreError(.unexpected, "unexpected MGET reply") }
        let now = RedisHistory(epoch: items[0].text, adopt: items[1].text, version: items[2].integer ?? 0)
        if history.epoch == nil, let epoch = now.epoch { history.remember(epoch, version: now.version) }
        return now
    }

    /// The operator's explicit step after Redis lost its data (POST /api/v1/reseed): what
    /// Redis holds now becomes the configuration, under a new epoch every edge follows.
    /// `confirm` must be Redis's epoch now, or "none" when it has none.
    public func reseed(confirm: String) async throws(StoreError) -> (version: Int64, epoch: String, previous: String?) {
        let previous = try await readEpoch().epoch
        let epoch = HistoryMemory.newEpoch()
        let command = ["FCALL", "sy_reseed", "1", keys.version, confirm, epoch]
        var reply = try await sendWrite(command)
        if case .error(let message) = reply, message.lowercased().contains("function not found") {
            try await loadLibrary()
            reply = try await sendWrite(command)
        }
        switch reply {
        case .array(let items) where items.count == 2:
            guard let version = items[0].integer, let stored = items[1].text else { break }
            history.remember(stored, version: version)
            logger.notice(
                "redis re-seeded: a new configuration history",
                metadata: ["config.epoch": "\(stored)", "config.version": "\(version)", "previous.epoch": "\(previous ?? "none")"])
            return (version, stored, previous)
        case .error(let message):
            if let error = ApplyError.parse(message) { throw StoreError(.rejected, "sy_reseed refused: \(error)", apply: error) }
            throw StoreError(.unexpected, "sy_reseed failed: \(message)")
        default:
            break
        }
        throw StoreError(.unexpected, "unexpected reply to FCALL sy_reseed")
    }

    /// Create-or-replace: `created` tells which happened. An identical object is not
    /// written again (and keeps its version). `owner`: the writer, as for `apply`.
    public func put(_ route: Route, owner: String? = nil) async throws(StoreError) -> (stored: Stored<Route>, created: Bool) {
        let (version, created) = try await putObject(.put(route), owner: owner)
        return (Stored(value: route, version: version), created)
    }

    public func put(_ upstream: Upstream, owner: String? = nil) async throws(StoreError) -> (stored: Stored<Upstream>, created: Bool) {
        let (version, created) = try await putObject(.put(upstream), owner: owner)
        return (Stored(value: upstream, version: version), created)
    }

    func putObject(_ operation: ApplyOperation, owner: String?) async throws(StoreError) -> (version: Int64, created: Bool) {
        // One round trip: sy_apply's report says whether the object was created and which
        // version it has (an identical document is not written again and keeps its own), so
        // no GET goes first (bench/api_latency.py: a Redis call is ~0.1 ms of a PUT).
        let result = try await apply([operation], owner: owner, report: true)
        guard let outcome = result.report.first else {
            throw StoreError(.unexpected, "sy_apply answered no report for \(operation.kind.rawValue) '\(operation.id)'")
        }
        return (outcome.version, outcome.created)
    }

    /// Read-modify-write of one upstream. `change` gets the stored upstream and returns the
    /// new one, or nil when nothing needs to change (nothing is written then).
    public func modifyUpstream<Extra: Sendable>(
        _ name: String, owner: String? = nil, _ change: (Upstream) throws(StoreError) -> (Upstream, Extra)?
    ) async throws(StoreError) -> (stored: Stored<Upstream>, extra: Extra?) {
        try await retrying(.upstream, name) { () throws(StoreError) -> (Stored<Upstream>, Extra?) in
            guard let current = try await upstream(name) else {
                throw StoreError(.notFound, "upstream '\(name)' does not exist")
            }
            guard let (modified, extra) = try change(current.value) else { return (current, nil) }
            if modified.canonicalDocument == current.value.canonicalDocument { return (current, extra) }
            let result = try await apply([ApplyOperation.put(modified, expect: current.version)], owner: owner)
            return (Stored(value: modified, version: result.version), extra)
        }
    }

    /// Deletes one object; answers the new version.
    public func delete(_ kind: ObjectKind, _ id: String, owner: String? = nil) async throws(StoreError) -> Int64 {
        try await apply([ApplyOperation.delete(kind, id)], owner: owner).version
    }

    /// Runs `body` again while it fails with version_mismatch (another writer got there
    /// first), at most `maxAttempts` times and within `deadline`, with jittered backoff.
    func retrying<T>(_ kind: ObjectKind, _ id: String, _ body: () async throws(StoreError) -> T) async throws(StoreError) -> T {
        let start = ContinuousClock.now
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await body()
            } catch {
                guard case .versionMismatch? = error.apply else { throw error }
                if attempt >= maxAttempts || ContinuousClock.now - start > deadline {
                    throw StoreError(
                        .conflict, "\(kind.rawValue) '\(id)' kept changing under us (\(attempt) tries); try again",
                        apply: error.apply)
                }
                logger.debug(
                    "optimistic write lost a race; retrying",
                    metadata: [
                        "\(kind.logKey)": "\(id)", "attempt": "\(attempt)",
                    ])
                let ceiling = min(2 << min(attempt, 5), 50)  // ms
                try? await Task.sleep(for: .milliseconds(Int.random(in: 1...ceiling)))
            }
        }
    }

    // MARK: - Edges

    // The edges and their convergence: Convergence.swift (`heartbeats`, `convergence`).

    /// PING; nil when Redis answers, else why not.
    public func ping() async -> String? {
        do {
            let reply = try await redis.send(["PING"])
            if case .error(let message) = reply { return message }
            return nil
        } catch {
            return error.message
        }
    }

    // MARK: - Helpers

    func send(_ args: [String]) async throws(StoreError) -> RedisReply {
        do { return try await redis.send(args) } catch { throw StoreError.from(error) }
    }

    /// A write whose reply did not come in time may still be applied: a frozen Redis runs
    /// the command it already received when it wakes up. Say so, instead of "failed".
    private func sendWrite(_ args: [String]) async throws(StoreError) -> RedisReply {
        do {
            return try await redis.write(args)
        } catch  where error.code == .notReplicated {
            throw StoreError(.unavailable, "redis: \(error.message); read it back before retrying", underlying: error)
        } catch  where error.maybeExecuted {
            throw StoreError(
                .unavailable,
                "redis unavailable: \(error.message); the change was not confirmed and may "
                    + "still be applied when Redis answers again: read it back before retrying", underlying: error)
        } catch {
            throw StoreError.from(error)
        }
    }

    private func pipeline(_ commands: [[String]]) async throws(StoreError) -> [RedisReply] {
        do { return try await redis.pipeline(commands) } catch { throw StoreError.from(error) }
    }

    private func version(from reply: RedisReply) throws(StoreError) -> Int64 {
        switch reply {
        case .null: return 0
        case .string: if let v = reply.integer { return v }
        case .integer(let v): return v
        default: break
        }
        throw StoreError(.corrupt, "\(keys.version) is not an integer")
    }

    static func nowMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

extension ObjectKind {
    /// Logger metadata key naming an object of this kind.
    var logKey: String {
        switch self {
        case .route: return "route.id"
        case .upstream: return "upstream.name"
        case .certificate: return "certificate.id"
        case .stream: return "stream.id"
        }
    }
}
