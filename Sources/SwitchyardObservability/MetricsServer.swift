// The /metrics listener of a Swift role (`--metrics-listen`): a separate small Hummingbird
// server, loopback by default, without a token. It is separate from the admin API on
// purpose: scrapers get no admin token, and the admin API stays token-only. It runs on
// SwiftNIO's event loops, never on the prober's probe thread.

import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// Where /metrics is served.
public struct MetricsListen: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// Given by the operator: failing to listen stops the process. The built-in default
    /// only warns (a second controller on one machine still runs, without metrics).
    public var explicit: Bool

    public init(host: String, port: Int, explicit: Bool = true) {
        self.host = host
        self.port = port
        self.explicit = explicit
    }
}

/// The /metrics server as a Service. `refresh` runs before every scrape (to set gauges that
/// are read, not counted: the configuration version, heartbeat age, endpoints by state).
public func makeMetricsServer(
    registry: MetricsRegistry, listen: MetricsListen, logger: Logger,
    refresh: @escaping @Sendable () async -> Void = {}
) -> some Service {
    let router = Router(context: BasicRequestContext.self)
    router.get("metrics") { _, _ -> Response in
        await refresh()
        var headers = HTTPFields()
        headers[.contentType] = MetricsRegistry.contentType
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: registry.exposition())))
    }
    var serverLogger = logger
    serverLogger[metadataKey: "component"] = "metrics"
    let announce = serverLogger
    let app = Application(
        router: router,
        configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "switchyard-metrics"),
        onServerRunning: { channel in
            announce.info("serving metrics", metadata: ["metrics.address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
        },
        logger: serverLogger)
    return MetricsService(app: app, listen: listen, logger: serverLogger)
}

struct MetricsService<App: ApplicationProtocol>: Service, CustomStringConvertible {
    var description: String { "MetricsServer" }

    let app: App
    let listen: MetricsListen
    let logger: Logger

    func run() async throws {
        do {
            try await app.run()
        } catch  where !listen.explicit {
            logger.warning(
                "cannot serve metrics on the default address; running without (set --metrics-listen)",
                metadata: ["metrics.address": "\(listen.host):\(listen.port)", "error": "\(error)"])
            try? await gracefulShutdown()
        }
    }
}
