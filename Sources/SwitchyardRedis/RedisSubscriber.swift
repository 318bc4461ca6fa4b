// A pub/sub subscriber on its own thread.
//
// The thread connects, SUBSCRIBEs, and then waits on the socket in short poll slices (so
// `stop()` is noticed quickly); it PINGs when the connection has been quiet and treats a
// missing PONG as a dead connection. After any failure it reconnects with exponential
// backoff and jitter and subscribes again, then reports `.subscribed(reconnected: true)`:
// messages published while it was away are lost, so a consumer should re-read whatever
// state the messages describe when it sees that event.

import Foundation
import Logging
import Synchronization

public final class RedisSubscriber: Sendable {
    public enum Event: Sendable, Equatable {
        /// Subscribed to every channel; `reconnected` is false the first time.
        case subscribed(reconnected: Bool)
        case message(channel: String, payload: [UInt8])
        /// The connection failed or broke; a reconnect follows unless stopped.
        case disconnected(reason: String)
    }

    /// Events in order. Finishes after `stop()`.
    public let events: AsyncStream<Event>

    private let continuation: AsyncStream<Event>.Continuation
    private let configuration: RedisConfiguration
    private let channels: [String]
    private let pingInterval: Duration
    private let logger: Logger
    private let state = Mutex<(started: Bool, stopped: Bool)>((false, false))

    public init(
        configuration: RedisConfiguration, channels: [String], pingInterval: Duration = .seconds(5),
        logger: Logger = Logger(label: "switchyard.redis.subscriber")
    ) {
        precondition(!channels.isEmpty, "subscribe to at least one channel")
        self.configuration = configuration
        self.channels = channels
        self.pingInterval = pingInterval
        self.logger = logger
        (self.events, self.continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(10_000))
    }

    /// Starts the subscriber thread (once).
    public func start() {
        let first = state.withLock { s -> Bool in
            if s.started || s.stopped { return false }
            s.started = true
            return true
        }
        guard first else { return }
        continuation.onTermination = { [weak self] _ in self?.stop() }
        let thread = Thread { [self] in self.loop() }
        thread.name = "switchyard.redis.subscriber"
        thread.start()
    }

    /// Asks the thread to stop; it exits within a poll slice and finishes `events`.
    public func stop() {
        let wasRunning = state.withLock { s -> Bool in
            defer { s.stopped = true }
            return s.started && !s.stopped
        }
        if !wasRunning { continuation.finish() }
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    private func loop() {
        defer { continuation.finish() }
        let backoff = Backoff(initial: configuration.reconnectBackoff, maximum: configuration.maxReconnectBackoff)
        var failures = 0
        var subscribedBefore = false
        let locator = configuration.sentinel.map { MasterLocator.shared($0, connectTimeout: configuration.connectTimeout) }
        var generation = locator?.generation ?? 0
        while !isStopped {
            do throws(RedisError) {
                let connection = try HiredisConnection.connectToServer(configuration)
                defer { connection.close() }
                generation = connection.generation
                try subscribe(connection)
                failures = 0
                continuation.yield(.subscribed(reconnected: subscribedBefore))
                if subscribedBefore { logger.info("redis subscriber resubscribed") }
                subscribedBefore = true
                try receive(connection)
            } catch {
                if isStopped { break }
                // a broken connection to a located master: ask the sentinels next time
                locator?.invalidate(generation: generation)
                failures += 1
                continuation.yield(.disconnected(reason: error.description))
                let delay = backoff.delay(afterFailures: failures)
                logger.log(
                    level: failures == 1 ? .warning : .debug, "redis subscriber disconnected",
                    metadata: [
                        "error": "\(error.message)", "redis.retry_ms": "\(delay.milliseconds)",
                    ])
                // a new master (+switch-master) ends the wait
                let seen = locator?.generation ?? 0
                sleep(delay) { locator.map { $0.generation != seen } ?? false }
            }
        }
    }

    private func subscribe(_ connection: HiredisConnection) throws(RedisError) {
        try connection.append([Array("SUBSCRIBE".utf8)] + channels.map { Array($0.utf8) })
        try connection.flush()
        var confirmed = Set<String>()
        while confirmed.count < Set(channels).count {
            let reply = try connection.readReply()
            if case .error(let message) = reply { throw RedisError(.errorReply, "SUBSCRIBE refused: \(message)") }
            guard let items = reply.array, items.count == 3, items[0].text == "subscribe", let channel = items[1].text else {
                throw RedisError(.unexpectedReply, "unexpected reply to SUBSCRIBE")
            }
            confirmed.insert(channel)
        }
    }

    private func receive(_ connection: HiredisConnection) throws(RedisError) {
        var lastActivity = ContinuousClock.now
        var pingSent: ContinuousClock.Instant?
        let locator = configuration.sentinel.map { MasterLocator.shared($0, connectTimeout: configuration.connectTimeout) }
        while !isStopped {
            if let locator, locator.generation != connection.generation {
                // follow the new master (the old one may be partitioned away, still open)
                throw RedisError(.connectionLost, "the sentinels switched masters")
            }
            while let reply = try connection.bufferedReply() {
                lastActivity = .now
                pingSent = nil
                handle(reply)
            }
            if connection.waitReadable(milliseconds: 200) {
                try connection.fill()
                continue
            }
            let now = ContinuousClock.now
            if let sent = pingSent {
                if now - sent > pingInterval { throw RedisError(.timeout, "no answer to PING") }
            } else if now - lastActivity > pingInterval {
                try connection.append([Array("PING".utf8)])
                try connection.flush()
                pingSent = now
            }
        }
    }

    private func handle(_ reply: RedisReply) {
        guard let items = reply.array, let kind = items.first?.text else { return }
        switch kind {
        case "message" where items.count == 3:
            continuation.yield(.message(channel: items[1].text ?? "", payload: items[2].bytes ?? []))
        case "pmessage" where items.count == 4:
            continuation.yield(.message(channel: items[2].text ?? "", payload: items[3].bytes ?? []))
        default:
            break  // pong, subscribe confirmations
        }
    }

    /// Sleeps in short slices so stop() is not delayed by a long backoff.
    private func sleep(_ duration: Duration, until done: () -> Bool = { false }) {
        let deadline = ContinuousClock.now + duration
        while !isStopped, !done(), ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: min(0.05, Double((deadline - .now).milliseconds) / 1000))
        }
    }
}
