// The one error type of the controller's domain layer; AdminAPI maps it to HTTP at the edge.

import SwitchyardCore
import SwitchyardRedis

public struct StoreError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Redis could not be reached or did not answer in time.
        case unavailable
        /// sy_apply refused the write (see `apply`).
        case rejected
        /// The object does not exist.
        case notFound
        /// Optimistic concurrency gave up after too many conflicting writers.
        case conflict
        /// A stored document cannot be decoded.
        case corrupt
        /// Redis answered something this controller does not expect.
        case unexpected
        /// Redis no longer holds the configuration history this controller wrote (flushed,
        /// restarted without its data): restore it, or re-seed (POST /api/v1/reseed).
        case dataLost
        /// Not an error: a dry run stopped before writing; `report` describes the change.
        case dryRun
    }

    public var code: Code
    public var message: String
    /// The Function's error, for `.rejected`.
    public var apply: ApplyError?
    public var underlying: (any Error & Sendable)?
    /// `.dryRun`: the report answered instead of writing.
    public var report: JSONValue?

    public init(
        _ code: Code, _ message: String, apply: ApplyError? = nil, underlying: (any Error & Sendable)? = nil, report: JSONValue? = nil
    ) {
        self.code = code
        self.message = message
        self.apply = apply
        self.underlying = underlying
        self.report = report
    }

    static func from(_ error: RedisError) -> StoreError {
        if error.isUnavailable { return StoreError(.unavailable, "redis unavailable: \(error.message)", underlying: error) }
        return StoreError(.unexpected, "redis error: \(error.message)", underlying: error)
    }

    public var description: String {
        if let underlying { return "\(code.rawValue): \(message) (\(underlying))" }
        return "\(code.rawValue): \(message)"
    }
}

/// The JSON members of an `SYERR {json}` reply (every code, also those `ApplyError` keeps
/// as `.other`): the Function names keys, owners, epochs and edges there.
struct FunctionRefusal: Sendable {
    var code: String
    var json: JSONValue

    init?(_ error: ApplyError?) {
        guard case .other(let code, let raw)? = error else { return nil }
        self.init(code: code, raw: raw)
    }

    init?(code: String, raw: String) {
        guard let start = raw.range(of: "SYERR ") else { return nil }
        guard let json = try? JSONValue.parse(String(raw[start.upperBound...])) else { return nil }
        self.code = code
        self.json = json
    }

    func string(_ key: String) -> String? {
        if case .string(let s)? = json[key] { return s }
        return nil
    }

    func integer(_ key: String) -> Int64? {
        switch json[key] {
        case .integer(let v)?: return v
        case .number(let text)?: return Double(text).map { Int64($0) }
        default: return nil
        }
    }
}
