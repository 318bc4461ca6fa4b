// Finding the master through Redis Sentinel (docs/redis-ha.md).
//
// With `RedisConfiguration.sentinel` set, a connection is never made to a fixed address:
// `MasterLocator` asks the sentinels `SENTINEL get-master-addr-by-name <name>` (each in
// turn, the last one that answered first), the connection to that address must say `ROLE`
// master before it is used (a replica is never written to), and the answer is cached until
// a connection to it fails or is refused as a replica, when the next connect asks again.
// A task per locator follows the sentinels' `+switch-master` events, so a promotion is
// known without waiting for the old master's connections to break (partitions) and the
// reconnect backoff ends at once: every pooled connection and subscriber compares its
// locator generation and reconnects when it moved.

import Foundation
import Logging
import Synchronization

/// A host and a port.
public struct RedisAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Where the sentinels are and which master they watch.
public struct RedisSentinelConfiguration: Sendable, Hashable {
    public var sentinels: [RedisAddress]
    /// The name the sentinels know the master by (`sentinel monitor <name> ...`).
    public var masterName: String
    /// The sentinels' own password (`requirepass` in sentinel.conf); nil when none. Never logged.
    public var password: String?
    /// The sentinels' ACL user; nil for the default user.
    public var username: String?

    public init(sentinels: [RedisAddress], masterName: String, password: String? = nil, username: String? = nil) {
        self.sentinels = sentinels
        self.masterName = masterName
        self.password = password
        self.username = username
    }
}

extension RedisSentinelConfiguration: CustomStringConvertible, CustomReflectable {
    /// Never shows the password.
    public var description: String {
        "sentinel \(masterName) at \(sentinels.map(\.description).joined(separator: ","))"
    }

    /// `dump()` and debuggers see the password redacted too.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "sentinels": sentinels.map(\.description), "masterName": masterName,
                "password": password == nil ? "none" : "<redacted>", "username": username ?? "default",
            ])
    }
}

/// The master the sentinels name now, shared by every client and subscriber of a process
/// that uses the same sentinels (`shared(_:connectTimeout:)`).
public final class MasterLocator: Sendable {
    struct State {
        /// The last master the sentinels named.
        var master: RedisAddress?
        /// False after a connection to `master` failed: ask again before the next connect.
        var valid = false
        /// Moves whenever the master's address changes: connections to an older generation
        /// are closed before their next use.
        var generation = 0
        /// Index of the sentinel that answered last.
        var preferred = 0
        var watching = false
        var stopped = false
    }

    public let configuration: RedisSentinelConfiguration
    let connectTimeout: Duration
    /// TLS to the sentinels: the same as to Redis (as Redis's own tls-replication does).
    let tls: RedisTLSConfiguration?
    private let state = Mutex(State())
    private let logger: Logger

    init(configuration: RedisSentinelConfiguration, connectTimeout: Duration, tls: RedisTLSConfiguration?, logger: Logger) {
        precondition(!configuration.sentinels.isEmpty, "at least one sentinel")
        self.configuration = configuration
        self.connectTimeout = connectTimeout
        self.tls = tls
        self.logger = logger
    }

    private struct Key: Hashable {
        var configuration: RedisSentinelConfiguration
        var tls: RedisTLSConfiguration?
    }

    private static let registry = Mutex<[Key: MasterLocator]>([:])

    /// The process's one locator for these sentinels (created, and its `+switch-master`
    /// watcher started, on first use).
    public static func shared(
        _ configuration: RedisSentinelConfiguration, connectTimeout: Duration = .seconds(1), tls: RedisTLSConfiguration? = nil
    ) -> MasterLocator {
        let key = Key(configuration: configuration, tls: tls)
        let (locator, created) = registry.withLock { map -> (MasterLocator, Bool) in
            if let existing = map[key] { return (existing, false) }
            let fresh = MasterLocator(
                configuration: configuration, connectTimeout: connectTimeout, tls: tls, logger: Logger(label: "switchyard.redis.sentinel"))
            map[key] = fresh
            return (fresh, true)
        }
        if created { locator.startWatching() }
        return locator
    }

    public var generation: Int { state.withLock { $0.generation } }

