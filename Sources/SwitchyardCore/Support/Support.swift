// Small pure helpers the controller needs: URL path decoding, time formatting, edge status.

/// Percent-decoding of one URL path segment (`%5B%3A%3A1%5D%3A8080` -> `[::1]:8080`).
/// nil for malformed escapes or invalid UTF-8. `+` stays `+` (that is a query-string rule).
public func percentDecoded(_ text: some StringProtocol) -> String? {
    let bytes = Array(text.utf8)
    guard bytes.contains(UInt8(ascii: "%")) else { return String(text) }
    var out: [UInt8] = []
    var i = 0
    func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }
    while i < bytes.count {
        if bytes[i] == UInt8(ascii: "%") {
            guard i + 2 < bytes.count, let hi = hex(bytes[i + 1]), let lo = hex(bytes[i + 2]) else { return nil }
            out.append(hi << 4 | lo)
            i += 3
        } else {
            out.append(bytes[i])
            i += 1
        }
    }
    return String(validating: out, as: UTF8.self)
}

/// ISO 8601 UTC text (`2025-01-31T12:00:00.123Z`) for milliseconds since the epoch.
public func iso8601(milliseconds ms: Int64) -> String {
    let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
    let millis = Int(ms - seconds * 1000)
    var days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
    let secondOfDay = Int(seconds - days * 86400)
    // civil-from-days (Howard Hinnant's algorithm)
    days += 719_468
    let era = (days >= 0 ? days : days - 146_096) / 146_097
    let doe = days - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    func pad(_ v: some BinaryInteger, _ width: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
    return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):"
        + "\(pad(secondOfDay % 60, 2)).\(pad(millis, 3))Z"
}

/// One edge as shown by `GET /api/v1/status`, built from its registration hash.
public enum EdgeStatus {
    /// `fields` is the edge's hash (may be empty when it expired); `heartbeat` its score in
    /// the edges sorted set (ms since the epoch); `version` the current configuration version.
    static let numericFields: Set<String> = ["applied_version", "pid", "workers"]

    public static func json(id: String, fields: [(String, String)], heartbeat: Int64, version: Int64) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        var seen = Set<String>()
        for (key, value) in fields where seen.insert(key).inserted {
            // only fields known to be numbers become numbers: `listen` may be "8080" or
            // "127.0.0.1:8080" and must keep one type
            if numericFields.contains(key), let n = Int64(value) {
                members.append((key, .integer(n)))
            } else {
                members.append((key, .string(value)))
            }
        }
        func set(_ key: String, _ value: JSONValue) {
            members.removeAll { $0.key == key }
            members.append((key, value))
        }
        set("id", .string(id))
        let lastSeen = fields.first(where: { $0.0 == "last_seen" }).flatMap { Int64($0.1) } ?? heartbeat
        set("last_seen", .string(iso8601(milliseconds: lastSeen)))
        set("last_seen_ms", .integer(lastSeen))
        if let started = fields.first(where: { $0.0 == "started" }).flatMap({ Int64($0.1) }), started > 1_000_000_000_000 {
            set("started", .string(iso8601(milliseconds: started)))
        }
        if let applied = fields.first(where: { $0.0 == "applied_version" }).flatMap({ Int64($0.1) }) {
            set("applied_version", .integer(applied))
            set("lag", .integer(max(0, version - applied)))
        } else {
            set("applied_version", .null)
            set("lag", .null)
        }
        return .object(members)
    }
}
