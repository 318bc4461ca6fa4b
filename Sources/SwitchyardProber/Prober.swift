// `switchyard prober`: probes every endpoint of every upstream that has a health check,
// once for all edges, and shares the result through Redis (redis/README.md, "Health").
//
// Built from four services in one ServiceGroup (SIGTERM/SIGINT shut it down gracefully,
// in reverse order: the writer flushes, the lease is released, then the rest stops):
//
//   ProbeEngineService  the probe thread (own http/tcp checker, curl for https), see ProbeEngine.swift
//   ConfigFollower      upstreams with health checks, from Redis
//   LeaseKeeper         which prober is active; heartbeat; reconcile on takeover
//   HealthWriter        transitions -> FCALL sy_health

import Logging
import ServiceLifecycle
import SwitchyardCore
import SwitchyardObservability
import SwitchyardRedis

public struct ProberConfiguration: Sendable {
    /// How to reach Redis (the prober uses a small pool plus one subscriber connection).
    public var redis: RedisConfiguration = RedisConfiguration(poolSize: 3)
    /// This prober's name in the lease, the heartbeat and every record it writes.
    public var id: String
    /// Lease length; renewed every third of it. A standby takes over within about one
    /// lease after the active prober dies (two at most), or at once after a clean stop.
    public var leaseMs: Int = 3000
    /// Source of redis/switchyard.lua, loaded when Redis lacks the health Functions.
    public var functionLibrary: String? = nil
    /// Keep HTTP connections to endpoints open between probes (see PlainProbes).
    public var reuseConnections: Bool = true
    /// Probes running at once, at most; due probes wait beyond this.
    public var maxInFlight: Int = 4096
    /// How often the configuration version is checked besides pub/sub.
    public var configCheckInterval: Duration = .seconds(1)
    /// A full reload of the configuration at least this often (safety net).
    public var fullReloadInterval: Duration = .seconds(300)
    /// Where GET /metrics is served (`--metrics-listen`); nil serves none.
    public var metricsListen: MetricsListen? = nil
    /// The group whose upstreams it probes and whose health keys it writes (`--group`).
    public var keys: KeySchema = .default

    public init(
        id: String, redis: RedisConfiguration = RedisConfiguration(poolSize: 3), leaseMs: Int = 3000,
        functionLibrary: String? = nil, reuseConnections: Bool = true, maxInFlight: Int = 4096
    ) {
        self.id = id
        self.redis = redis
        self.leaseMs = leaseMs
        self.functionLibrary = functionLibrary
        self.reuseConnections = reuseConnections
        self.maxInFlight = maxInFlight
    }

    public static let leaseRange = 300...600_000

    /// Prober ids: 1-63 characters from A-Z a-z 0-9 . _ - (they appear in records and logs).
    public static func isValidID(_ id: String) -> Bool {
        (1...63).contains(id.utf8.count)
            && id.utf8.allSatisfy { b in
                (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x5F || b == 0x2D
            }
    }
}

/// The prober's services, ready for a ServiceGroup (what `switchyard prober` runs). `metrics`
/// counts its probes (tests read it); served on `configuration.metricsListen` if set.
public func buildProber(
    configuration: ProberConfiguration, logger providedLogger: Logger? = nil, metrics providedMetrics: ProberMetrics? = nil
) throws -> [any Service] {
    var logger = providedLogger ?? Logger(label: "switchyard.prober")
    logger[metadataKey: "prober.id"] = "\(configuration.id)"
    guard ProberConfiguration.isValidID(configuration.id) else {
        throw ProberError(.unexpected, "invalid prober id '\(configuration.id)' (1-63 characters from A-Z a-z 0-9 . _ -)")
    }
    guard ProberConfiguration.leaseRange.contains(configuration.leaseMs) else {
        throw ProberError(
            .unexpected, "the lease must be \(ProberConfiguration.leaseRange.lowerBound)-\(ProberConfiguration.leaseRange.upperBound) ms")
    }
    var redisConfiguration = configuration.redis
    redisConfiguration.clientName = "switchyard-prober-\(configuration.id)"
    logger[metadataKey: "group"] = "\(configuration.keys.group)"
    var redisLogger = logger
    redisLogger[metadataKey: "component"] = "redis"
    let metrics = providedMetrics ?? ProberMetrics(proberID: configuration.id)
    let redis = RedisClient(configuration: redisConfiguration, logger: redisLogger, observer: metrics.redisObserver)
    let board = HealthBoard()
    let ready = ReadyFlag()
    let signals = LeaseSignals()
    let library = FunctionLibrary(source: configuration.functionLibrary, logger: logger)
    let engine = try ProbeEngine(
        proberID: configuration.id, board: board, reuseConnections: configuration.reuseConnections,
        maxInFlight: configuration.maxInFlight, metrics: metrics, logger: logger)
    var follower = ConfigFollower(
        redis: redis, subscriberConfiguration: redisConfiguration, engine: engine, ready: ready, logger: logger,
        keys: configuration.keys)
    follower.checkInterval = configuration.configCheckInterval
    follower.fullReloadInterval = configuration.fullReloadInterval
    var services: [any Service] = []
    if let listen = configuration.metricsListen {
        services.append(
            makeMetricsServer(registry: metrics.registry, listen: listen, logger: logger) {
                let (targets, up, down) = board.withLedger { ($0.targets, $0.up, $0.down) }
                metrics.refresh(up: up, down: down, targets: targets)
            })
    }
    return services + [
        ProberRedisShutdown(redis: redis),
        ProbeEngineService(engine: engine, board: board),
        follower,
        LeaseKeeper(
            redis: redis, engine: engine, board: board, ready: ready, signals: signals, library: library,
            proberID: configuration.id, leaseMs: configuration.leaseMs, logger: logger, keys: configuration.keys),
        HealthWriter(
            redis: redis, board: board, signals: signals, library: library, proberID: configuration.id, logger: logger,
            keys: configuration.keys),
    ]
}

/// Runs the probe thread until graceful shutdown.
struct ProbeEngineService: Service, CustomStringConvertible {
    var description: String { "ProbeEngine" }

    let engine: ProbeEngine
    let board: HealthBoard

    func run() async throws {
        engine.start()
        try? await gracefulShutdown()
        await engine.stop()
        board.finish()
    }
}

/// Closes the Redis pool last.
struct ProberRedisShutdown: Service, CustomStringConvertible {
    var description: String { "RedisShutdown" }

    let redis: RedisClient

    func run() async throws {
        try? await gracefulShutdown()
        await redis.close()
    }
}
