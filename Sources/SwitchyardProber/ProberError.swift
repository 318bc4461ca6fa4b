// The one error type of SwitchyardProber.

import SwitchyardRedis

public struct ProberError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// libcurl, or the probe sockets' epoll instance, could not be set up.
        case curl
        /// Redis could not be reached or did not answer in time.
        case unavailable
        /// Another prober holds the lease (a write was refused).
        case notLeader
        /// Redis answered something unexpected (an error reply, a missing Function).
        case unexpected
    }

    public var code: Code
    public var message: String
    public var underlying: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    static func from(_ error: RedisError) -> ProberError {
        ProberError(error.isUnavailable ? .unavailable : .unexpected, "redis: \(error.message)", underlying: error)
    }

    public var description: String {
        if let underlying { return "\(code.rawValue): \(message) (\(underlying))" }
        return "\(code.rawValue): \(message)"
    }
}