    /// The master's address and its generation: the cached one, else the sentinels' answer.
    public func master() async throws(RedisError) -> (address: RedisAddress, generation: Int) {
        if let cached = state.withLock({ s in s.valid ? s.master.map { ($0, s.generation) } : nil }) { return cached }
        return try await ask()
    }

    /// Forgets the master of `generation` (its connection failed, or it said it is a
    /// replica): the next `master()` asks the sentinels.
    public func invalidate(generation: Int) {
        state.withLock { s in
            if s.generation == generation { s.valid = false }
        }
    }

    /// Asks the sentinels, the one that answered last first. Throws `.connectionFailed`
    /// naming every sentinel's reason when none knows a master.
    @discardableResult
    public func ask() async throws(RedisError) -> (address: RedisAddress, generation: Int) {
        let sentinels = configuration.sentinels
        let first = state.withLock { $0.preferred }
        var reasons: [String] = []
        for offset in 0..<sentinels.count {
            let index = (first + offset) % sentinels.count
            let sentinel = sentinels[index]
            do throws(RedisError) {
                let connection = try await RedisConnection.connect(sentinelConfiguration(sentinel), address: sentinel, requireMaster: false)
                defer { connection.close() }
                let reply = try await connection.command(
                    ["SENTINEL", "get-master-addr-by-name", configuration.masterName].map { Array($0.utf8) }, timeout: connectTimeout)
                guard let address = Self.address(from: reply) else {
                    reasons.append("\(sentinel): \(Self.describe(reply))")
                    continue
                }
                return update(address, answeredBy: index, reason: "asked \(sentinel)")
            } catch {
                reasons.append("\(sentinel): \(error.message)")
            }
        }
        throw RedisError(
            .connectionFailed, "no sentinel names a master for '\(configuration.masterName)': \(reasons.joined(separator: "; "))")
    }

    /// Records the master's address; a new one moves the generation.
    private func update(_ address: RedisAddress, answeredBy index: Int?, reason: String) -> (address: RedisAddress, generation: Int) {
        let (generation, changed, previous) = state.withLock { s -> (Int, Bool, RedisAddress?) in
            if let index { s.preferred = index }
            let previous = s.master
            if s.master != address { s.generation += 1 }
            s.master = address
            s.valid = true
            return (s.generation, previous != address, previous)
        }
        if changed {
            logger.notice(
                "redis master located",
                metadata: [
                    "redis.master": "\(address)", "redis.master_name": "\(configuration.masterName)",
                    "redis.previous": "\(previous.map(\.description) ?? "unknown")", "reason": "\(reason)",
                ])
        }
        return (address, generation)
    }

    /// A `SENTINEL get-master-addr-by-name` reply as an address; nil for a null (unknown
    /// master) or a malformed reply.
    static func address(from reply: RedisReply) -> RedisAddress? {
        guard let items = reply.array, items.count == 2, let host = items[0].text, !host.isEmpty,
            let port = items[1].text.flatMap({ Int($0) }), (1...65535).contains(port)
        else { return nil }
        return RedisAddress(host: host, port: port)
    }

    /// A `+switch-master` message (`<name> <old ip> <old port> <new ip> <new port>`): the
    /// new master when it is about `masterName`.
    static func switchedMaster(_ payload: String, masterName: String) -> RedisAddress? {
        let parts = payload.split(separator: " ")
        guard parts.count == 5, parts[0] == masterName, let port = Int(parts[4]), (1...65535).contains(port) else { return nil }
        return RedisAddress(host: String(parts[3]), port: port)
    }

    private static func describe(_ reply: RedisReply) -> String {
        switch reply {
        case .null: return "does not know the master"
        case .error(let message): return message
        default: return "unexpected reply"
        }
    }

    private func sentinelConfiguration(_ sentinel: RedisAddress) -> RedisConfiguration {
        var sentinelConfiguration = RedisConfiguration(
            host: sentinel.host, port: sentinel.port, password: configuration.password, username: configuration.username,
            connectTimeout: connectTimeout, commandTimeout: connectTimeout)
        sentinelConfiguration.tls = tls
        return sentinelConfiguration
    }

    // MARK: - +switch-master

