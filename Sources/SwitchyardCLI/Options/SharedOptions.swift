// Options more than one command takes, declared once so that their names, defaults, help
// and environment fall-backs cannot drift apart: where Redis is (every command), its
// password (controller, prober), the log level and format of the Swift processes (controller,
// prober, kube; the edge's --log-level is nginx's own) and where metrics are served.

import ArgumentParser
import Logging
import SwitchyardCore
import SwitchyardObservability

/// `--redis host:port`.
struct RedisAddressOptions: ParsableArguments {
    @Option(help: "Redis host:port.")
    var redis: String = "127.0.0.1:6380"

    /// The host and port, or an error naming --redis.
    func endpoint() throws -> (host: String, port: Int) {
        do {
            return try HostPort.parse(redis)
        } catch {
            throw ValidationError("--redis \(error)")
        }
    }
}

/// `--redis` and `--redis-password` (falling back to $SWITCHYARD_REDIS_PASSWORD).
struct RedisOptions: ParsableArguments {
    @OptionGroup var address: RedisAddressOptions

    @Option(help: "Redis password (prefer $SWITCHYARD_REDIS_PASSWORD: flags are visible in ps).")
    var redisPassword: String?

    static let passwordVariable = "SWITCHYARD_REDIS_PASSWORD"

    /// The flag's password, else the environment's; empty counts as none. `environment`
    /// looks a variable up (the controller's lookup ignores case, as Hummingbird's does).
    func password(environment: (String) -> String?) -> String? {
        [redisPassword, environment(Self.passwordVariable)].compactMap { $0 }.first { !$0.isEmpty }
    }
}

/// `--log-level` and `--log-format` of the Swift roles (controller, prober, kube), and the
/// stderr logging they set up: swift-log's text lines, or JSON lines (JSONLogHandler: time,
/// level, label, message and the dotted metadata keys; secret-named keys are redacted).
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: ArgumentHelp("Log line format on stderr: text or json (one JSON object per line).", valueName: "text|json"))
    var logFormat: String = LogFormat.text.rawValue

    func validate() throws {
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("unknown log level '\(logLevel)'") }
        if LogFormat(rawValue: logFormat) == nil { throw ValidationError("--log-format must be text or json, not '\(logFormat)'") }
    }

    var level: Logger.Level { Logger.Level(rawValue: logLevel) ?? .info }

    var format: LogFormat { LogFormat(rawValue: logFormat) ?? .text }

    /// Every logger of the process writes to stderr at `level`, in `format`.
    func bootstrap() {
        let level = level
        switch format {
        case .text:
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        case .json:
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}

/// `--metrics-listen host:port` of the controller and the prober (GET /metrics, no token).
struct MetricsOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Where to serve Prometheus metrics (GET /metrics, no token): host:port, [ipv6]:port or port; 'off' disables.",
            valueName: "host:port|off"))
    var metricsListen: String?

    /// The listener, `defaultPort` on 127.0.0.1 unless given; nil when 'off'.
    func listen(defaultPort: Int) throws -> MetricsListen? {
        guard let metricsListen else { return MetricsListen(host: "127.0.0.1", port: defaultPort, explicit: false) }
        if metricsListen == "off" { return nil }
        do {
            let (host, port) = try HostPort.parse(metricsListen, defaultHost: "127.0.0.1")
            return MetricsListen(host: host, port: port)
        } catch {
            throw ValidationError("--metrics-listen \(error)")
        }
    }
}
