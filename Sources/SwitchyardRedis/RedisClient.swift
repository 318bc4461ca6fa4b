// A small pool of Redis connections for request/response commands.
//
// hiredis is synchronous, so each connection lives on its own serial DispatchQueue and
// callers await a continuation: blocking I/O never runs on Swift's cooperative pool. Every
// call is bounded: a command (including time spent queued behind others) fails with
// `.timeout` after `commandTimeout`, and while Redis is down calls fail at once with
// `.connectionFailed` until the next reconnect attempt, which is spaced by exponential
// backoff with jitter. A dropped connection (CLIENT KILL, restart) is noticed before the
// next command is sent and replaced, so the command still goes through.

import Dispatch
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
            try await slot().run { connection throws(RedisError) in try Self.refusingReplica(connection.command(args), connection) }
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
            try await slot().run { connection throws(RedisError) in
                let replies = try connection.pipeline([command, wait])
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
    }

    /// A `READONLY` error reply means the connection reaches a replica (a demoted master):
    /// it is closed (the next call connects to the master the sentinels name now) and the
    /// call fails as unavailable; a replica executed nothing, so a retry is safe.
    static func refusingReplica(_ reply: RedisReply, _ connection: HiredisConnection) throws(RedisError) -> RedisReply {
        guard case .error(let message) = reply else { return reply }
        if message.hasPrefix("NOREPLICAS") || message.hasPrefix("MASTERDOWN") || message.hasPrefix("LOADING") {
            // not now, and nothing was executed: unavailable, as an unreachable Redis is
            throw RedisError(.refusedNow, "\(connection.endpoint) refused the command: \(message)")
        }
        guard message.hasPrefix("READONLY") else { return reply }
        connection.close()
        throw RedisError(.readOnlyReplica, "\(connection.endpoint) is a replica now (READONLY); reconnecting to the master")
    }

    static func refusingReplica(_ replies: [RedisReply], _ connection: HiredisConnection) throws(RedisError) -> [RedisReply] {
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
            try await slot().run { connection throws(RedisError) in try Self.refusingReplica(connection.pipeline(commands), connection) }
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

/// One connection and the serial queue it lives on. Mutable state is touched only on `queue`.
final class ConnectionSlot: @unchecked Sendable {
    let index: Int
    let queue: DispatchQueue
    let configuration: RedisConfiguration
    let backoff: Backoff
    var logger: Logger
    /// Jobs queued or running (read by the pool to pick a slot).
    let load = Atomic<Int>(0)

    /// The sentinels' master, when the configuration names sentinels.
    let locator: MasterLocator?

    // confined to `queue`
    private var connection: HiredisConnection?
    /// The locator generation of the last failed connect: a newer master ends the backoff.
    private var failedGeneration = 0
    private var failures = 0
    private var retryAt: ContinuousClock.Instant?
    private var lastError: RedisError?
    private var closed = false

    init(index: Int, configuration: RedisConfiguration, logger: Logger) {
        self.index = index
        self.configuration = configuration
        self.queue = DispatchQueue(label: "switchyard.redis.\(index)")
        self.backoff = Backoff(initial: configuration.reconnectBackoff, maximum: configuration.maxReconnectBackoff)
        self.logger = logger
        self.locator = configuration.sentinel.map { MasterLocator.shared($0, connectTimeout: configuration.connectTimeout) }
        self.logger[metadataKey: "redis.endpoint"] =
            .string(configuration.sentinel.map(\.description) ?? "\(configuration.host):\(configuration.port)")
    }

    func run<T: Sendable>(_ body: @escaping @Sendable (HiredisConnection) throws(RedisError) -> T) async throws(RedisError) -> T {
        let enqueued = ContinuousClock.now
        load.add(1, ordering: .relaxed)
        let result: Result<T, RedisError> = await withCheckedContinuation { continuation in
            queue.async {
                defer { self.load.subtract(1, ordering: .relaxed) }
                continuation.resume(returning: self.execute(enqueued: enqueued, body))
            }
        }
        return try result.get()
    }

    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                self.closed = true
                self.connection?.close()
                self.connection = nil
                continuation.resume()
            }
        }
    }

    /// Runs on `queue`.
    private func execute<T>(enqueued: ContinuousClock.Instant, _ body: (HiredisConnection) throws(RedisError) -> T) -> Result<T, RedisError>
    {
        if closed { return .failure(RedisError(.closed, "the client is closed")) }
        if ContinuousClock.now - enqueued > configuration.commandTimeout {
            return .failure(RedisError(.timeout, "no free connection within the command timeout"))
        }
        let connection: HiredisConnection
        switch connected() {
        case .success(let c): connection = c
        case .failure(let error): return .failure(error)
        }
        do {
            return .success(try body(connection))
        } catch {
            var error = error
            if error.code != .errorReply, error.code != .unexpectedReply, error.code != .readOnlyReplica,
                error.code != .refusedNow
            {
                error.maybeExecuted = true
            }
            if !connection.isOpen {
                // hiredis contexts are unusable after an I/O error: the next call reconnects
                // (and, with sentinels, asks them where the master is first)
                locator?.invalidate(generation: connection.generation)
                self.connection = nil
                logger.debug("redis connection dropped", metadata: ["error": "\(error)"])
            }
            return .failure(error)
        }
    }

    /// The open connection, reconnecting if needed (at most once per backoff period).
    private func connected() -> Result<HiredisConnection, RedisError> {
        let generation = locator?.generation ?? 0
        if let connection {
            if connection.generation != generation {
                // the sentinels switched masters: this one may be a replica by now
                connection.close()
                self.connection = nil
                logger.info("redis master switched; reconnecting")
            } else if connection.isIdleAndHealthy {
                return .success(connection)
            } else {
                connection.close()
                self.connection = nil
                locator?.invalidate(generation: connection.generation)
                logger.debug("redis connection was closed by the server; reconnecting")
            }
        }
        let now = ContinuousClock.now
        if let retryAt, now < retryAt, generation == failedGeneration {
            let wait = retryAt - now
            let reason = lastError.map { ": \($0.message)" } ?? ""
            return .failure(RedisError(.connectionFailed, "redis unavailable, next attempt in \(wait.milliseconds) ms\(reason)"))
        }
        do {
            let fresh = try HiredisConnection.connectToServer(configuration)
            if failures > 0 { logger.info("redis connection restored", metadata: ["redis.failures": "\(failures)"]) }
            failures = 0
            retryAt = nil
            lastError = nil
            connection = fresh
            return .success(fresh)
        } catch {
            failures += 1
            let delay = backoff.delay(afterFailures: failures)
            retryAt = ContinuousClock.now + delay
            failedGeneration = locator?.generation ?? 0
            lastError = error
            let level: Logger.Level = failures == 1 ? .warning : .debug
            logger.log(
                level: level, "redis connect failed",
                metadata: [
                    "error": "\(error.message)", "redis.failures": "\(failures)", "redis.retry_ms": "\(delay.milliseconds)",
                ])
            return .failure(error)
        }
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