    private func startWatching() {
        let start = state.withLock { s -> Bool in
            if s.watching { return false }
            s.watching = true
            return true
        }
        guard start else { return }
        Task { await self.watch() }
    }

    /// Stops the watcher task (tests; a process's locators live as long as it does).
    public func stopWatching() {
        state.withLock { $0.stopped = true }
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    /// Subscribes to `+switch-master` on one sentinel at a time, moving to the next on any
    /// failure; after every (re)subscribe asks once, so a switch missed meanwhile is seen.
    private func watch() async {
        let sentinels = configuration.sentinels
        var index = 0
        while !isStopped {
            let sentinel = sentinels[index % sentinels.count]
            index += 1
            let inbox = PushInbox()
            do throws(RedisError) {
                let connection = try await RedisConnection.connect(
                    sentinelConfiguration(sentinel), address: sentinel, requireMaster: false, push: inbox.receive)
                defer { connection.close() }
                connection.send(pushed: [["SUBSCRIBE", "+switch-master"].map { Array($0.utf8) }])
                let deadline = ContinuousClock.now + connectTimeout
                while inbox.confirmed.isEmpty {
                    guard connection.isOpen, ContinuousClock.now < deadline else {
                        throw RedisError(.unexpectedReply, "SUBSCRIBE +switch-master not confirmed")
                    }
                    try? await Task.sleep(for: .milliseconds(10))
                }
                if (try? await ask()) == nil {
                    // nothing known yet; connections keep asking on their own
                }
                var lastPing = ContinuousClock.now
                while !isStopped {
                    for reply in inbox.take() {
                        guard let items = reply.array, items.count == 3, items[0].text == "message", let payload = items[2].text,
                            let address = Self.switchedMaster(payload, masterName: configuration.masterName)
                        else { continue }
                        _ = update(address, answeredBy: nil, reason: "+switch-master from \(sentinel)")
                    }
                    guard connection.isOpen else { throw RedisError(.connectionLost, "the sentinel closed the connection") }
                    if ContinuousClock.now - inbox.lastActivity > .seconds(4) {
                        throw RedisError(.timeout, "no answer to PING")
                    }
                    if ContinuousClock.now - lastPing > .seconds(2) {
                        // a dead sentinel must not leave us deaf: PING, and no answer ends
                        // this connection
                        connection.send(pushed: [[Array("PING".utf8)]])
                        lastPing = .now
                    }
                    try? await Task.sleep(for: .milliseconds(50))
                }
            } catch {
                if isStopped { break }
                logger.debug("sentinel watch: \(sentinel): \(error.message)")
                let until = ContinuousClock.now + .milliseconds(index % sentinels.count == 0 ? 500 : 50)
                while !isStopped, ContinuousClock.now < until { try? await Task.sleep(for: .milliseconds(50)) }
            }
        }
    }
}

/// Replies pushed by a subscribe-mode connection, collected for a polling reader, with the
/// subscribe confirmations seen and the time of the last reply (for PING liveness).
final class PushInbox: Sendable {
    private struct State {
        var replies: [RedisReply] = []
        var confirmed: Set<String> = []
        var refused: String?
        var lastActivity = ContinuousClock.now
    }

    private let state = Mutex(State())

    /// Called on the connection's event loop for every pushed reply.
    var receive: @Sendable (RedisReply) -> Void {
        { [self] reply in
            state.withLock { s in
                s.lastActivity = .now
                if case .error(let message) = reply {
                    s.refused = message
                    return
                }
                if let items = reply.array, let kind = items.first?.text {
                    if (kind == "subscribe" || kind == "psubscribe") && items.count == 3, let channel = items[1].text {
                        _ = s.confirmed.insert(channel)
                        return
                    }
                    if kind == "message" || kind == "pmessage" { s.replies.append(reply) }
                }
            }
        }
    }

    var confirmed: Set<String> { state.withLock { $0.confirmed } }
    var refused: String? { state.withLock { $0.refused } }
    var lastActivity: ContinuousClock.Instant { state.withLock { $0.lastActivity } }

    /// The messages received since the last call, in order.
    func take() -> [RedisReply] {
        state.withLock { s in
            defer { s.replies.removeAll(keepingCapacity: true) }
            return s.replies
        }
    }
}
