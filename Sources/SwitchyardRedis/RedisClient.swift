// A small pool of Redis connections for request/response commands, on SwiftNIO
// (RedisConnection): a call writes its command on the least busy connection and awaits the
// reply; many calls pipeline on one connection, and no thread blocks on a socket. Every call
// is bounded: a command fails with `.timeout` after `commandTimeout`, and while Redis is down
// calls fail at once with `.connectionFailed` until the next reconnect attempt, which is
// spaced by exponential backoff with jitter. A dropped connection (CLIENT KILL, restart) is
// noticed before the next command is written and replaced, so the command still goes
// through.

import Logging
import Synchronization

/// Told about every call when it ends: the command's name (`RedisClient.commandName`), how
/// long it took, and the transport error if it failed (error replies are answers, not
/// failures). Metrics hang here; it must be cheap and must not call Redis.
public typealias RedisObserver = @Sendable (_ command: String, _ duration: Duration, _ error: RedisError?) -> Void

public final class RedisClient: Sendable {
    public let configuration: RedisConfiguration
    private let slots: [ConnectionSlot]
    private let rotation = Atomic<Int>(0)
    private let observer: RedisObserver?

    public init(configuration: RedisConfiguration, logger: Logger = Logger(label: "switchyard.redis"), observer: RedisObserver? = nil) {
        self.configuration = configuration
        let size = max(1, configuration.poolSize)
        self.slots = (0..<size).map { ConnectionSlot(index: $0, configuration: configuration, logger: logger) }
        self.observer = observer
    }

    /// A bounded name for metrics: the command word in capitals, with the function's name for
    /// FCALL of the project's own functions (`FCALL sy_apply`); "pipeline" for a pipeline.
    public static func commandName(_ args: [[UInt8]]) -> String {
        guard let first = args.first, (1...16).contains(first.count), first.allSatisfy({ $0 < 0x80 && $0 > 0x20 }) else {
            return "other"
        }
        let word = String(decoding: first, as: UTF8.self).uppercased()
        if word == "FCALL" || word == "FCALL_RO", args.count > 1, args[1].count <= 32, args[1].starts(with: Array("sy_".utf8)),
            args[1].allSatisfy({ $0 == 0x5F || ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) })
        {
            return "\(word) \(String(decoding: args[1], as: UTF8.self))"
        }
        return word.allSatisfy({ $0.isLetter || $0 == "_" }) ? word : "other"
    }

    private func observed<T>(_ name: @autoclosure () -> String, _ body: () async throws(RedisError) -> T) async throws(RedisError) -> T {
        guard let observer else { return try await body() }
        let start = ContinuousClock.now
        do {
            let result = try await body()
            observer(name(), ContinuousClock.now - start, nil)
            return result
        } catch {
            observer(name(), ContinuousClock.now - start, error)
            throw error
        }
    }

    /// Sends one command. Error replies come back as `.error`; transport problems throw.
    public func send(_ args: [String]) async throws(RedisError) -> RedisReply {
        try await send(bytes: args.map { Array($0.utf8) })
    }

    public func send(_ args: String...) async throws(RedisError) -> RedisReply {
        try await send(args)
    }

    /// Sends one command whose arguments are arbitrary bytes.
    public func send(bytes args: [[UInt8]]) async throws(RedisError) -> RedisReply {
        try await observed(Self.commandName(args)) { () async throws(RedisError) -> RedisReply in
            let (replies, connection) = try await slot().run([args])
            return try Self.refusingReplica(replies[0], connection)
        }
    }

    /// A write that is acknowledged only once it is safe as `configuration.minReplicasAck`
    /// asks: the command and `WAIT <n> <ms>` in one round trip on one connection (WAIT
    /// counts the replicas that have this connection's writes). An error reply comes back
    /// as it is (nothing was written); fewer replicas than asked throw `.notReplicated`,
    /// with `maybeExecuted` (the master has the write; a failover now may lose it). With
    /// `minReplicasAck` 0 this is `send`.
    public func write(_ args: [String]) async throws(RedisError) -> RedisReply {
        let wanted = configuration.minReplicasAck
        if wanted <= 0 { return try await send(args) }
        let timeout = max(1, configuration.replicaAckTimeout.milliseconds)
        let command = args.map { Array($0.utf8) }
        let wait = ["WAIT", String(wanted), String(timeout)].map { Array($0.utf8) }
        return try await observed(Self.commandName(command)) { () async throws(RedisError) -> RedisReply in
            let (replies, connection) = try await slot().run([command, wait])
            let reply = try Self.refusingReplica(replies[0], connection)
            if case .error = reply { return reply }
            let acknowledged = replies[1].integer ?? 0
            if acknowledged < Int64(wanted) {
                var error = RedisError(
                    .notReplicated,
                    "the master applied the write but only \(acknowledged) of \(wanted) replicas acknowledged it within "
                        + "\(timeout) ms (--redis-min-replicas-ack): a failover now may lose it")
                error.maybeExecuted = true
                throw error
            }
            return reply
        }
    }

    /// A `READONLY` error reply means the connection reaches a replica (a demoted master):
    /// it is closed (the next call connects to the master the sentinels name now) and the
    /// call fails as unavailable; a replica executed nothing, so a retry is safe.
    static func refusingReplica(_ reply: RedisReply, _ connection: RedisConnection) throws(RedisError) -> RedisReply {
        guard case .error(let message) = reply else { return reply }
        if message.hasPrefix("NOREPLICAS") || message.hasPrefix("MASTERDOWN") || message.hasPrefix("LOADING") {
            // not now, and nothing was executed: unavailable, as an unreachable Redis is
            throw RedisError(.refusedNow, "\(connection.endpoint) refused the command: \(message)")
        }
        guard message.hasPrefix("READONLY") else { return reply }
        connection.close()
        throw RedisError(.readOnlyReplica, "\(connection.endpoint) is a replica now (READONLY); reconnecting to the master")
    }

    static func refusingReplica(_ replies: [RedisReply], _ connection: RedisConnection) throws(RedisError) -> [RedisReply] {
        for reply in replies { _ = try refusingReplica(reply, connection) }
        return replies
    }

    /// Sends several commands in one round trip on one connection and returns their
    /// replies in order.
    public func pipeline(_ commands: [[String]]) async throws(RedisError) -> [RedisReply] {
        try await pipeline(bytes: commands.map { $0.map { Array($0.utf8) } })
    }

    public func pipeline(bytes commands: [[[UInt8]]]) async throws(RedisError) -> [RedisReply] {
        if commands.isEmpty { return [] }
        return try await observed("pipeline") { () async throws(RedisError) -> [RedisReply] in
            let (replies, connection) = try await slot().run(commands)
            return try Self.refusingReplica(replies, connection)
        }
    }

    /// Closes every connection; later calls fail with `.closed`.
    public func close() async {
        for slot in slots { await slot.close() }
    }

    /// The least busy connection (ties broken round robin).
    private func slot() -> ConnectionSlot {
        let start = rotation.add(1, ordering: .relaxed).oldValue
        var best = slots[start % slots.count]
        var bestLoad = best.load.load(ordering: .relaxed)
        for offset in 1..<slots.count where bestLoad > 0 {
            let candidate = slots[(start + offset) % slots.count]
            let load = candidate.load.load(ordering: .relaxed)
            if load < bestLoad {
                best = candidate
                bestLoad = load
            }
        }
        return best
    }
}

