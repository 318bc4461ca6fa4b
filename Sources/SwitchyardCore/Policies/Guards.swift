// A route's limits and guards (docs/traffic-policies.md): `timeouts`, `rate_limit` and
// the `allow`/`deny` client address lists (`max_body_bytes` is a plain integer member of
// RoutePolicies).

/// Per-attempt proxy timeouts; nil members keep the edge's defaults.
public struct Timeouts: Sendable, Hashable {
    public var connectMs: Int?
    public var sendMs: Int?
    public var readMs: Int?

    public init(connectMs: Int? = nil, sendMs: Int? = nil, readMs: Int? = nil) {
        self.connectMs = connectMs
        self.sendMs = sendMs
        self.readMs = readMs
    }

    public static let connectRange = 1...60_000
    public static let sendReadRange = 1...3_600_000
    public static let fields: Set<String> = ["connect_ms", "send_ms", "read_ms"]

    public var document: JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        if let connectMs { members.append(("connect_ms", .integer(Int64(connectMs)))) }
        if let sendMs { members.append(("send_ms", .integer(Int64(sendMs)))) }
        if let readMs { members.append(("read_ms", .integer(Int64(readMs)))) }
        return .object(members)
    }
}

/// A token bucket per client key, per edge.
public struct RateLimit: Sendable, Hashable {
    public enum Key: Sendable, Hashable, CustomStringConvertible {
        case ip
        case header(String)

        public var description: String {
            switch self {
            case .ip: return "ip"
            case .header(let name): return "header:\(name)"
            }
        }
    }

    public var rps: Int
    public var burst: Int
    public var key: Key

    public init(rps: Int, burst: Int = 0, key: Key = .ip) {
        self.rps = rps
        self.burst = burst
        self.key = key
    }

    public static let rpsRange = 1...100_000
    public static let burstRange = 0...100_000
    public static let fields: Set<String> = ["rps", "burst", "key"]

    public var document: JSONValue {
        ["rps": .integer(Int64(rps)), "burst": .integer(Int64(burst)), "key": .string(key.description)]
    }
}

extension Timeouts {
    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> Timeouts? {
        guard reader.object(json, fields: Timeouts.fields, example: #"{"connect_ms":1000,"read_ms":5000}"#, at: prefix) != nil else {
            return nil
        }
        let before = reader.count
        func value(_ key: String, _ range: ClosedRange<Int>) -> Int? {
            guard present(json, key) != nil else { return nil }
            return reader.integer(json, key, in: range, default: 0, at: prefix)
        }
        let out = Timeouts(
            connectMs: value("connect_ms", Timeouts.connectRange), sendMs: value("send_ms", Timeouts.sendReadRange),
            readMs: value("read_ms", Timeouts.sendReadRange))
        guard reader.count == before else { return nil }
        if out == Timeouts() {
            reader.add(prefix, .invalid, "must give at least one of connect_ms, send_ms, read_ms (omit it otherwise)")
            return nil
        }
        return out
    }
}

extension RateLimit {
    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> RateLimit? {
        guard reader.object(json, fields: RateLimit.fields, example: #"{"rps":10,"burst":20,"key":"ip"}"#, at: prefix) != nil else {
            return nil
        }
        var rps: Int?
        if present(json, "rps") == nil {
            reader.add(
                join(prefix, "rps"), .required,
                "is required (requests per second, \(RateLimit.rpsRange.lowerBound)-\(RateLimit.rpsRange.upperBound))")
        } else {
            rps = reader.integer(json, "rps", in: RateLimit.rpsRange, default: 1, at: prefix)
        }
        let burst = reader.integer(json, "burst", in: RateLimit.burstRange, default: 0, at: prefix)
        var key: RateLimit.Key? = .ip
        if let given = reader.string(json, "key", required: false, at: prefix) {
            if let text = given, text != "ip" {
                let name = text.hasPrefix("header:") ? String(text.dropFirst("header:".count)) : nil
                if let name, Tokens.isHeaderName(name) {
                    key = .header(name)
                } else {
                    reader.add(join(prefix, "key"), .invalid, "'\(text)' must be \"ip\" or \"header:NAME\"")
                    key = nil
                }
            }
        } else {
            key = nil
        }
        guard let rps, let burst, let key else { return nil }
        return RateLimit(rps: rps, burst: burst, key: key)
    }
}

extension RoutePolicies {
    /// An `allow` or `deny` list: distinct addresses or CIDR ranges.
    static func addressRanges(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> [CIDR]? {
        guard case .array(let items) = json else {
            reader.add(prefix, .invalid, "must be an array of addresses or CIDR ranges, such as [\"10.0.0.0/8\"], not \(json.typeName)")
            return nil
        }
        guard items.count <= RoutePolicies.maxAddressRanges else {
            reader.add(prefix, .invalid, "must have at most \(RoutePolicies.maxAddressRanges) entries, not \(items.count)")
            return nil
        }
        let before = reader.count
        var out: [CIDR] = []
        var first: [CIDR: Int] = [:]
        for (i, item) in items.enumerated() {
            let at = "\(prefix)[\(i)]"
            guard case .string(let text) = item else {
                reader.add(at, .invalid, "must be a string such as \"10.0.0.0/8\", not \(item.typeName)")
                continue
            }
            switch CIDR.parse(text) {
            case .success(let range):
                if let j = first[range] {
                    reader.add(at, .duplicate, "'\(text)' appears twice (also \(prefix)[\(j)])")
                } else {
                    first[range] = i
                    out.append(range)
                }
            case .failure(let error):
                reader.add(at, .invalid, "'\(text)': \(error.message)")
            }
        }
        return reader.count == before ? out : nil
    }
}
