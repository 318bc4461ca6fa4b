// Header and cookie names and header values, as the traffic policies accept them
// (docs/traffic-policies.md).

/// RFC 9110 tokens: header names and (RFC 6265) cookie names.
public enum Tokens {
    public static func isToken(_ text: String, maxLength: Int) -> Bool {
        let bytes = text.utf8
        guard (1...maxLength).contains(bytes.count) else { return false }
        return bytes.allSatisfy { b in
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            default:
                return Array("!#$%&'*+-.^_`|~".utf8).contains(b)
            }
        }
    }

    public static let maxHeaderName = 128
    public static let maxCookieName = 64
    public static let headerRule = "1-128 token characters: letters, digits and !#$%&'*+-.^_`|~"
    public static let cookieRule = "1-64 token characters: letters, digits and !#$%&'*+-.^_`|~"

    static func isHeaderName(_ s: String) -> Bool { isToken(s, maxLength: maxHeaderName) }
    static func isCookieName(_ s: String) -> Bool { isToken(s, maxLength: maxCookieName) }

    /// nil when `value` may be a header value: no control characters, at most 4096 bytes.
    static func headerValueProblem(_ value: String) -> String? {
        if value.utf8.count > maxHeaderValue { return "must be at most \(maxHeaderValue) bytes" }
        if value.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) { return "must not contain control characters" }
        return nil
    }

    public static let maxHeaderValue = 4096
}

extension FieldReader {
    /// Member `key` as a cookie name: `.some(defaultValue)` when absent or null (required
    /// when there is no default); nil when it is a problem.
    mutating func cookieName(_ json: JSONValue, _ key: String, default defaultValue: String?, at prefix: String) -> String?? {
        guard let given = string(json, key, required: defaultValue == nil, at: prefix) else { return nil }
        guard let name = given else { return .some(defaultValue) }
        guard Tokens.isCookieName(name) else {
            add(join(prefix, key), .invalid, "'\(name)' is not a cookie name (\(Tokens.cookieRule))")
            return nil
        }
        return .some(name)
    }
}
