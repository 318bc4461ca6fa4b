// Decides whether this prober is the active one.
//
// Every lease/3 it calls `sy_lease`: SET NX PX when nobody holds the lease, PEXPIRE when
// this prober does, nothing when another does, so two probers never fight over the key.
// The holder's call also refreshes the heartbeat key (PX = the lease), which tells edges
// that the health data is being kept fresh.
//
// Becoming active: read every health hash (`health_upstreams` + HGETALL), seed the engine
// from it (so nothing flaps: an endpoint Redis calls down stays down until `rise`
// successes) and let the writer diff from there. Losing the lease to another prober stops
// probing. Not reaching Redis for a whole lease pauses writes but keeps probing; when the
// lease is back, the writer catches Redis up with what was decided meanwhile.
// Graceful shutdown releases the lease and deletes the heartbeat, so a standby takes over
// at its next attempt instead of waiting for the expiry.

import Logging
import ServiceLifecycle
import SwitchyardCore
import SwitchyardRedis
import Synchronization

/// What the writer tells the lease keeper: a write was refused with not_leader.
final class LeaseSignals: Sendable {
    private let refused = Mutex(false)
    func writeRefused() { refused.withLock { $0 = true } }
    func takeRefused() -> Bool {
        refused.withLock { r in
            defer { r = false }; return r
        }
    }
}

struct LeaseKeeper: Service, CustomStringConvertible {
    var description: String { "LeaseKeeper" }

    let redis: RedisClient
    let engine: ProbeEngine
    let board: HealthBoard
    let ready: ReadyFlag
    let signals: LeaseSignals
    let library: FunctionLibrary
    let proberID: String
    let leaseMs: Int
    let logger: Logger
    /// The group whose lease, heartbeat and health keys it keeps (`--group`).
    var keys: KeySchema = .default
    var metrics: ProberMetrics { engine.metrics }

    enum Local: Equatable { case standby, active, paused }

    var renewInterval: Duration { .milliseconds(max(50, leaseMs / 3)) }

    func run() async throws {
        let final = await cancelWhenGracefulShutdown { () async -> Local in
            var local = Local.standby
            var lastRenewed = ContinuousClock.now
            var failures = 0
            var lastHolder: String?
            while !Task.isCancelled {
                if ready.isSet {
                    if signals.takeRefused(), local == .active {
                        local = .paused
                        engine.send(.pause)
                    }
                    do throws(ProberError) {
                        switch try await attempt() {
                        case .holding(let acquired):
                            if local != .active {
                                try await reconcile(keepLocal: local == .paused)
                                logger.notice(
                                    acquired ? "acquired the prober lease" : "holding the prober lease again",
                                    metadata: [
                                        "prober.id": "\(proberID)", "prober.lease_ms": "\(leaseMs)",
                                    ])
                                local = .active
                            }
                            lastRenewed = .now
                            lastHolder = proberID
                            metrics.lease(held: true)
                        case .heldBy(let other):
                            metrics.lease(held: false)
                            if local != .standby {
                                logger.warning("another prober holds the lease; standing by", metadata: ["prober.holder": "\(other)"])
                                engine.send(.deactivate)
                                local = .standby
                            } else if lastHolder != other {
                                logger.info("standing by", metadata: ["prober.holder": "\(other)"])
                            }
                            lastHolder = other
                        }
                        if failures > 0 { logger.info("redis reachable again") }
                        failures = 0
                    } catch {
                        failures += 1
                        logger.log(
                            level: failures == 1 ? .warning : .debug, "lease attempt failed",
                            metadata: [
                                "error": "\(error.message)", "redis.failures": "\(failures)",
                            ])
                        // after a whole lease without renewal another prober may be active
                        if local == .active, ContinuousClock.now - lastRenewed >= .milliseconds(leaseMs) - renewInterval {
                            logger.warning("cannot renew the lease; pausing health writes (probing goes on)")
                            engine.send(.pause)
                            local = .paused
                            metrics.lease(held: false)
                        }
                    }
                }
                try? await Task.sleep(for: renewInterval * Double.random(in: 0.9...1.0))
            }
            return local
        }
        metrics.lease(held: false)
        if final != .standby {
            engine.send(.deactivate)
            do {
                _ = try await redis.send(HealthCall.lease(prober: proberID, leaseMs: 0, heartbeatMs: 1, heartbeat: "", keys: keys))
                logger.notice("released the prober lease", metadata: ["prober.id": "\(proberID)"])
            } catch {
                logger.warning("could not release the prober lease; it expires by itself", metadata: ["error": "\(error.message)"])
            }
        }
    }

