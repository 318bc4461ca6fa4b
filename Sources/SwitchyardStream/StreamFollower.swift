// Follows Redis for the stream engine: every `poll` it reads the stream, configuration
// (upstreams) and health versions (one pipeline) and, when one moved, reloads the streams, their upstreams and the health
// verdicts and hands the result to the engine. A malformed document is logged and skipped;
// a Redis outage keeps the last configuration running.

import Logging
import SwitchyardCore
import SwitchyardRedis

public struct StreamFollower: Sendable {
    let redis: RedisClient
    let engine: StreamEngine
    let poll: Duration
    let logger: Logger

    public init(redis: RedisClient, engine: StreamEngine, poll: Duration, logger: Logger) {
        self.redis = redis
        self.engine = engine
        self.poll = poll
        self.logger = logger
    }

    public func run() async {
        var seen: [String] = []
        var lastLoad = ContinuousClock.now
        while !Task.isCancelled {
            do {
                let versions = try await redis.pipeline([
                    ["GET", StreamKeys.version], ["GET", KeySchema.version], ["GET", KeySchema.healthVersion],
                ])
                .map { $0.text ?? "" }
                // reload on a change, and every few seconds anyway (a port that could not be
                // bound is tried again)
                if versions != seen || ContinuousClock.now - lastLoad > .seconds(5) {
                    let services = try await load()
                    await engine.apply(services)
                    seen = versions
                    lastLoad = ContinuousClock.now
                }
            } catch {
                logger.warning("redis unavailable; keeping the last stream configuration", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: poll)
        }
    }

    func load() async throws(RedisError) -> [StreamRuntime] {
        let ids = (try await redis.send("SMEMBERS", StreamKeys.index).array ?? []).compactMap(\.text).sorted()
        guard !ids.isEmpty else { return [] }
        let docs = try await redis.pipeline(ids.map { ["GET", StreamKeys.stream($0)] })
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
            commands.append(["GET", KeySchema.upstream(n)])
            commands.append(["HGETALL", KeySchema.health(n)])
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
