// Options more than one command takes, declared once so that their names, defaults, help
// and environment fall-backs cannot drift apart: where Redis is (every command), its
// password (controller, prober), the log level and format of the Swift processes (controller,
// prober, kube; the edge's --log-level is nginx's own) and where metrics are served.

import ArgumentParser
import Foundation
import Logging
import SwitchyardCore
import SwitchyardObservability
import SwitchyardRedis

/// Where Redis is: `--redis host:port`, or `--redis-sentinel host:port[,...] --redis-master
/// NAME` (docs/redis-ha.md); `--redis-user`, the ACL user (every role, the edge too); and
/// `--group`, which configuration in that Redis the role serves (redis/README.md, "Groups").
struct RedisAddressOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The group: one independent configuration in this Redis, keys switchyard:{NAME}:... (a-z 0-9 _ -, 1-48 characters). "
                + "The default group's keys are switchyard:{cfg}:..., as before groups.",
            valueName: "name"))
    var group: String = KeySchema.defaultGroup

    @Option(help: "Redis host:port (unused with --redis-sentinel).")
    var redis: String = "127.0.0.1:6380"

    @Option(
        help: ArgumentHelp(
            "Redis Sentinel addresses: find the master through them instead of --redis (needs --redis-master).",
            valueName: "host:port[,host:port...]"))
    var redisSentinel: String?

    @Option(help: ArgumentHelp("The master's name at the sentinels (sentinel monitor NAME ...).", valueName: "name"))
    var redisMaster: String?

    @Option(help: "Redis ACL user (default, or empty: the default user); its password from $SWITCHYARD_REDIS_PASSWORD.")
    var redisUser: String?

    @Flag(help: "Connect to Redis (and the sentinels) over TLS; the certificate is verified (docs/redis-ha.md).")
    var redisTls = false

    @Option(help: ArgumentHelp("PEM CA bundle to verify Redis's certificate with (default: the system's).", valueName: "file"))
    var redisTlsCa: String?

    @Option(help: ArgumentHelp("PEM client certificate to present to Redis (tls-auth-clients).", valueName: "file"))
    var redisTlsCert: String?

    @Option(help: ArgumentHelp("PEM private key of --redis-tls-cert.", valueName: "file"))
    var redisTlsKey: String?

    @Option(
        help: ArgumentHelp(
            "Name Redis's certificate must carry, sent as SNI (default: the Redis host; an IP address must be in the certificate).",
            valueName: "name"))
    var redisTlsServerName: String?

    /// The ACL user; nil for the default user (none given, or empty: a unit file's unset
    /// variable).
    var user: String? { redisUser.flatMap { $0.isEmpty ? nil : $0 } }

    /// The sentinels' own password, when they have one (sentinel.conf requirepass).
    static let sentinelPasswordVariable = "SWITCHYARD_REDIS_SENTINEL_PASSWORD"

    /// The group's keys (`--group`).
    var keys: KeySchema {
        get throws {
            do { return try KeySchema(group: group) } catch { throw ValidationError("--group: \(error.message)") }
        }
    }

    func validate() throws {
        _ = try keys
        if (redisSentinel == nil) != (redisMaster == nil) {
            throw ValidationError("--redis-sentinel and --redis-master go together")
        }
        _ = try sentinels()
        if let redisMaster, redisMaster.isEmpty || redisMaster.contains(where: { $0 == " " || $0.isNewline }) {
            throw ValidationError("--redis-master must be a name without spaces")
        }
        if let redisUser, redisUser.contains(where: { $0 == " " || $0.isNewline }) {
            throw ValidationError("--redis-user must be a name without spaces")
        }
        try validateTLS()
    }

    func validateTLS() throws {
        let given = [("--redis-tls-ca", redisTlsCa), ("--redis-tls-cert", redisTlsCert), ("--redis-tls-key", redisTlsKey)]
        if !redisTls, let hit = (given + [("--redis-tls-server-name", redisTlsServerName)]).first(where: { $0.1 != nil }) {
            throw ValidationError("\(hit.0) needs --redis-tls")
        }
        if (redisTlsCert == nil) != (redisTlsKey == nil) {
            throw ValidationError("--redis-tls-cert and --redis-tls-key go together")
        }
        for case (let flag, let path?) in given where !FileManager.default.isReadableFile(atPath: path) {
            throw ValidationError("\(flag) \(path): not a readable file")
        }
        if let name = redisTlsServerName, name.isEmpty || name.contains(where: { $0 == " " || $0.isNewline || $0 == "]" }) {
            throw ValidationError("--redis-tls-server-name must be a host name")
        }
    }

    /// TLS to Redis (nil without --redis-tls), file paths made absolute (the edge's nginx
    /// runs elsewhere).
    var tls: RedisTLSConfiguration? {
        guard redisTls else { return nil }
        func absolute(_ path: String?) -> String? {
            guard let path else { return nil }
            if path.hasPrefix("/") { return path }
            return URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
                .standardizedFileURL.path
        }
        return RedisTLSConfiguration(
            caFile: absolute(redisTlsCa), certificateFile: absolute(redisTlsCert), keyFile: absolute(redisTlsKey),
            serverName: redisTlsServerName)
    }

    /// The host and port, or an error naming --redis.
    func endpoint() throws -> (host: String, port: Int) {
        do {
            return try HostPort.parse(redis)
        } catch {
            throw ValidationError("--redis \(error)")
        }
    }

    /// The sentinels' addresses (empty without --redis-sentinel), or an error naming the flag.
    func sentinels() throws -> [RedisAddress] {
        guard let redisSentinel else { return [] }
        var out: [RedisAddress] = []
        for part in redisSentinel.split(separator: ",", omittingEmptySubsequences: false) {
            do {
                let (host, port) = try HostPort.parse(part.trimmingCharacters(in: .whitespaces))
                out.append(RedisAddress(host: host, port: port))
            } catch {
                throw ValidationError("--redis-sentinel \(error)")
            }
        }
        if out.isEmpty { throw ValidationError("--redis-sentinel needs at least one host:port") }
        return out
    }

    /// The sentinel configuration (nil without --redis-sentinel).
    func sentinel(environment: (String) -> String?) throws -> RedisSentinelConfiguration? {
        guard let redisMaster, redisSentinel != nil else { return nil }
        let password = environment(Self.sentinelPasswordVariable).flatMap { $0.isEmpty ? nil : $0 }
        return RedisSentinelConfiguration(sentinels: try sentinels(), masterName: redisMaster, password: password)
    }

    /// For logs: the address, or the sentinels and the master's name.
    var summary: String {
        let scheme = redisTls ? " (tls)" : ""
        let inGroup = group == KeySchema.defaultGroup ? "" : " group \(group)"
        if let redisSentinel, let redisMaster { return "sentinel \(redisMaster) at \(redisSentinel)\(scheme)\(inGroup)" }
        return redis + scheme + inGroup
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

    /// Address, sentinels, user and password into `configuration`.
    func configure(_ configuration: inout RedisConfiguration, environment: (String) -> String?) throws {
        (configuration.host, configuration.port) = try address.endpoint()
        configuration.sentinel = try address.sentinel(environment: environment)
        configuration.username = address.user
        configuration.password = password(environment: environment)
        configuration.tls = address.tls
    }
}

