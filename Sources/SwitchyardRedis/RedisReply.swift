// Redis replies, errors and settings as Swift values.

/// One RESP2 reply.
public enum RedisReply: Sendable, Hashable {
    case status(String)
    /// An error reply (`-ERR ...`), as a value: the command ran and Redis said no.
    case error(String)
    case integer(Int64)
    /// A bulk string, binary-safe.
    case string([UInt8])
    case array([RedisReply])
    case null

    /// The bulk string as UTF-8 text (nil for other replies or invalid UTF-8).
    public var text: String? {
        switch self {
        case .string(let bytes): return String(validating: bytes, as: UTF8.self)
        case .status(let s): return s
        default: return nil
        }
    }

    public var bytes: [UInt8]? {
        if case .string(let b) = self { return b }
        return nil
    }

    public var integer: Int64? {
        switch self {
        case .integer(let v): return v
        case .string(let b): return Int64(String(decoding: b, as: UTF8.self))
        default: return nil
        }
    }

    public var array: [RedisReply]? {
        if case .array(let items) = self { return items }
        return nil
    }

    /// Throws `.errorReply` for an error reply; returns the reply otherwise.
    @discardableResult
    public func throwingErrorReply() throws(RedisError) -> RedisReply {
        if case .error(let message) = self { throw RedisError(.errorReply, message) }
        return self
    }
}

/// The one error type of SwitchyardRedis.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// Could not connect (refused, unreachable, DNS); or waiting out a reconnect backoff.
        case connectionFailed
        /// A connect or command did not finish within its timeout.
        case timeout
        /// The connection broke during a command (closed, reset, protocol error).
        case connectionLost
        /// AUTH was refused or required.
        case authenticationFailed
        /// Redis answered with an error reply (see `message`).
        case errorReply
        /// A reply of an unexpected shape.
        case unexpectedReply
        /// The client was closed.
        case closed
        /// A write the master applied but fewer replicas than `minReplicasAck` acknowledged
        /// in time (`RedisClient.write`).
        case notReplicated
        /// The server answered READONLY: it is a replica now (a demoted master); the command
        /// was not executed.
        case readOnlyReplica
        /// The server refused to run commands now (NOREPLICAS: min-replicas-to-write is not
        /// met; MASTERDOWN: a replica lost its master; LOADING): nothing was executed.
        case refusedNow
    }

    public var code: Code
    public var message: String
    public var underlying: (any Error & Sendable)?
    /// The command may have reached Redis before the failure (a timeout or broken
    /// connection while waiting for the reply): a write may still be applied. False when it
    /// was certainly never sent (no connection, reconnect backoff, queue timeout).
    public var maybeExecuted: Bool = false

    public init(_ code: Code, _ message: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    /// True when Redis could not be reached or did not answer in time (as opposed to
    /// answering with an error): callers map this to "unavailable".
    public var isUnavailable: Bool {
        switch code {
        case .connectionFailed, .timeout, .connectionLost, .authenticationFailed, .closed, .notReplicated, .readOnlyReplica, .refusedNow:
            return true
        case .errorReply, .unexpectedReply: return false
        }
    }

    public var description: String {
        if let underlying { return "redis \(code.rawValue): \(message) (\(underlying))" }
        return "redis \(code.rawValue): \(message)"
    }
}

/// How to reach Redis and how patient to be.
public struct RedisConfiguration: Sendable {
    /// Host name or IP address of the Redis server.
    public var host: String = "127.0.0.1"
    /// TCP port of the Redis server.
    public var port: Int = 6380
    /// Password for AUTH; nil when Redis needs none. Never logged.
    public var password: String? = nil
    /// ACL user for AUTH (Redis 6+); nil for the default user.
    public var username: String? = nil
    /// Limit for establishing a connection (TCP connect and AUTH).
    public var connectTimeout: Duration = .seconds(1)
    /// Limit for one command or pipeline, including the wait for a free connection.
    public var commandTimeout: Duration = .seconds(2)
    /// Connections in the client's pool.
    public var poolSize: Int = 4
    /// First reconnect delay after a failure; doubles per failure, with jitter.
    public var reconnectBackoff: Duration = .milliseconds(100)
    /// Upper bound of the reconnect delay.
    public var maxReconnectBackoff: Duration = .seconds(5)
    /// CLIENT SETNAME on every connection, so operators can tell who is connected.
    public var clientName: String? = nil
    /// Find the master through these sentinels instead of `host`/`port` (which are then
    /// unused); every connection is checked to be the master (docs/redis-ha.md).
    public var sentinel: RedisSentinelConfiguration? = nil
    /// Replicas that must acknowledge a write (`RedisClient.write`, Redis `WAIT`) before it
    /// counts as done; 0: the master's reply is enough.
    public var minReplicasAck: Int = 0
    /// How long `RedisClient.write` waits for them (below `commandTimeout`).
    public var replicaAckTimeout: Duration = .milliseconds(500)
    /// TLS to Redis, and to the sentinels when `sentinel` is set (`--redis-tls`); nil: plain TCP.
    public var tls: RedisTLSConfiguration? = nil

    public init(
        host: String = "127.0.0.1", port: Int = 6380, password: String? = nil, username: String? = nil,
        connectTimeout: Duration = .seconds(1), commandTimeout: Duration = .seconds(2), poolSize: Int = 4,
        reconnectBackoff: Duration = .milliseconds(100), maxReconnectBackoff: Duration = .seconds(5),
        clientName: String? = nil
    ) {
        self.host = host
        self.port = port
        self.password = password
        self.username = username
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.poolSize = poolSize
        self.reconnectBackoff = reconnectBackoff
        self.maxReconnectBackoff = maxReconnectBackoff
        self.clientName = clientName
    }
}

extension RedisConfiguration: CustomStringConvertible {
    /// Never shows the password.
    public var description: String {
        "RedisConfiguration(\(sentinel.map(\.description) ?? "\(host):\(port)"), password: \(password == nil ? "none" : "<redacted>"), "
            + "connectTimeout: \(connectTimeout), commandTimeout: \(commandTimeout), poolSize: \(poolSize)"
            + "\(tls.map { ", \($0)" } ?? ""))"
    }
}

extension RedisConfiguration: CustomReflectable {
    /// `dump()` and debuggers see the password redacted too.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "host": host, "port": port, "password": password == nil ? "none" : "<redacted>",
                "connectTimeout": connectTimeout, "commandTimeout": commandTimeout, "poolSize": poolSize,
            ])
    }
}

/// Exponential backoff with jitter: attempt n waits a random time in
/// [d/2, d] where d = min(max, initial * 2^n). Pure; the caller sleeps.
public struct Backoff: Sendable {
    public var initial: Duration
    public var maximum: Duration

    public init(initial: Duration, maximum: Duration) {
        self.initial = initial
        self.maximum = maximum
    }

    public func delay(afterFailures failures: Int, random: Double = Double.random(in: 0...1)) -> Duration {
        let exponent = min(max(failures - 1, 0), 30)
        let ceiling = min(maximum, initial * (1 << exponent))
        return ceiling * (0.5 + 0.5 * random)
    }
}
