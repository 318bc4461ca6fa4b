// `switchyard prober`: run the active health checker (see Sources/SwitchyardProber).
// Two or more may run for availability; a lease in Redis makes one of them active.

import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SwitchyardController
import SwitchyardCore
import SwitchyardProber
import SwitchyardRedis

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct ProberCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prober",
        abstract: "Probe the endpoints of upstreams with a health check and share their health through Redis."
    )

    @OptionGroup var redis: RedisOptions

    @Option(help: "This prober's name in the lease and in health records (default: <hostname>-<pid>).")
    var id: String?

    @Option(help: "Lease length in ms; renewed every third. A standby takes over within two leases.")
    var leaseMs: Int = 3000

    @Option(help: "Path of the Redis Function library, loaded if Redis lacks it (default: redis/switchyard.lua of the installation).")
    var functions: String?

    @Option(help: "Probes in flight at most.")
    var maxInFlight: Int = 4096

    @Flag(help: "Open a new connection for every HTTP probe (default: keep connections to endpoints alive).")
    var freshConnections = false

    @OptionGroup var logging: LoggingOptions

    @OptionGroup var metrics: MetricsOptions

    /// The prober's /metrics port unless --metrics-listen says otherwise.
    static let defaultMetricsPort = 9182

    func validate() throws {
        _ = try metrics.listen(defaultPort: Self.defaultMetricsPort)
        if !ProberConfiguration.leaseRange.contains(leaseMs) {
            throw ValidationError(
                "--lease-ms must be \(ProberConfiguration.leaseRange.lowerBound)-\(ProberConfiguration.leaseRange.upperBound)")
        }
        if let id, !ProberConfiguration.isValidID(id) { throw ValidationError("--id must be 1-63 characters from A-Z a-z 0-9 . _ -") }
        if !(1...100_000).contains(maxInFlight) { throw ValidationError("--max-in-flight must be 1-100000") }
    }

    func run() async throws {
        logging.bootstrap()
        var logger = Logger(label: "switchyard.prober")
        logger.logLevel = logging.level

        var redisConfiguration = RedisConfiguration(poolSize: 3)
        let environment = ProcessInfo.processInfo.environment
        try redis.configure(&redisConfiguration) { environment[$0] }

        var library: String?
        do {
            library = try Installation.functionLibrary(explicitPath: functions).source
        } catch {
            if functions != nil { throw ValidationError("\(error)") }
            logger.warning("no function library found; relying on the controller to load it", metadata: ["error": "\(error)"])
        }

        var configuration = ProberConfiguration(
            id: id ?? Self.defaultID(), redis: redisConfiguration, leaseMs: leaseMs,
            functionLibrary: library, reuseConnections: !freshConnections, maxInFlight: maxInFlight)
        configuration.redis.poolSize = 3
        configuration.keys = try redis.address.keys
        configuration.metricsListen = try metrics.listen(defaultPort: Self.defaultMetricsPort)
        logger.info(
            "prober starting",
            metadata: [
                "prober.id": "\(configuration.id)", "redis.endpoint": "\(redis.address.summary)",
                "prober.lease_ms": "\(leaseMs)",
            ])
        let services: [any Service]
        do {
            services = try buildProber(configuration: configuration, logger: logger)
        } catch let error as ProberError {
            throw ValidationError(error.message)
        }
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }

    /// `<hostname>-<pid>`: unique per process, so two probers on one machine differ.
    static func defaultID() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let host =
            gethostname(&buffer, buffer.count) == 0
            ? String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self) : "prober"
        let cleaned = String(host.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_") ? $0 : "-" })
        let suffix = "-\(getpid())"
        return String((cleaned.isEmpty ? "prober" : cleaned).prefix(63 - suffix.count)) + suffix
    }
}
