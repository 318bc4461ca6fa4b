// How an upstream's endpoints are judged: the active health check the prober runs, the
// passive limits the edges apply to real traffic, retries, and what to do when every
// endpoint is down. Parsed here once, with the same rules for request bodies (strict:
// unknown fields are problems) and stored documents (lenient: unknown fields ignored,
// so a newer controller's additions do not break an older reader).

/// An active health check: what the prober sends to every endpoint of the upstream.
public struct HealthCheck: Sendable, Hashable {
    public enum Kind: String, Sendable, CaseIterable {
        /// GET `path` over HTTP/1.1; healthy when the status is in `expectStatus`.
        case http
        /// The same over TLS. Certificates are not verified (endpoints are addressed by IP).
        case https
        /// Healthy when a TCP connection is accepted.
        case tcp
    }

    public var type: Kind
    /// Path (and optional query) requested by http/https checks.
    public var path: String
    /// Host header (and TLS SNI) of http/https checks; nil sends the endpoint's address.
    public var host: String?
    /// Port to probe instead of the endpoint's own (a separate management port); nil = the endpoint's.
    public var port: UInt16?
    /// Time between the starts of two probes of one endpoint.
    public var intervalMs: Int
    /// Hard limit of one probe (connect included); always less than `intervalMs`.
    public var timeoutMs: Int
    /// Consecutive successes that make an endpoint up.
    public var rise: Int
    /// Consecutive failures that make an endpoint down.
    public var fall: Int
    /// Status codes counted as healthy (http/https only).
    public var expectStatus: [StatusRange]

    public init(
        type: Kind = .http, path: String = HealthCheck.defaultPath, host: String? = nil, port: UInt16? = nil,
        intervalMs: Int = HealthCheck.defaultIntervalMs, timeoutMs: Int? = nil, rise: Int = HealthCheck.defaultRise,
        fall: Int = HealthCheck.defaultFall, expectStatus: [StatusRange] = HealthCheck.defaultExpectStatus
    ) {
        self.type = type
        self.path = path
        self.host = host
        self.port = port
        self.intervalMs = intervalMs
        self.timeoutMs = timeoutMs ?? HealthCheck.defaultTimeout(intervalMs: intervalMs)
        self.rise = rise
        self.fall = fall
        self.expectStatus = expectStatus
    }

    public static let defaultPath = "/"
    public static let defaultIntervalMs = 1000
    public static let defaultRise = 2
    public static let defaultFall = 3
    public static let defaultExpectStatus = [StatusRange(200, 399)]
    public static let intervalRange = 100...3_600_000
    public static let timeoutRange = 10...60_000
    public static let riseFallRange = 1...10
    public static let maxStatusRanges = 32

    /// Half the interval, at most 1 s: 500 ms for the default 1 s interval.
    public static func defaultTimeout(intervalMs: Int) -> Int {
        max(timeoutRange.lowerBound, min(1000, intervalMs / 2))
    }

    /// Whether `code` is a healthy answer.
    public func accepts(status code: Int) -> Bool { expectStatus.contains { $0.contains(code) } }

    /// The canonical JSON object: every field with its effective value.
    public var document: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("type", .string(type.rawValue)), ("interval_ms", .integer(Int64(intervalMs))),
            ("timeout_ms", .integer(Int64(timeoutMs))), ("rise", .integer(Int64(rise))), ("fall", .integer(Int64(fall))),
        ]
        if type != .tcp {
            members.append(("path", .string(path)))
            members.append(("expect_status", .array(expectStatus.map { .string($0.description) })))
            if let host { members.append(("host", .string(host))) }
        }
        if let port { members.append(("port", .integer(Int64(port)))) }
        return .object(members)
    }
}

/// A range of HTTP status codes, written `"200"` or `"200-399"`.
public struct StatusRange: Sendable, Hashable, CustomStringConvertible {
    public var lower: Int
    public var upper: Int

    public init(_ lower: Int, _ upper: Int) {
        self.lower = lower
        self.upper = upper
    }

    public static let codes = 100...599

    public func contains(_ code: Int) -> Bool { code >= lower && code <= upper }

    public var description: String { lower == upper ? "\(lower)" : "\(lower)-\(upper)" }

