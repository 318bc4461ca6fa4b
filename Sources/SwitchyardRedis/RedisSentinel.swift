// Finding the master through Redis Sentinel (docs/redis-ha.md).
//
// With `RedisConfiguration.sentinel` set, a connection is never made to a fixed address:
// `MasterLocator` asks the sentinels `SENTINEL get-master-addr-by-name <name>` (each in
// turn, the last one that answered first), the connection to that address must say `ROLE`
// master before it is used (a replica is never written to), and the answer is cached until
// a connection to it fails or is refused as a replica, when the next connect asks again.
// A thread per locator follows the sentinels' `+switch-master` events, so a promotion is
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
    private let state = Mutex(State())
    private let logger: Logger

    init(configuration: RedisSentinelConfiguration, connectTimeout: Duration, logger: Logger) {
        precondition(!configuration.sentinels.isEmpty, "at least one sentinel")
        self.configuration = configuration
        self.connectTimeout = connectTimeout
        self.logger = logger
    }

    private static let registry = Mutex<[RedisSentinelConfiguration: MasterLocator]>([:])

    /// The process's one locator for these sentinels (created, and its `+switch-master`
    /// watcher started, on first use).
    public static func shared(_ configuration: RedisSentinelConfiguration, connectTimeout: Duration = .seconds(1)) -> MasterLocator {
        let (locator, created) = registry.withLock { map -> (MasterLocator, Bool) in
            if let existing = map[configuration] { return (existing, false) }
            let fresh = MasterLocator(
                configuration: configuration, connectTimeout: connectTimeout, logger: Logger(label: "switchyard.redis.sentinel"))
            map[configuration] = fresh
            return (fresh, true)
        }
        if created { locator.startWatching() }
        return locator
    }

    public var generation: Int { state.withLock { $0.generation } }

    /// The master's address and its generation: the cached one, else the sentinels' answer.
    public func master() throws(RedisError) -> (address: RedisAddress, generation: Int) {
        if let cached = state.withLock({ s in s.valid ? s.master.map { ($0, s.generation) } : nil }) { return cached }
        return try ask()
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
    public func ask() throws(RedisError) -> (address: RedisAddress, generation: Int) {
        let sentinels = configuration.sentinels
        let first = state.withLock { $0.preferred }
        var reasons: [String] = []
        for offset in 0..<sentinels.count {
            let index = (first + offset) % sentinels.count
            let sentinel = sentinels[index]
            do throws(RedisError) {
                let connection = try HiredisConnection.connect(sentinelConfiguration(sentinel), address: sentinel, requireMaster: false)
                defer { connection.close() }
                let reply = try connection.command(
                    ["SENTINEL", "get-master-addr-by-name", configuration.masterName].map { Array($0.utf8) })
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
        RedisConfiguration(
            host: sentinel.host, port: sentinel.port, password: configuration.password, username: configuration.username,
            connectTimeout: connectTimeout, commandTimeout: connectTimeout)
    }

    // MARK: - +switch-master

    private func startWatching() {
        let start = state.withLock { s -> Bool in
            if s.watching { return false }
            s.watching = true
            return true
        }
        guard start else { return }
        let thread = Thread { [self] in self.watch() }
        thread.name = "switchyard.redis.sentinel"
        thread.start()
    }

    /// Stops the watcher thread (tests; a process's locators live as long as it does).
    public func stopWatching() {
        state.withLock { $0.stopped = true }
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    /// Subscribes to `+switch-master` on one sentinel at a time, moving to the next on any
    /// failure; after every (re)subscribe asks once, so a switch missed meanwhile is seen.
    private func watch() {
        let sentinels = configuration.sentinels
        var index = 0
        while !isStopped {
            let sentinel = sentinels[index % sentinels.count]
            index += 1
            do throws(RedisError) {
                let connection = try HiredisConnection.connect(sentinelConfiguration(sentinel), address: sentinel, requireMaster: false)
                defer { connection.close() }
                try connection.append(["SUBSCRIBE", "+switch-master"].map { Array($0.utf8) })
                let confirmation = try connection.readReply()
                guard confirmation.array?.first?.text == "subscribe" else { throw RedisError(.unexpectedReply, "SUBSCRIBE refused") }
                if (try? ask()) == nil {
                    // nothing known yet; connections keep asking on their own
                }
                var lastPing = ContinuousClock.now
                while !isStopped {
                    while let reply = try connection.bufferedReply() {
                        guard let items = reply.array, items.count == 3, items[0].text == "message", let payload = items[2].text,
                            let address = Self.switchedMaster(payload, masterName: configuration.masterName)
                        else { continue }
                        _ = update(address, answeredBy: nil, reason: "+switch-master from \(sentinel)")
                    }
                    if connection.waitReadable(milliseconds: 200) {
                        try connection.fill()
                        continue
                    }
                    if ContinuousClock.now - lastPing > .seconds(2) {
                        // a dead sentinel must not leave us deaf: PING, and a broken
                        // connection fails the next read
                        try connection.append([Array("PING".utf8)])
                        try connection.flush()
                        lastPing = .now
                    }
                }
            } catch {
                if isStopped { break }
                logger.debug("sentinel watch: \(sentinel): \(error.message)")
                let until = ContinuousClock.now + .milliseconds(index % sentinels.count == 0 ? 500 : 50)
                while !isStopped, ContinuousClock.now < until { Thread.sleep(forTimeInterval: 0.05) }
            }
        }
    }
}

extension HiredisConnection {
    /// A connection to the server `configuration` names: its host and port, or the master
    /// the sentinels name, checked to be the master (`ROLE`). The connection carries the
    /// locator generation it was made for (`generation`); a failed connect to a located
    /// master makes the locator ask again next time.
    static func connectToServer(_ configuration: RedisConfiguration) throws(RedisError) -> HiredisConnection {
        guard let sentinel = configuration.sentinel else {
            return try connect(
                configuration, address: RedisAddress(host: configuration.host, port: configuration.port), requireMaster: false)
        }
        let locator = MasterLocator.shared(sentinel, connectTimeout: configuration.connectTimeout)
        let (address, generation) = try locator.master()
        do {
            let connection = try connect(configuration, address: address, requireMaster: true)
            connection.generation = generation
            return connection
        } catch {
            locator.invalidate(generation: generation)
            throw error
        }
    }
}
