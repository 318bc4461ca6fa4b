// Options more than one command takes, declared once so that their names, defaults, help
// and environment fall-backs cannot drift apart: where Redis is (every command), its
// password (controller, prober) and the log level of the Swift processes (controller,
// prober; the edge's --log-level is nginx's own).

import ArgumentParser
import Logging
import SwitchyardCore

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

/// `--log-level` of the controller and the prober, and the stderr logging they set up.
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("unknown log level '\(logLevel)'") }
    }

    var level: Logger.Level { Logger.Level(rawValue: logLevel) ?? .info }

    /// Every logger of the process writes to stderr at `level`.
    func bootstrap() {
        let level = level
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
