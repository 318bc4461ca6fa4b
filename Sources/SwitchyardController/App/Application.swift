// Builds the controller application: the same function serves production (`switchyard
// controller`) and the tests, so tests exercise exactly what runs.

import Hummingbird
import Logging
import ServiceLifecycle
import SwitchyardCore
import SwitchyardObservability
import SwitchyardRedis

/// The controller: admin API, Redis pool, and the Function library loaded at start.
/// Throws `ConfigurationError` for settings that cannot work. `metrics` counts the API's
/// requests and Redis calls; they are served on `configuration.metricsListen` if set.
public func buildApplication(
    configuration: Configuration, logger providedLogger: Logger? = nil, metrics: ControllerMetrics = ControllerMetrics()
) async throws -> some ApplicationProtocol {
    var logger = providedLogger ?? Logger(label: "switchyard.controller")
    logger.logLevel = configuration.logLevel

    if configuration.adminToken?.isEmpty == true { throw ConfigurationError("the admin token must not be empty") }
    let registry: TokenRegistry?
    if configuration.adminToken == nil && configuration.tokensFile == nil {
        if !configuration.bindsLoopbackOnly && !configuration.allowInsecureNoToken {
            throw ConfigurationError(
                "refusing to serve the admin API on \(configuration.host) without a token: set SWITCHYARD_ADMIN_TOKEN "
                    + "(or --admin-token) or --tokens-file, bind 127.0.0.1, or pass --insecure-no-token")
        }
        logger.warning(
            """
            !!! NO ADMIN TOKEN: anyone who can reach \(configuration.host):\(configuration.port) can change all routing. \
            Set SWITCHYARD_ADMIN_TOKEN or --admin-token, or --tokens-file.
            """)
        registry = nil
    } else {
        do {
            registry = try TokenRegistry(adminToken: configuration.adminToken, file: configuration.tokensFile)
        } catch {
            throw ConfigurationError("\(error)")
        }
        if let registry {
            if registry.tokens.isEmpty {
                logger.warning("the tokens file holds no tokens: every /api/v1 call answers 401 until it does (kill -HUP reloads it)")
            }
            logger.info(
                "admin API tokens",
                metadata: [
                    "access.file": "\(configuration.tokensFile ?? "none")", "access.count": "\(registry.tokens.tokens.count)",
                    "access.names": "\(registry.tokens.tokens.map { "\($0.name)(\($0.role.rawValue))" }.joined(separator: ","))",
                ])
        }
    }

    if let text = configuration.certificateKey {
        if case .failure(let error) = CertificateKeyCipher.parse(text) { throw ConfigurationError(error.message) }
    } else {
        logger.warning(
            """
            SWITCHYARD_CERT_KEY is not set: private keys of TLS certificates and routes' HS256 secrets are stored in Redis in plaintext             (anyone who can read Redis can read them). Set it (32 bytes: openssl rand -base64 32) on the controller             and every edge.
            """)
    }

    let library = try Installation.functionLibrary(explicitPath: configuration.functionsPath)
    logger.info("using redis function library", metadata: ["functions.path": "\(library.path)"])

    var redisConfiguration = RedisConfiguration(
        host: configuration.redisHost, port: configuration.redisPort, password: configuration.redisPassword,
        connectTimeout: configuration.redisConnectTimeout, commandTimeout: configuration.redisTimeout,
        poolSize: configuration.redisConnections,
        // reconnect attempts at most a second apart: writes work again about a second after
        // Redis returns, and a refused connect costs Redis nothing
        maxReconnectBackoff: .seconds(1), clientName: "switchyard-controller")
    redisConfiguration.username = configuration.redisUser
    redisConfiguration.sentinel = configuration.redisSentinel
    redisConfiguration.tls = configuration.redisTLS
    redisConfiguration.minReplicasAck = configuration.redisMinReplicasAck
    redisConfiguration.replicaAckTimeout = configuration.redisReplicaAckTimeout
    if configuration.redisMinReplicasAck > 0 {
        // WAIT must end before the command's own timeout does
        redisConfiguration.commandTimeout = max(
            redisConfiguration.commandTimeout, configuration.redisReplicaAckTimeout + .milliseconds(500))
    }
    var redisLogger = logger
    redisLogger[metadataKey: "component"] = "redis"
    let redis = RedisClient(configuration: redisConfiguration, logger: redisLogger, observer: metrics.redisObserver)
    var store = ConfigStore(redis: redis, library: library.source, logger: logger, keys: configuration.keys)
    metrics.serving(group: configuration.keys.group)
    store.deadline = configuration.requestTimeout
    store.regexEngine = configuration.regexEngine.rawValue  // /status names edges whose ngx.re links another engine

    let router = buildRouter(store: store, configuration: configuration, registry: registry, logger: logger)
    var services: [any Service] = [RedisShutdownService(redis: redis)]
    if let registry, registry.file != nil { services.append(TokenReloadService(registry: registry, logger: logger)) }
    if let listen = configuration.metricsListen {
        let versionStore = store
        services.append(
            makeMetricsServer(registry: metrics.registry, listen: listen, logger: logger) {
                // read, not remembered: another controller (or the kube role) writes too
                if let version = try? await versionStore.version() { metrics.configVersion(version) }
            })
    }
    var app = Application(
        responder: MetricsResponder(inner: router.buildResponder(), metrics: metrics),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "switchyard"),
        services: services,
        logger: logger
    )
    let startupStore = store
    let startupLogger = logger
    app.beforeServerStarts {
        // Redis may be down at start: serve anyway (writes answer 503 and the library is
        // loaded again on the first write that finds it missing).
        do {
            try await startupStore.loadLibrary()
            // streams written under the first version's own keys become sy_apply's (once)
            _ = try await startupStore.migrateStreams()
        } catch {
            startupLogger.warning(
                "could not load the redis function library at start; will retry on first write",
                metadata: ["error": "\(error)"])
        }
    }
    return app
}