    /// Parses `"200"` or `"200-399"`; the message says what is wrong.
    public static func parse(_ text: String) -> Result<StatusRange, StatusRangeError> {
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        func code(_ part: Substring) -> Int? {
            guard part.utf8.count == 3, part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            return Int(part)
        }
        guard let lower = code(parts[0]), parts.count == 1 || code(parts[1]) != nil else {
            return .failure(.init("'\(text)' is not a status code or range (e.g. \"200\" or \"200-399\")"))
        }
        let upper = parts.count == 2 ? code(parts[1])! : lower
        guard codes.contains(lower), codes.contains(upper) else {
            return .failure(.init("'\(text)': status codes must be within \(codes.lowerBound)-\(codes.upperBound)"))
        }
        guard lower <= upper else { return .failure(.init("'\(text)': the range must not be reversed")) }
        return .success(StatusRange(lower, upper))
    }
}

public struct StatusRangeError: Error, Sendable, Equatable {
    public var message: String
    init(_ message: String) { self.message = message }
}

/// Passive health: how the edges judge endpoints by the traffic they send (nginx's
/// `max_fails`/`fail_timeout`): `maxFails` failed attempts within `failTimeoutMs` take an
/// endpoint out of rotation for `failTimeoutMs`. `maxFails` 0 turns passive marking off.
public struct PassiveHealth: Sendable, Hashable {
    public var maxFails: Int
    public var failTimeoutMs: Int

    public init(maxFails: Int = PassiveHealth.defaultMaxFails, failTimeoutMs: Int = PassiveHealth.defaultFailTimeoutMs) {
        self.maxFails = maxFails
        self.failTimeoutMs = failTimeoutMs
    }

    public static let defaultMaxFails = 3
    public static let defaultFailTimeoutMs = 10_000
    public static let maxFailsRange = 0...100
    public static let failTimeoutRange = 100...3_600_000

    public var document: JSONValue {
        ["max_fails": .integer(Int64(maxFails)), "fail_timeout_ms": .integer(Int64(failTimeoutMs))]
    }
}

/// What an edge does when every endpoint of an upstream is marked down.
public enum AllDownPolicy: String, Sendable, CaseIterable {
    /// Ignore the marks and spread requests over all endpoints (the default: health data
    /// that is wrong about everything must not take a service offline).
    case failOpen = "fail_open"
    /// Answer 503 without trying any endpoint.
    case unavailable = "503"
}

// MARK: - Parsing (shared by request validation and stored-document decoding)

// The health-related members of an upstream object. A strict reader (request bodies)
// reports unknown fields; a lenient one (stored documents) ignores them.