/// One pooled connection, opened on first use and reopened after it breaks. Its state is
/// behind a lock held only for bookkeeping, never across I/O.
final class ConnectionSlot: Sendable {
    let index: Int
    let configuration: RedisConfiguration
    let backoff: Backoff
    let logger: Logger
    /// Calls in flight on this slot (read by the pool to pick a slot).
    let load = Atomic<Int>(0)

    /// The sentinels' master, when the configuration names sentinels.
    let locator: MasterLocator?

    struct State {
        var connection: RedisConnection?
        /// The connect in progress: callers arriving meanwhile wait for it.
        var connecting: Task<Result<RedisConnection, RedisError>, Never>?
        /// The locator generation of the last failed connect: a newer master ends the backoff.
        var failedGeneration = 0
        var failures = 0
        var retryAt: ContinuousClock.Instant?
        var lastError: RedisError?
        var closed = false
    }

    private let state = Mutex(State())

    init(index: Int, configuration: RedisConfiguration, logger: Logger) {
        self.index = index
        self.configuration = configuration
        self.backoff = Backoff(initial: configuration.reconnectBackoff, maximum: configuration.maxReconnectBackoff)
        var logger = logger
        logger[metadataKey: "redis.endpoint"] =
            .string(configuration.sentinel.map(\.description) ?? "\(configuration.host):\(configuration.port)")
        self.logger = logger
        self.locator = configuration.sentinel.map {
            MasterLocator.shared($0, connectTimeout: configuration.connectTimeout, tls: configuration.tls)
        }
    }