func buildRouter(store: ConfigStore, configuration: Configuration, registry: TokenRegistry?, logger: Logger) -> Router<BasicRequestContext>
{
    let router = Router(context: BasicRequestContext.self)
    router.add(middleware: JSONErrorMiddleware(logger: logger))

    // no token needed: it says whether Redis answers, never where Redis is or what it said
    // (the reason goes to the log, at most once a minute, and to the authenticated
    // /api/v1/status, which answers 503 naming it)
    let healthLog = RateLimitedLog(interval: .seconds(60))
    router.get("healthz") { _, _ -> Response in
        let problem = await store.ping()
        if let problem, await healthLog.due() {
            logger.warning("healthz: redis does not answer", metadata: ["error": "\(problem)"])
        }
        return jsonResponse(["status": "ok", "redis": .bool(problem == nil)])
    }

    let api = router.group("api/v1")
    // every /api/v1 call: token, role (AccessPolicy), Principal.name, the audit line of writes;
    // then the change request (If-Match, dry run, note), which records Principal.name as who
    api.add(middleware: AccessMiddleware(registry: registry, logger: logger, group: configuration.keys.group))
    api.add(middleware: ChangeRequestMiddleware(store: store))
    HistoryAPI<BasicRequestContext>(store: store, maxBodySize: configuration.maxBodySize, logger: logger).addRoutes(to: api)
    TokensAPI<BasicRequestContext>(
        registry: registry, maxBodySize: configuration.maxBodySize, logger: logger, group: configuration.keys.group
    ).addRoutes(to: api)
    OpenAPI.addRoutes(to: api)  // docs/openapi.yaml; OpenAPITests keeps it in step with this router
    let cipher = configuration.certificateKey.flatMap { try? CertificateKeyCipher.parse($0).get() }
    AdminAPI<BasicRequestContext>(
        store: store, validator: configuration.validator, maxBodySize: configuration.maxBodySize, logger: logger, cipher: cipher
    ).addRoutes(to: api)
    CertificatesAPI<BasicRequestContext>(store: store, cipher: cipher, maxBodySize: configuration.maxBodySize, logger: logger)
        .addRoutes(to: api)
    StreamsAPI<BasicRequestContext>(store: store, maxBodySize: configuration.maxBodySize, logger: logger).addRoutes(to: api)
    addStatusRoutes(to: router, api: api, store: store, configuration: configuration, logger: logger)
    return router
}

/// Says whether a repeated message is due again: at most once per `interval`.
actor RateLimitedLog {
    let interval: Duration
    private var last: ContinuousClock.Instant?

    init(interval: Duration) { self.interval = interval }

    func due() -> Bool {
        let now = ContinuousClock.now
        if let last, now - last < interval { return false }
        last = now
        return true
    }
}

/// Closes the Redis pool after the server has drained (services stop in reverse order).
struct RedisShutdownService: Service {
    let redis: RedisClient

    func run() async throws {
        try? await gracefulShutdown()
        await redis.close()
    }
}