extension HealthCheck {
    static let fields: Set<String> = [
        "type", "path", "host", "port", "interval_ms", "timeout_ms", "rise", "fall", "expect_status",
    ]

    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> HealthCheck? {
        let before = reader.count
        guard reader.object(json, fields: Self.fields, at: prefix) != nil else { return nil }

        var type: HealthCheck.Kind? = .http
        if let value = json["type"] {
            if case .string(let s) = value, let kind = HealthCheck.Kind(rawValue: s) {
                type = kind
            } else {
                type = nil
                reader.add(
                    join(prefix, "type"), .invalid, "must be one of \(HealthCheck.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        let httpOnly = "only applies to http and https checks"

        var path = HealthCheck.defaultPath
        if let value = json["path"] {
            if type == .tcp {
                reader.add(join(prefix, "path"), .invalid, httpOnly)
            } else if case .string(let s) = value {
                if let problem = Paths.problem(s, match: .exact) {
                    reader.add(join(prefix, "path"), .invalid, problem)
                } else {
                    path = s
                }
            } else {
                reader.add(join(prefix, "path"), .invalid, "must be a string, not \(value.typeName)")
            }
        }

        var host: String?
        if let value = json["host"], value != .null {
            if type == .tcp {
                reader.add(join(prefix, "host"), .invalid, httpOnly)
            } else if case .string(let s) = value {
                switch HostNames.canonical(s) {
                case .success(let canonical) where !canonical.hasPrefix("*."): host = canonical
                case .success: reader.add(join(prefix, "host"), .invalid, "'\(s)' must be a host name, not a wildcard")
                case .failure(let error): reader.add(join(prefix, "host"), .invalid, "'\(s)' \(error.message)")
                }
            } else {
                reader.add(join(prefix, "host"), .invalid, "must be a string, not \(value.typeName)")
            }
        }

        var port: UInt16?
        if let value = json["port"], value != .null {
            if let p = reader.integer(json, "port", in: 1...65535, default: 0, at: prefix) { port = UInt16(p) }
        }

        let interval = reader.integer(
            json, "interval_ms", in: HealthCheck.intervalRange, default: HealthCheck.defaultIntervalMs, at: prefix)
        var timeout = reader.integer(
            json, "timeout_ms", in: HealthCheck.timeoutRange,
            default: HealthCheck.defaultTimeout(intervalMs: interval ?? HealthCheck.defaultIntervalMs), at: prefix)
        if let t = timeout, let i = interval, t >= i {
            reader.add(join(prefix, "timeout_ms"), .invalid, "must be less than interval_ms (\(i))")
            timeout = nil
        }
        let rise = reader.integer(json, "rise", in: HealthCheck.riseFallRange, default: HealthCheck.defaultRise, at: prefix)
        let fall = reader.integer(json, "fall", in: HealthCheck.riseFallRange, default: HealthCheck.defaultFall, at: prefix)

        var expect = HealthCheck.defaultExpectStatus
        if let value = json["expect_status"] {
            let field = join(prefix, "expect_status")
            if type == .tcp {
                reader.add(field, .invalid, httpOnly)
            } else if case .array(let items) = value, !items.isEmpty, items.count <= HealthCheck.maxStatusRanges {
                expect = []
                for (i, item) in items.enumerated() {
                    let text: String
                    switch item {
                    case .string(let s): text = s
                    case .integer(let v): text = String(v)  // 204 is as clear as "204"
                    default:
                        reader.add("\(field)[\(i)]", .invalid, "must be a string such as \"200\" or \"200-399\", not \(item.typeName)")
                        continue
                    }
                    switch StatusRange.parse(text) {
                    case .success(let range): expect.append(range)
                    case .failure(let error): reader.add("\(field)[\(i)]", .invalid, error.message)
                    }
                }
            } else {
                reader.add(
                    field, .invalid, "must be an array of 1-\(HealthCheck.maxStatusRanges) status codes or ranges, e.g. [\"200-399\"]")
            }
        }

        guard reader.count == before, let type, let interval, let timeout, let rise, let fall else { return nil }
        return HealthCheck(
            type: type, path: path, host: host, port: port, intervalMs: interval, timeoutMs: timeout,
            rise: rise, fall: fall, expectStatus: expect)
    }
}

extension PassiveHealth {
    static let fields: Set<String> = ["max_fails", "fail_timeout_ms"]

    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> PassiveHealth? {
        guard reader.object(json, fields: Self.fields, at: prefix) != nil else { return nil }
        let maxFails = reader.integer(
            json, "max_fails", in: PassiveHealth.maxFailsRange, default: PassiveHealth.defaultMaxFails, at: prefix)
        let failTimeout = reader.integer(
            json, "fail_timeout_ms", in: PassiveHealth.failTimeoutRange,
            default: PassiveHealth.defaultFailTimeoutMs, at: prefix)
        guard let maxFails, let failTimeout else { return nil }
        return PassiveHealth(maxFails: maxFails, failTimeoutMs: failTimeout)
    }
}

extension AllDownPolicy {
    static func parse(_ json: JSONValue, at field: String, into reader: inout FieldReader) -> AllDownPolicy? {
        switch json {
        case .string(let s):
            if let p = AllDownPolicy(rawValue: s) { return p }
        case .integer(503):
            return .unavailable
        default:
            break
        }
        reader.add(field, .invalid, "must be one of \(AllDownPolicy.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
        return nil
    }
}

/// The upstream members this file owns, with their defaults.
public enum UpstreamPolicy {
    public static let defaultRetries = 2
    public static let retriesRange = 0...10
    public static let fields: Set<String> = ["health_check", "passive", "retries", "on_all_down"]
}

/// The health-related members of one upstream object, parsed together.
struct UpstreamPolicyFields {
    var healthCheck: HealthCheck?
    var passive: PassiveHealth
    var retries: Int
    var onAllDown: AllDownPolicy

    /// nil when a member is wrong (the problems say which); absent members get defaults.
    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> UpstreamPolicyFields? {
        let before = reader.count
        var healthCheck: HealthCheck?
        if let value = json["health_check"], value != .null {
            healthCheck = HealthCheck.parse(value, at: join(prefix, "health_check"), into: &reader)
        }
        var passive = PassiveHealth()
        if let value = json["passive"], value != .null {
            passive = PassiveHealth.parse(value, at: join(prefix, "passive"), into: &reader) ?? passive
        }
        let retries = reader.integer(
            json, "retries", in: UpstreamPolicy.retriesRange, default: UpstreamPolicy.defaultRetries,
            at: prefix)
        var onAllDown = AllDownPolicy.failOpen
        if let value = json["on_all_down"] {
            onAllDown = AllDownPolicy.parse(value, at: join(prefix, "on_all_down"), into: &reader) ?? onAllDown
        }
        guard reader.count == before, let retries else { return nil }
        return UpstreamPolicyFields(healthCheck: healthCheck, passive: passive, retries: retries, onAllDown: onAllDown)
    }
}