    enum Attempt { case holding(acquired: Bool), heldBy(String) }

    /// One `sy_lease` call (loading the Function library when Redis lost it).
    func attempt() async throws(ProberError) -> Attempt {
        let (targets, down) = board.withLedger { ($0.targets, $0.down) }
        let heartbeat: JSONValue = [
            "prober": .string(proberID), "at": .integer(wallMilliseconds()), "lease_ms": .integer(Int64(leaseMs)),
            "targets": .integer(Int64(targets)), "down": .integer(Int64(down)),
        ]
        let command = HealthCall.lease(
            prober: proberID, leaseMs: leaseMs, heartbeatMs: leaseMs, heartbeat: heartbeat.canonical, keys: keys)
        let reply = try await library.call(redis, command)
        guard let items = reply.array, items.count >= 2, let flag = items[0].integer else {
            throw ProberError(.unexpected, "unexpected reply to sy_lease")
        }
        if flag == 1 { return .holding(acquired: items[1].text == "acquired") }
        return .heldBy(items[1].text ?? "?")
    }

    /// Reads every health hash and hands the engine the snapshot to start from.
    func reconcile(keepLocal: Bool) async throws(ProberError) {
        let checked = board.withLedger { $0.checked }
        let indexReply: RedisReply
        do { indexReply = try await redis.send(["SMEMBERS", keys.healthUpstreams]) } catch { throw ProberError.from(error) }
        let names = Array(Set(indexReply.array?.compactMap(\.text) ?? []).union(checked)).sorted()
        let replies: [RedisReply]
        do { replies = try await redis.pipeline(names.map { ["HGETALL", keys.health($0)] }) } catch { throw ProberError.from(error) }
        var snapshot: HealthMap = [:]
        for (name, reply) in zip(names, replies) {
            let items = reply.array ?? []
            var i = 0
            while i + 1 < items.count {
                if let address = items[i].text, let bytes = items[i + 1].bytes {
                    // an unreadable value is kept as "unknown", so the writer replaces or deletes it
                    snapshot[name, default: [:]][address] =
                        HealthRecord(json: bytes)
                        ?? HealthRecord(state: .unknown, since: 0, reason: "unreadable", prober: "")
                }
                i += 2
            }
        }
        engine.send(.activate(snapshot: snapshot, keepLocal: keepLocal))
    }
}

/// The Function library's source, loaded into Redis when a call finds it missing (a Redis
/// restarted without persistence, or started after the controller).
struct FunctionLibrary: Sendable, CustomStringConvertible {
    var description: String { source == nil ? "FunctionLibrary(none)" : "FunctionLibrary(loaded)" }

    let source: String?
    let logger: Logger

    func call(_ redis: RedisClient, _ command: [String]) async throws(ProberError) -> RedisReply {
        var reply: RedisReply
        do { reply = try await redis.send(command) } catch { throw ProberError.from(error) }
        if case .error(let message) = reply, message.lowercased().contains("function not found"), let source {
            logger.warning("the switchyard function library is missing in redis; loading it", metadata: ["function": "\(command[1])"])
            do {
                let loaded = try await redis.send(["FUNCTION", "LOAD", "REPLACE", source])
                if case .error(let loadError) = loaded { throw ProberError(.unexpected, "FUNCTION LOAD failed: \(loadError)") }
                reply = try await redis.send(command)
            } catch let error as RedisError {
                throw ProberError.from(error)
            } catch let error as ProberError {
                throw error
            } catch {
                throw ProberError(.unexpected, "\(error)")
            }
        }
        if case .error(let message) = reply {
            if message.contains("SYERR"), message.contains("\"not_leader\"") { throw ProberError(.notLeader, message) }
            throw ProberError(.unexpected, "\(command[1]) failed: \(message)")
        }
        return reply
    }
}
