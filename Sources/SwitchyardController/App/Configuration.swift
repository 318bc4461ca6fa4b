// Settings of the controller, with defaults that are safe on a developer machine.

import Logging
import SwitchyardCore
import SwitchyardObservability
import SwitchyardRedis

public struct Configuration: Sendable {
    /// Address the admin API binds to; loopback by default because the API can rewrite all routing.
    public var host: String
    /// TCP port of the admin API.
    public var port: Int
    /// Redis host holding the configuration.
    public var redisHost: String
    /// Redis port (the project's Redis listens on 6380).
    public var redisPort: Int
    /// Redis AUTH password; nil when Redis needs none. Never logged.
    public var redisPassword: String?
    /// Redis ACL user (nil: the default user).
    public var redisUser: String? = nil
    /// Find the master through these sentinels instead of redisHost/redisPort.
    public var redisSentinel: RedisSentinelConfiguration? = nil
    /// TLS to Redis and the sentinels (--redis-tls ...); nil: plain TCP.
    public var redisTLS: RedisTLSConfiguration? = nil
    /// The group this controller serves (`--group`): its keys are `switchyard:{<group>}:...`;
    /// tokens limited to other groups are refused (403).
    public var keys: KeySchema = .default
    /// Replicas that must acknowledge a configuration write before it is answered 2xx.
    public var redisMinReplicasAck: Int = 0
    public var redisReplicaAckTimeout: Duration = .milliseconds(500)
    /// Bearer token required on /api/v1; nil disables auth (loopback only, unless `allowInsecureNoToken`).
    public var adminToken: String?
    /// `--tokens-file`: named tokens with roles, stored hashed (YAML or JSON; AccessTokens.swift),
    /// read at start and again on SIGHUP. nil: only `adminToken` (if any).
    public var tokensFile: String?
    /// Allow serving a non-loopback address without a token (`--insecure-no-token`).
    public var allowInsecureNoToken: Bool
    /// Budget of one request's Redis work, retries of optimistic writes included.
    public var requestTimeout: Duration
    /// Limit for one Redis command (and for the wait for a free connection).
    public var redisTimeout: Duration
    /// Limit for connecting to Redis.
    public var redisConnectTimeout: Duration
    /// Redis connections in the pool.
    public var redisConnections: Int
    /// Path of redis/switchyard.lua; nil finds it (SWITCHYARD_HOME, next to the executable, ...).
    public var functionsPath: String?
    /// Largest accepted request body, in bytes.
    public var maxBodySize: Int
    /// Log level of the controller's logger.
    public var logLevel: Logger.Level
    /// `SWITCHYARD_CERT_KEY`: 32 bytes (64 hex digits or base64) that encrypt certificate
    /// private keys in Redis (AES-256-GCM); the edges need the same value. nil stores keys
    /// in plaintext (with a warning at start). Never logged.
    public var certificateKey: String?
    /// The regex library the edges' `ngx.re` links, which the controller compiles route and
    /// rewrite regexes with (`--regex-engine`): PCRE1 for Debian 12's nginx lua module (the
    /// default), PCRE2 for OpenResty and Debian 13.
    public var regexEngine: RegexEngine
    /// Accept link-local endpoints (169.254.0.0/16, fe80::/10), where cloud metadata
    /// services answer (`--allow-link-local-endpoints`); refused by default.
    public var allowLinkLocalEndpoints: Bool
    /// Where GET /metrics is served without a token (`--metrics-listen`, 127.0.0.1:9181 by
    /// default from the command line); nil serves none.
    public var metricsListen: MetricsListen?

    public init(
        host: String = "127.0.0.1",
        port: Int = 9180,
        redisHost: String = "127.0.0.1",
        redisPort: Int = 6380,
        redisPassword: String? = nil,
        adminToken: String? = nil,
        tokensFile: String? = nil,
        allowInsecureNoToken: Bool = false,
        requestTimeout: Duration = .seconds(10),
        redisTimeout: Duration = .seconds(2),
        redisConnectTimeout: Duration = .seconds(1),
        redisConnections: Int = 4,
        functionsPath: String? = nil,
        maxBodySize: Int = 16 << 20,
        logLevel: Logger.Level = .info,
        certificateKey: String? = nil,
        regexEngine: RegexEngine = .pcre1,
        allowLinkLocalEndpoints: Bool = false,
        metricsListen: MetricsListen? = nil
    ) {
        self.host = host
        self.port = port
        self.redisHost = redisHost
        self.redisPort = redisPort
        self.redisPassword = redisPassword
        self.adminToken = adminToken
        self.tokensFile = tokensFile
        self.allowInsecureNoToken = allowInsecureNoToken
        self.requestTimeout = requestTimeout
        self.redisTimeout = redisTimeout
        self.redisConnectTimeout = redisConnectTimeout
        self.redisConnections = redisConnections
        self.functionsPath = functionsPath
        self.maxBodySize = maxBodySize
        self.logLevel = logLevel
        self.certificateKey = certificateKey
        self.regexEngine = regexEngine
        self.allowLinkLocalEndpoints = allowLinkLocalEndpoints
        self.metricsListen = metricsListen
    }

    /// The validator of admin API requests these settings ask for.
    public var validator: Validator {
        Validator(regex: regexEngine.checker, allowLinkLocalEndpoints: allowLinkLocalEndpoints)
    }

    /// Whether `host` only accepts connections from this machine.
    public var bindsLoopbackOnly: Bool {
        let h = host.lowercased()
        return h == "localhost" || h == "::1" || h == "[::1]" || h.hasPrefix("127.")
    }
}

extension Configuration: CustomStringConvertible, CustomReflectable {
    /// Safe to log: the token and the Redis password are redacted.
    public var description: String {
        func redacted(_ set: Bool) -> String { set ? "<redacted>" : "none" }
        let secrets =
            "redisPassword: \(redacted(redisPassword != nil)), adminToken: \(redacted(adminToken != nil)), "
            + "certificateKey: \(redacted(certificateKey != nil))"
        let tokens = "tokensFile: \(tokensFile ?? "none"), "
        let contract = tokens + "regexEngine: \(regexEngine.rawValue), allowLinkLocalEndpoints: \(allowLinkLocalEndpoints)"
        return "Configuration(listen: \(host):\(port), redis: \(redisHost):\(redisPort), group: \(keys.group), \(secrets), \(contract))"
    }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "host": host, "port": port, "redisHost": redisHost, "redisPort": redisPort, "group": keys.group,
                "redisPassword": redisPassword == nil ? "none" : "<redacted>", "adminToken": adminToken == nil ? "none" : "<redacted>",
                "certificateKey": certificateKey == nil ? "none" : "<redacted>", "tokensFile": tokensFile ?? "none",
                "regexEngine": regexEngine.rawValue,
                "allowLinkLocalEndpoints": allowLinkLocalEndpoints,
            ])
    }
}

/// The configuration cannot work (e.g. a public bind without a token, no Function library).
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
