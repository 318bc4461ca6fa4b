// Follows Redis for the stream engine. Streams are configuration objects written by sy_apply
// (docs/stream.md), so it subscribes to the configuration and health channels; every message
// (and, as a safety net for a lost message or a subscriber that is reconnecting, every
// `poll`) reads the two versions in one pipeline and, when one moved,
// reloads the streams, their upstreams and the health verdicts and hands the result to the
// engine. Messages coalesce: a burst of changes costs one reload after it. A malformed
// document is logged and skipped; a Redis outage keeps the last configuration running.

import Logging
import SwitchyardCore
import SwitchyardRedis

public struct StreamFollower: Sendable {
    let redis: RedisClient
    let subscriberConfiguration: RedisConfiguration?
    let engine: StreamEngine
    let poll: Duration
    let logger: Logger
    let onApplied: @Sendable (_ versions: [Int64]) -> Void
    /// The group whose streams it serves (`--group`).
    let keys: KeySchema

    /// The pub/sub channels whose messages wake the follower.
    public static func channels(_ keys: KeySchema) -> [String] { [keys.events, keys.healthEvents] }

    /// `subscriberConfiguration` nil: poll only (no pub/sub). `onApplied` is called with the
    /// configuration and health versions after each reload reached the engine.
    public init(
        redis: RedisClient, subscriberConfiguration: RedisConfiguration?, engine: StreamEngine, poll: Duration, logger: Logger,
        keys: KeySchema = .default, onApplied: @escaping @Sendable (_ versions: [Int64]) -> Void = { _ in }
    ) {
        self.keys = keys
        self.redis = redis
        self.subscriberConfiguration = subscriberConfiguration
        self.engine = engine
        self.poll = poll
        self.logger = logger
        self.onApplied = onApplied
    }

    public func run() async {
        // one pending wake at most: a burst of messages during a reload costs one more check
        let (wake, waker) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let subscriber = subscriberConfiguration.map {
            RedisSubscriber(configuration: $0, channels: Self.channels(keys), logger: logger)
        }
        subscriber?.start()
        defer { subscriber?.stop() }
        await withTaskGroup(of: Void.self) { group in
            if let subscriber {
                group.addTask {
                    for await event in subscriber.events {
                        switch event {
                        case .subscribed, .message: waker.yield()  // after a reconnect: re-read
                        case .disconnected: break
                        }
                    }
                }
            }
            group.addTask { [poll] in
                while !Task.isCancelled {
                    waker.yield()
                    try? await Task.sleep(for: poll)
                }
                waker.finish()
            }
            group.addTask {
                var seen: [String] = []
                var lastLoad = ContinuousClock.now
                for await _ in wake {
                    if Task.isCancelled { break }
                    await check(&seen, &lastLoad)
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    private func check(_ seen: inout [String], _ lastLoad: inout ContinuousClock.Instant) async {
        do {
            let versions = try await redis.pipeline([
                ["GET", keys.version], ["GET", keys.healthVersion],
            ])
            .map { $0.text ?? "" }
            // reload on a change, and every few seconds anyway (a port that could not be
            // bound is tried again)
            if versions != seen || ContinuousClock.now - lastLoad > .seconds(5) {
                let services = try await load()
                await engine.apply(services)
                seen = versions
                lastLoad = ContinuousClock.now
                onApplied(versions.map { Int64($0) ?? 0 })
            }
        } catch {
            logger.warning("redis unavailable; keeping the last stream configuration", metadata: ["error": "\(error)"])
        }
    }

    func load() async throws(RedisError) -> [StreamRuntime] {
        let ids = (try await redis.send("SMEMBERS", keys.streams).array ?? []).compactMap(\.text).sorted()
        guard !ids.isEmpty else { return [] }
        let docs = try await redis.pipeline(ids.map { ["GET", keys.stream($0)] })
        var services: [StreamService] = []
        for (id, reply) in zip(ids, docs) {
            guard let bytes = reply.bytes else { continue }
            guard let json = try? JSONValue.parse(bytes) else {
                logger.error("stream document is not JSON; skipped", metadata: ["stream": "\(id)"])
                continue
            }
            switch StreamService.validate(json, id: id) {
            case .success(let s): services.append(s)
            case .failure(let f):
                logger.error("stream document is invalid; skipped", metadata: ["stream": "\(id)", "problems": "\(f.problems)"])
            }
        }
        let names = Array(Set(services.map(\.upstream))).sorted()
        var commands: [[String]] = []
        for n in names {
            commands.append(["GET", keys.upstream(n)])
            commands.append(["HGETALL", keys.health(n)])
        }
        let replies = names.isEmpty ? [] : try await redis.pipeline(commands)
        var upstreams: [String: (Upstream, Set<String>)] = [:]
        for (i, n) in names.enumerated() {
            guard let bytes = replies[2 * i].bytes else {
                logger.warning("stream names a missing upstream", metadata: ["upstream": "\(n)"])
                continue
            }
            guard let stored = try? StoredDocument.upstream(bytes) else {
                logger.error("upstream document is invalid; streams using it are skipped", metadata: ["upstream": "\(n)"])
                continue
            }
            var down = Set<String>()
            let fields = replies[2 * i + 1].array ?? []
            var j = 0
            while j + 1 < fields.count {
                if let address = fields[j].text, let raw = fields[j + 1].bytes, let record = HealthRecord(json: raw), record.state == .down
                {
                    down.insert(address)
                }
                j += 2
            }
            upstreams[n] = (stored.value, down)
        }
        return services.map { s in
            guard let (u, down) = upstreams[s.upstream] else { return StreamRuntime(service: s, targets: []) }
            return StreamRuntime(service: s, targets: StreamBalancer.rotation(u, down: down))
        }
    }
}
