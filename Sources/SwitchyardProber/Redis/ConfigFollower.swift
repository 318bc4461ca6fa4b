// Follows the configuration in Redis the way the edges do, and keeps the probe engine's
// targets in step: every upstream with a health check, with its endpoints.
//
// Start: GET version + SMEMBERS upstreams + MGET (the index set, never KEYS or SCAN).
// Then: SUBSCRIBE to the events channel (each message is a new version) and, on every
// message and once a second, replay the change stream from the last applied version,
// re-reading only the upstreams it names. A trimmed stream, a `resync` entry, a version
// that went backwards, a resubscribe after a disconnect, and every few minutes regardless
// mean a full reload. A stored upstream that cannot be decoded is logged and skipped (its
// previous targets stay). Redis errors are logged and retried at the next tick.

import Logging
import ServiceLifecycle
import SwitchyardCore
import SwitchyardRedis
import Synchronization

/// Set once the first full load has reached the engine: only then may the prober take
/// the lease (an engine without targets would reconcile Redis into deleting everything).
final class ReadyFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

struct ConfigFollower: Service, CustomStringConvertible {
    var description: String { "ConfigFollower" }

    let redis: RedisClient
    let subscriberConfiguration: RedisConfiguration
    let engine: ProbeEngine
    let ready: ReadyFlag
    let logger: Logger
    /// The group followed (`--group`).
    var keys: KeySchema = .default
    var checkInterval: Duration = .seconds(1)
    var fullReloadInterval: Duration = .seconds(300)
    /// Upstream documents per MGET.
    var chunkSize = 500
    /// Stream entries per XRANGE.
    var streamBatch = 1000

