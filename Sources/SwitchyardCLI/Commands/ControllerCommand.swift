// `switchyard controller`: run the admin API (Sources/SwitchyardController).

import ArgumentParser
import Hummingbird
import Logging
import SwitchyardController
import SwitchyardCore

struct ControllerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "controller",
        abstract: "Run the admin API (validates changes and writes them to Redis atomically)."
    )

    @Option(help: "Address to serve the API on: host:port, [ipv6]:port or port (default 127.0.0.1:9180).")
    var listen: String?

    @Option(help: "Host to bind (alternative to --listen).")
    var host: String?

    @Option(help: "Port to bind (alternative to --listen).")
    var port: Int?

    @OptionGroup var redis: RedisOptions

    @OptionGroup var durability: RedisDurabilityOptions

    @Option(help: "Bearer token required on /api/v1 (default: $SWITCHYARD_ADMIN_TOKEN).")
    var adminToken: String?

    @Option(
        help: ArgumentHelp(
            "Named tokens with roles (read, write, admin), stored hashed: YAML or JSON {tokens: [{name, role, hash}]}; reloaded on SIGHUP. `switchyard token new` makes one.",
            valueName: "path"))
    var tokensFile: String?

    @Option(
        help: "Path of the Redis Function library (default: redis/switchyard.lua found via $SWITCHYARD_HOME or next to the executable).")
    var functions: String?

    @Flag(help: "Allow serving a non-loopback address without an admin token.")
    var insecureNoToken = false

    @Option(help: "Seconds one Redis command may take.")
    var redisTimeout: Double = 2

    @Option(help: "Seconds one request may spend on Redis, retries included.")
    var requestTimeout: Double = 10

    @Option(help: "Redis connections in the pool.")
    var redisConnections: Int = 4

    @Option(
        help: ArgumentHelp(
            "Regex engine the edges' ngx.re runs, which route and rewrite regexes are compiled with: pcre1 (Debian 12's nginx lua module) or pcre2 (OpenResty, Debian 13).",
            valueName: "pcre1|pcre2"))
    var regexEngine: String = RegexEngine.pcre1.rawValue

    @Flag(help: "Accept link-local endpoints (169.254.0.0/16, fe80::/10), where cloud metadata services answer.")
    var allowLinkLocalEndpoints = false

    @OptionGroup var logging: LoggingOptions

    @OptionGroup var metrics: MetricsOptions

    /// The controller's /metrics port unless --metrics-listen says otherwise.
    static let defaultMetricsPort = 9181

    func validate() throws {
        _ = try metrics.listen(defaultPort: Self.defaultMetricsPort)
        if listen != nil, host != nil || port != nil { throw ValidationError("use --listen or --host/--port, not both") }
        if redisTimeout <= 0 || requestTimeout <= 0 { throw ValidationError("timeouts must be positive") }
        if !(1...64).contains(redisConnections) { throw ValidationError("--redis-connections must be 1-64") }
        if RegexEngine(rawValue: regexEngine) == nil { throw ValidationError("--regex-engine must be pcre1 or pcre2") }
    }

    func run() async throws {
        logging.bootstrap()
        let environment = Environment()
        var configuration = Configuration()
        if let listen {
            do {
                (configuration.host, configuration.port) = try HostPort.parse(listen, defaultHost: "127.0.0.1")
            } catch {
                throw ValidationError("--listen \(error)")
            }
        }
        if let host { configuration.host = host }
        if let port { configuration.port = port }
        (configuration.redisHost, configuration.redisPort) = try redis.address.endpoint()
        configuration.adminToken = nonEmpty(adminToken) ?? nonEmpty(environment.get("SWITCHYARD_ADMIN_TOKEN"))
        configuration.tokensFile = nonEmpty(tokensFile) ?? nonEmpty(environment.get("SWITCHYARD_TOKENS_FILE"))
        configuration.redisPassword = redis.password(environment: environment.get)
        configuration.redisUser = redis.address.user
        configuration.redisSentinel = try redis.address.sentinel(environment: environment.get)
        configuration.redisTLS = redis.address.tls
        configuration.keys = try redis.address.keys
        configuration.redisMinReplicasAck = durability.redisMinReplicasAck
        configuration.redisReplicaAckTimeout = .milliseconds(durability.redisAckTimeoutMs)
        configuration.certificateKey = nonEmpty(environment.get(CertificateKeyCipher.environmentVariable))
        configuration.allowInsecureNoToken = insecureNoToken
        configuration.functionsPath = functions
        configuration.redisTimeout = .milliseconds(Int64(redisTimeout * 1000))
        configuration.requestTimeout = .milliseconds(Int64(requestTimeout * 1000))
        configuration.redisConnections = redisConnections
        configuration.logLevel = logging.level
        configuration.regexEngine = RegexEngine(rawValue: regexEngine) ?? .pcre1
        configuration.allowLinkLocalEndpoints = allowLinkLocalEndpoints
        configuration.metricsListen = try metrics.listen(defaultPort: Self.defaultMetricsPort)

        let app: any ApplicationProtocol
        do {
            app = try await buildApplication(configuration: configuration)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        try await app.runService()
    }

    private func nonEmpty(_ s: String?) -> String? {
        guard let s, !s.isEmpty else { return nil }
        return s
    }
}
