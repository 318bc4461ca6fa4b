// A pub/sub subscriber: one task and one NIO connection in subscribe mode.
//
// The task connects, SUBSCRIBEs, and then watches the connection in short slices (so
// `stop()` is noticed quickly) while messages go straight from the connection's event loop
// into `events`; it PINGs when the connection has been quiet and treats a missing PONG as a
// dead connection. After any failure it reconnects with exponential
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

    /// Starts the subscriber task (once).
    public func start() {
        let first = state.withLock { s -> Bool in
            if s.started || s.stopped { return false }
            s.started = true
            return true
        }
        guard first else { return }
        continuation.onTermination = { [weak self] _ in self?.stop() }
        Task { await self.loop() }
    }

    /// Asks the task to stop; it exits within a slice and finishes `events`.
    public func stop() {
        let wasRunning = state.withLock { s -> Bool in
            defer { s.stopped = true }
            return s.started && !s.stopped
        }
        if !wasRunning { continuation.finish() }
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    private func loop() async {
        defer { continuation.finish() }
        let backoff = Backoff(initial: configuration.reconnectBackoff, maximum: configuration.maxReconnectBackoff)
        var failures = 0
        var subscribedBefore = false
        let locator = configuration.sentinel.map {
            MasterLocator.shared($0, connectTimeout: configuration.connectTimeout, tls: configuration.tls)
        }
        var generation = locator?.generation ?? 0
        while !isStopped {
            let inbox = SubscriberInbox(continuation: continuation)
            do throws(RedisError) {
                let connection = try await RedisConnection.connectToServer(configuration, push: inbox.receive)
                defer { connection.close() }
                generation = connection.generation
                try await subscribe(connection, inbox)
                failures = 0
                continuation.yield(.subscribed(reconnected: subscribedBefore))
                if subscribedBefore { logger.info("redis subscriber resubscribed") }
                subscribedBefore = true
                try await receive(connection, inbox, locator: locator)
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
                await sleep(delay) { locator.map { $0.generation != seen } ?? false }
            }
        }
    }

    private func subscribe(_ connection: RedisConnection, _ inbox: SubscriberInbox) async throws(RedisError) {
        connection.send(pushed: [[Array("SUBSCRIBE".utf8)] + channels.map { Array($0.utf8) }])
        let wanted = Set(channels)
        let deadline = ContinuousClock.now + configuration.commandTimeout
        while !inbox.confirmed.isSuperset(of: wanted) {
            if let message = inbox.refused { throw RedisError(.errorReply, "SUBSCRIBE refused: \(message)") }
            guard connection.isOpen else { throw RedisError(.connectionLost, "\(connection.endpoint) closed the connection") }
            guard ContinuousClock.now < deadline, !isStopped else { throw RedisError(.timeout, "SUBSCRIBE not confirmed in time") }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    private func receive(_ connection: RedisConnection, _ inbox: SubscriberInbox, locator: MasterLocator?) async throws(RedisError) {
        var pingSent: ContinuousClock.Instant?
        var seen = inbox.lastActivity
        while !isStopped {
            if let locator, locator.generation != connection.generation {
                // follow the new master (the old one may be partitioned away, still open)
                throw RedisError(.connectionLost, "the sentinels switched masters")
            }
            guard connection.isOpen else { throw RedisError(.connectionLost, "\(connection.endpoint) closed the connection") }
            if let message = inbox.refused { throw RedisError(.errorReply, "\(connection.endpoint): \(message)") }
            let now = ContinuousClock.now
            let lastActivity = inbox.lastActivity
            if lastActivity != seen {
                seen = lastActivity
                pingSent = nil
            }
            if let sent = pingSent {
                if now - sent > pingInterval { throw RedisError(.timeout, "no answer to PING") }
            } else if now - lastActivity > pingInterval {
                connection.send(pushed: [[Array("PING".utf8)]])
                pingSent = now
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Sleeps in short slices so stop() is not delayed by a long backoff.
    private func sleep(_ duration: Duration, until done: () -> Bool = { false }) async {
        let deadline = ContinuousClock.now + duration
        while !isStopped, !done(), ContinuousClock.now < deadline {
            try? await Task.sleep(for: min(.milliseconds(50), deadline - .now))
        }
    }
}

/// What a subscribe-mode connection pushes: messages go to `events` at once (on the
/// connection's event loop); confirmations, PONGs and error replies are noted for the task.
final class SubscriberInbox: Sendable {
    private struct State {
        var confirmed: Set<String> = []
        var refused: String?
        var lastActivity = ContinuousClock.now
    }

    private let state = Mutex(State())
    private let continuation: AsyncStream<RedisSubscriber.Event>.Continuation

    init(continuation: AsyncStream<RedisSubscriber.Event>.Continuation) {
        self.continuation = continuation
    }

    var receive: @Sendable (RedisReply) -> Void {
        { [self] reply in
            state.withLock { $0.lastActivity = .now }
            if case .error(let message) = reply {
                state.withLock { $0.refused = message }
                return
            }
            guard let items = reply.array, let kind = items.first?.text else { return }
            switch kind {
            case "message" where items.count == 3:
                continuation.yield(.message(channel: items[1].text ?? "", payload: items[2].bytes ?? []))
            case "pmessage" where items.count == 4:
                continuation.yield(.message(channel: items[2].text ?? "", payload: items[3].bytes ?? []))
            case "subscribe" where items.count == 3, "psubscribe" where items.count == 3:
                if let channel = items[1].text { state.withLock { _ = $0.confirmed.insert(channel) } }
            default:
                break  // pong
            }
        }
    }

    var confirmed: Set<String> { state.withLock { $0.confirmed } }
    var refused: String? { state.withLock { $0.refused } }
    var lastActivity: ContinuousClock.Instant { state.withLock { $0.lastActivity } }
}