    func run() async throws {
        let subscriber = RedisSubscriber(configuration: subscriberConfiguration, channels: [keys.events], logger: logger)
        let (wake, waker) = AsyncStream.makeStream(of: Wake.self, bufferingPolicy: .unbounded)
        let checkInterval = self.checkInterval
        subscriber.start()
        defer { subscriber.stop() }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await event in subscriber.events {
                        switch event {
                        case .subscribed(let reconnected): waker.yield(reconnected ? .reload : .check)
                        case .message: waker.yield(.check)
                        case .disconnected: break
                        }
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        waker.yield(.check)
                        try? await Task.sleep(for: checkInterval)
                    }
                }
                group.addTask {
                    var state = FollowState()
                    for await signal in wake {
                        if signal == .reload { state.applied = nil }
                        await sync(&state)
                    }
                }
                await group.next()
                group.cancelAll()
            }
        }
    }

    enum Wake: Sendable { case check, reload }

    struct FollowState {
        /// The configuration version the engine's targets reflect; nil = reload everything.
        var applied: Int64?
        /// Per upstream with a health check, what the engine was given.
        var known: [String: UpstreamTargets] = [:]
        var lastFull: ContinuousClock.Instant?
        var failures = 0
        var retryAt: ContinuousClock.Instant?
    }

    func sync(_ state: inout FollowState) async {
        if let retryAt = state.retryAt, ContinuousClock.now < retryAt { return }
        do throws(ProberError) {
            var rounds = 0
            while rounds < 100 {  // bounded: a change storm is caught up over several ticks
                rounds += 1
                if state.applied == nil || state.lastFull.map({ ContinuousClock.now - $0 > fullReloadInterval }) ?? true {
                    try await fullLoad(&state)
                    break
                }
                if try await replay(&state) { break }
            }
            if state.failures > 0 { logger.info("configuration follow resumed") }
            state.failures = 0
            state.retryAt = nil
        } catch {
            state.failures += 1
            let delay = Backoff(initial: .milliseconds(200), maximum: .seconds(5)).delay(afterFailures: state.failures)
            state.retryAt = ContinuousClock.now + delay
            logger.log(
                level: state.failures == 1 ? .warning : .debug, "cannot read the configuration; retrying",
                metadata: [
                    "error": "\(error.message)", "redis.failures": "\(state.failures)",
                ])
        }
    }

    /// Reads every upstream. Targets of upstreams that vanished or lost their check go.
    func fullLoad(_ state: inout FollowState) async throws(ProberError) {
        let replies = try await pipeline([["GET", keys.version], ["SMEMBERS", keys.upstreams]])
        let version = replies[0].integer ?? 0
        guard let members = replies[1].array else { throw ProberError(.unexpected, "unexpected SMEMBERS reply") }
        let names = members.compactMap(\.text).sorted()
        let documents = try await upstreams(names)
        var fresh: [String: UpstreamTargets] = [:]
        for name in names {
            switch documents[name] {
            case .some(.some(let targets)): fresh[name] = targets
            case .some(.none): break  // no health check
            case .none: if let old = state.known[name] { fresh[name] = old }  // undecodable: keep what we had
            }
        }
        for name in Set(state.known.keys).union(fresh.keys) where state.known[name] != fresh[name] {
            engine.update(name, fresh[name])
        }
        let targets = fresh.values.reduce(0) { $0 + $1.addresses.count }
        if state.applied == nil || state.known.count != fresh.count {
            logger.info(
                "configuration loaded",
                metadata: [
                    "config.version": "\(version)", "prober.upstreams": "\(fresh.count)", "prober.targets": "\(targets)",
                ])
        }
        state.known = fresh
        state.applied = version
        state.lastFull = .now
        ready.set()
    }

    /// Applies the change stream after `applied`. True when caught up.
    func replay(_ state: inout FollowState) async throws(ProberError) -> Bool {
        guard let applied = state.applied else { return false }
        let versionReply = try await send(["GET", keys.version])
        let version = versionReply.integer ?? 0
        if version == applied { return true }
        if version < applied {
            logger.warning("configuration version went backwards; reloading", metadata: ["config.version": "\(version)"])
            state.applied = nil
            return false
        }
        let reply = try await send(["XRANGE", keys.changes, "\(applied + 1)-0", "+", "COUNT", "\(streamBatch)"])
        guard let entries = reply.array else { throw ProberError(.unexpected, "unexpected XRANGE reply") }
        var names = Set<String>()
        var last = applied
        for (i, entry) in entries.enumerated() {
            guard let parts = entry.array, parts.count == 2, let id = parts[0].text, let fields = parts[1].array,
                let entryVersion = Int64(id.prefix(while: { $0 != "-" }))
            else { throw ProberError(.unexpected, "unexpected change stream entry") }
            if i == 0, entryVersion != applied + 1 {
                state.applied = nil  // trimmed past what we have
                return false
            }
            var map: [String: String] = [:]
            var j = 0
            while j + 1 < fields.count {
                if let k = fields[j].text, let v = fields[j + 1].text { map[k] = v }
                j += 2
            }
            if map["op"] == "resync" {
                state.applied = nil
                return false
            }
            if map["kind"] == ObjectKind.upstream.rawValue, let name = map["id"] { names.insert(name) }
            last = entryVersion
        }
        if entries.isEmpty {
            state.applied = nil  // the version moved but the stream has nothing: reload
            return false
        }
        let sorted = names.sorted()
        let documents = try await upstreams(sorted)
        for name in sorted {
            let fresh: UpstreamTargets?
            switch documents[name] {
            case .some(let targets): fresh = targets  // nil: deleted or no health check
            case .none: continue  // undecodable: keep what we had
            }
            if state.known[name] != fresh {
                state.known[name] = fresh
                engine.update(name, fresh)
            }
        }
        state.applied = last
        return entries.count < streamBatch && last >= version
    }

    /// The targets of each named upstream: `.some(nil)` when it does not exist or has no
    /// health check; missing from the answer when its document cannot be decoded.
    func upstreams(_ names: [String]) async throws(ProberError) -> [String: UpstreamTargets?] {
        var out: [String: UpstreamTargets?] = [:]
        var start = 0
        while start < names.count {
            let chunk = Array(names[start..<min(start + chunkSize, names.count)])
            start += chunk.count
            let reply = try await send(["MGET"] + chunk.map { keys.upstream($0) })
            guard let docs = reply.array, docs.count == chunk.count else { throw ProberError(.unexpected, "unexpected MGET reply") }
            for (name, doc) in zip(chunk, docs) {
                guard case .string(let bytes) = doc else {
                    out[name] = .some(nil)
                    continue
                }
                do {
                    let upstream = try StoredDocument.upstream(bytes).value
                    out[name] = .some(UpstreamTargets(upstream))
                } catch {
                    logger.error("skipping undecodable upstream", metadata: ["upstream.name": "\(name)", "error": "\(error)"])
                }
            }
        }
        return out
    }

    private func send(_ args: [String]) async throws(ProberError) -> RedisReply {
        let reply: RedisReply
        do { reply = try await redis.send(args) } catch { throw ProberError.from(error) }
        if case .error(let message) = reply { throw ProberError(.unexpected, "\(args[0]) failed: \(message)") }
        return reply
    }

    private func pipeline(_ commands: [[String]]) async throws(ProberError) -> [RedisReply] {
        do { return try await redis.pipeline(commands) } catch { throw ProberError.from(error) }
    }
}