    /// Sends `commands` in one write and returns their replies and the connection that
    /// answered. A connection found closed before the write is replaced and the commands
    /// sent once more (they never left); any other failure after the write may have run them
    /// (`maybeExecuted`).
    func run(_ commands: [[[UInt8]]]) async throws(RedisError) -> ([RedisReply], RedisConnection) {
        load.add(1, ordering: .relaxed)
        defer { load.subtract(1, ordering: .relaxed) }
        var attempt = 0
        while true {
            attempt += 1
            let connection = try await connected().get()
            do {
                return (try await connection.pipeline(commands, timeout: configuration.commandTimeout), connection)
            } catch {
                var error = error
                let notSent = error.underlying is NotSent
                if !connection.isOpen || notSent { drop(connection) }
                if notSent, attempt < 3 { continue }
                if !notSent, error.code != .errorReply, error.code != .unexpectedReply, error.code != .readOnlyReplica,
                    error.code != .refusedNow
                {
                    error.maybeExecuted = true
                }
                throw error
            }
        }
    }

    func close() async {
        let (connection, connecting) = state.withLock { s -> (RedisConnection?, Task<Result<RedisConnection, RedisError>, Never>?) in
            s.closed = true
            defer { s.connection = nil }
            return (s.connection, s.connecting)
        }
        connection?.close()
        if case .success(let late)? = await connecting?.value { late.close() }
    }

    /// Forgets a broken connection (and, with sentinels, makes the next connect ask them).
    private func drop(_ connection: RedisConnection) {
        connection.close()
        let removed = state.withLock { s -> Bool in
            guard s.connection === connection else { return false }
            s.connection = nil
            return true
        }
        if removed {
            locator?.invalidate(generation: connection.generation)
            logger.debug("redis connection dropped")
        }
    }

    private enum Next {
        case use(RedisConnection)
        case wait(Task<Result<RedisConnection, RedisError>, Never>)
        case fail(RedisError)
    }

    /// The open connection, reconnecting if needed (at most once per backoff period).
    private func connected() async -> Result<RedisConnection, RedisError> {
        let generation = locator?.generation ?? 0
        var stale: RedisConnection?
        let next = state.withLock { s -> Next in
            if s.closed { return .fail(RedisError(.closed, "the client is closed")) }
            if let connection = s.connection {
                if connection.generation == generation, connection.isOpen { return .use(connection) }
                // the sentinels switched masters (this one may be a replica by now), or the
                // server closed it (CLIENT KILL, restart, timeout)
                stale = connection
                s.connection = nil
            }
            if let connecting = s.connecting { return .wait(connecting) }
            let now = ContinuousClock.now
            if let retryAt = s.retryAt, now < retryAt, generation == s.failedGeneration {
                let reason = s.lastError.map { ": \($0.message)" } ?? ""
                return .fail(
                    RedisError(.connectionFailed, "redis unavailable, next attempt in \((retryAt - now).milliseconds) ms\(reason)"))
            }
            let task = Task { await self.connect() }
            s.connecting = task
            return .wait(task)
        }
        if let stale {
            stale.close()
            if stale.generation != generation {
                logger.info("redis master switched; reconnecting")
            } else {
                locator?.invalidate(generation: stale.generation)
                logger.debug("redis connection was closed by the server; reconnecting")
            }
        }
        switch next {
        case .use(let connection): return .success(connection)
        case .fail(let error): return .failure(error)
        case .wait(let task): return await task.value
        }
    }

    /// One connect attempt; records the connection, or the failure and the next attempt's time.
    private func connect() async -> Result<RedisConnection, RedisError> {
        let result: Result<RedisConnection, RedisError>
        do {
            result = .success(try await RedisConnection.connectToServer(configuration))
        } catch {
            result = .failure(error)
        }
        let (failures, delay, closed) = state.withLock { s -> (Int, Duration, Bool) in
            s.connecting = nil
            switch result {
            case .success(let connection):
                let previous = s.failures
                s.failures = 0
                s.retryAt = nil
                s.lastError = nil
                if !s.closed { s.connection = connection }
                return (previous, .zero, s.closed)
            case .failure(let error):
                s.failures += 1
                let delay = backoff.delay(afterFailures: s.failures)
                s.retryAt = ContinuousClock.now + delay
                s.failedGeneration = locator?.generation ?? 0
                s.lastError = error
                return (s.failures, delay, s.closed)
            }
        }
        switch result {
        case .success(let connection):
            if closed {
                connection.close()
                return .failure(RedisError(.closed, "the client is closed"))
            }
            if failures > 0 { logger.info("redis connection restored", metadata: ["redis.failures": "\(failures)"]) }
        case .failure(let error):
            let level: Logger.Level = failures == 1 ? .warning : .debug
            logger.log(
                level: level, "redis connect failed",
                metadata: [
                    "error": "\(error.message)", "redis.failures": "\(failures)", "redis.retry_ms": "\(delay.milliseconds)",
                ])
        }
        return result
    }
}