/// `--redis-min-replicas-ack N` and `--redis-ack-timeout-ms` of the writers (controller,
/// kube): how many replicas must have a configuration write before it is acknowledged.
struct RedisDurabilityOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Replicas that must acknowledge a configuration write (Redis WAIT) before the API answers 2xx; "
                + "fewer in time: 503 (docs/redis-ha.md). 0: the master's reply is enough.", valueName: "n"))
    var redisMinReplicasAck: Int = 0

    @Option(help: ArgumentHelp("How long a write waits for those replicas, in ms.", valueName: "ms"))
    var redisAckTimeoutMs: Int = 500

    func validate() throws {
        if !(0...16).contains(redisMinReplicasAck) { throw ValidationError("--redis-min-replicas-ack must be 0-16") }
        if !(1...10_000).contains(redisAckTimeoutMs) { throw ValidationError("--redis-ack-timeout-ms must be 1-10000") }
    }

    func configure(_ configuration: inout RedisConfiguration) {
        configuration.minReplicasAck = redisMinReplicasAck
        configuration.replicaAckTimeout = .milliseconds(redisAckTimeoutMs)
        // WAIT must end before the command's own timeout does
        let needed = configuration.replicaAckTimeout + .milliseconds(500)
        if configuration.commandTimeout < needed { configuration.commandTimeout = needed }
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
