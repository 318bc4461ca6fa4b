// `switchyard stream`: the TCP and UDP stream role (issue 23, docs/stream.md). Follows the stream
// services in Redis (pub/sub, with a safety-net poll) and relays their connections; listeners
// come and go without a restart. Prometheus metrics on --metrics-listen (loopback by default).

import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SwitchyardObservability
import SwitchyardRedis
import SwitchyardStream

struct StreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream",
        abstract: "Serve the TCP and UDP stream services kept in Redis (listen ports, upstream endpoints, health) without reloads."
    )

    @OptionGroup var redis: RedisOptions

    @Option(help: "Address the stream listeners bind to.")
    var bind: String = "0.0.0.0"

    @Option(help: "Event loop threads (default: the number of cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(
        help:
            "Safety-net poll in ms: changes arrive through pub/sub at once; this also asks Redis for new versions this often (a lost message, a reconnecting subscriber)."
    )
    var pollMs: Int = 1000

    @OptionGroup var logging: LoggingOptions

    @OptionGroup var metrics: MetricsOptions

    /// The stream role's /metrics port unless --metrics-listen says otherwise.
    static let defaultMetricsPort = 9183

    func validate() throws {
        _ = try metrics.listen(defaultPort: Self.defaultMetricsPort)
        if !(1...64).contains(threads) { throw ValidationError("--threads must be 1-64") }
        if !(10...10_000).contains(pollMs) { throw ValidationError("--poll-ms must be 10-10000") }
    }

    func run() async throws {
        logging.bootstrap()
        var logger = Logger(label: "switchyard.stream")
        logger.logLevel = logging.level
        var redisConfiguration = RedisConfiguration(poolSize: 2)
        let environment = ProcessInfo.processInfo.environment
        try redis.configure(&redisConfiguration) { environment[$0] }
        let client = RedisClient(configuration: redisConfiguration, logger: logger)
        let streamMetrics = StreamMetrics()
        let engine = StreamEngine(threads: threads, bindHost: bind, logger: logger, metrics: streamMetrics)
        let follower = StreamFollower(
            redis: client, subscriberConfiguration: redisConfiguration, engine: engine, poll: .milliseconds(pollMs), logger: logger,
            keys: try redis.address.keys
        ) { versions in
            streamMetrics.applied(config: versions[0], health: versions[1])
        }

        var services: [any Service] = [FollowerService(follower: follower)]
        let metricsListen = try metrics.listen(defaultPort: Self.defaultMetricsPort)
        if let metricsListen {
            services.append(makeMetricsServer(registry: streamMetrics.registry, listen: metricsListen, logger: logger))
        }
        logger.info(
            "stream role started",
            metadata: [
                "bind": "\(bind)", "poll_ms": "\(pollMs)", "group": "\(redis.address.group)",
                "metrics.listen": "\(metricsListen.map { "\($0.host):\($0.port)" } ?? "off")",
            ])
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
        await engine.shutdown()
        await client.close()
        logger.info("stream role stopped")
    }
}

struct FollowerService: Service {
    let follower: StreamFollower
    func run() async throws {
        await cancelWhenGracefulShutdown { await follower.run() }
    }
}
