// The balancing members of upstreams (docs/traffic-policies.md): `hash_on`, what
// `balance: hash` hashes, and `sticky`, the affinity cookie of `balance: sticky`.

/// What `balance: hash` hashes.
public enum HashKey: Sendable, Hashable, CustomStringConvertible {
    case header(String)
    case cookie(String)
    case uri
    case ip

    public var description: String {
        switch self {
        case .header(let name): return "header:\(name)"
        case .cookie(let name): return "cookie:\(name)"
        case .uri: return "uri"
        case .ip: return "ip"
        }
    }

    static let rule = "must be \"header:NAME\", \"cookie:NAME\", \"uri\" or \"ip\""

    /// The key, or what is wrong with the text.
    public static func parse(_ text: String) -> Result<HashKey, PolicyError> {
        if text == "uri" { return .success(.uri) }
        if text == "ip" { return .success(.ip) }
        if text.hasPrefix("header:") {
            let name = String(text.dropFirst("header:".count))
            guard Tokens.isHeaderName(name) else { return .failure(.init("'\(text)': the header name must be \(Tokens.headerRule)")) }
            return .success(.header(name))
        }
        if text.hasPrefix("cookie:") {
            let name = String(text.dropFirst("cookie:".count))
            guard Tokens.isCookieName(name) else { return .failure(.init("'\(text)': the cookie name must be \(Tokens.cookieRule)")) }
            return .success(.cookie(name))
        }
        return .failure(.init("'\(text)' \(rule)"))
    }
}

/// A policy value that is wrong, and why.
public struct PolicyError: Error, Sendable, Equatable {
    public var message: String
    init(_ message: String) { self.message = message }
}

/// The affinity cookie of `balance: sticky`.
public struct StickyCookie: Sendable, Hashable {
    public var cookie: String
    /// Max-Age; 0 = a session cookie.
    public var ttlSeconds: Int
    public var path: String
    public var domain: String?
    public var secure: Bool
    public var httpOnly: Bool

    public init(
        cookie: String = "sy_sticky", ttlSeconds: Int = 3600, path: String = "/", domain: String? = nil,
        secure: Bool = false, httpOnly: Bool = true
    ) {
        self.cookie = cookie
        self.ttlSeconds = ttlSeconds
        self.path = path
        self.domain = domain
        self.secure = secure
        self.httpOnly = httpOnly
    }

    public static let ttlRange = 0...31_536_000
    public static let maxPathLength = 1024
    public static let fields: Set<String> = ["cookie", "ttl_s", "path", "domain", "secure", "httponly"]

    public var document: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("cookie", .string(cookie)), ("ttl_s", .integer(Int64(ttlSeconds))), ("path", .string(path)),
            ("secure", .bool(secure)), ("httponly", .bool(httpOnly)),
        ]
        if let domain { members.append(("domain", .string(domain))) }
        return .object(members)
    }
}

/// The upstream members of this file (besides `balance`, which Validator.swift owns).
struct UpstreamBalanceFields {
    var hashOn: HashKey?
    var sticky: StickyCookie?

    static let fields: Set<String> = ["hash_on", "sticky"]

    static func parse(_ json: JSONValue, balance: Balance?, at prefix: String, into reader: inout FieldReader) -> UpstreamBalanceFields? {
        let before = reader.count
        var out = UpstreamBalanceFields()
        let hashField = join(prefix, "hash_on")
        if let value = present(json, "hash_on") {
            if let balance, balance != .hash {
                reader.add(hashField, .invalid, "only applies with \"balance\": \"hash\"")
            } else if case .string(let s) = value {
                switch HashKey.parse(s) {
                case .success(let key): out.hashOn = key
                case .failure(let error): reader.add(hashField, .invalid, error.message)
                }
            } else {
                reader.add(hashField, .invalid, "must be a string: \(HashKey.rule.dropFirst("must be ".count))")
            }
        } else if balance == .hash {
            reader.add(hashField, .required, "is required with \"balance\": \"hash\" (\(HashKey.rule.dropFirst("must be ".count)))")
        }
        let stickyField = join(prefix, "sticky")
        if let value = present(json, "sticky") {
            if let balance, balance != .sticky {
                reader.add(stickyField, .invalid, "only applies with \"balance\": \"sticky\"")
            } else {
                out.sticky = StickyCookie.parse(value, at: stickyField, into: &reader)
            }
        } else if balance == .sticky {
            out.sticky = StickyCookie()
        }
        return reader.count == before ? out : nil
    }
}

extension StickyCookie {
    /// A `sticky` object; absent members get the defaults.
    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> StickyCookie? {
        guard reader.object(json, fields: StickyCookie.fields, example: #"{"cookie":"sy_sticky","ttl_s":3600}"#, at: prefix) != nil else {
            return nil
        }
        let before = reader.count
        let defaults = StickyCookie()
        let cookie = reader.cookieName(json, "cookie", default: defaults.cookie, at: prefix)
        let ttl = reader.integer(json, "ttl_s", in: StickyCookie.ttlRange, default: defaults.ttlSeconds, at: prefix)
        var path: String? = defaults.path
        if let given = reader.string(json, "path", required: false, at: prefix), let text = given {
            if !text.hasPrefix("/") {
                reader.add(join(prefix, "path"), .invalid, "'\(text)' must start with /")
            } else if text.utf8.count > StickyCookie.maxPathLength {
                reader.add(join(prefix, "path"), .invalid, "must be at most \(StickyCookie.maxPathLength) bytes")
            } else if text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: ";") }) {
                reader.add(join(prefix, "path"), .invalid, "must not contain ';', spaces or control characters")
            } else {
                path = text
            }
        }
        var domain: String?
        if let given = reader.string(json, "domain", required: false, at: prefix), let text = given {
            switch HostNames.canonical(text) {
            case .success(let name) where !name.hasPrefix("*."): domain = name
            case .success: reader.add(join(prefix, "domain"), .invalid, "'\(text)' must be a host name, not a wildcard")
            case .failure(let error): reader.add(join(prefix, "domain"), .invalid, "'\(text)' \(error.message)")
            }
        }
        let secure = reader.bool(json, "secure", default: defaults.secure, at: prefix)
        let httpOnly = reader.bool(json, "httponly", default: defaults.httpOnly, at: prefix)
        guard reader.count == before, let cookie = cookie ?? nil, let ttl, let path, let secure, let httpOnly else { return nil }
        return StickyCookie(cookie: cookie, ttlSeconds: ttl, path: path, domain: domain, secure: secure, httpOnly: httpOnly)
    }
}
