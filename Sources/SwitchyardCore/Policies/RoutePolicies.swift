// Traffic policies (docs/traffic-policies.md): the balancing members of upstreams
// (`hash_on`, `sticky`) and the per-route options (`split`, `split_sticky`, `canary`,
// `rewrite`, `request_headers`, `response_headers`, `timeouts`, `max_body_bytes`,
// `rate_limit`, `allow`, `deny`, `redirect`).
//
// Parsed here once, with the same rules for request bodies (strict: unknown members are
// problems) and stored documents (lenient: unknown members ignored). Absent options are
// not written to documents, so a route or upstream that uses none of them keeps the
// exact document (and digest) it had before they existed. Objects whose members have
// defaults are written with every effective value, so edges never need the defaults.

// MARK: - Tokens and header values

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

// MARK: - Upstream members

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

    public init(cookie: String = "sy_sticky", ttlSeconds: Int = 3600, path: String = "/", domain: String? = nil,
                secure: Bool = false, httpOnly: Bool = true) {
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

/// The upstream members of this file (besides `balance`, which Validation.swift owns).
struct UpstreamBalanceFields {
    var hashOn: HashKey?
    var sticky: StickyCookie?

    static let fields: Set<String> = ["hash_on", "sticky"]

    static func parse(_ json: JSONValue, balance: Balance?, strict: Bool, at prefix: String, into problems: inout Problems) -> UpstreamBalanceFields? {
        let before = problems.list.count
        var out = UpstreamBalanceFields()
        let p = PolicyParser(strict: strict)
        let hashField = join(prefix, "hash_on")
        if let value = present(json, "hash_on") {
            if let balance, balance != .hash {
                problems.add(hashField, .invalid, "only applies with \"balance\": \"hash\"")
            } else if case .string(let s) = value {
                switch HashKey.parse(s) {
                case .success(let key): out.hashOn = key
                case .failure(let error): problems.add(hashField, .invalid, error.message)
                }
            } else {
                problems.add(hashField, .invalid, "must be a string: \(HashKey.rule.dropFirst("must be ".count))")
            }
        } else if balance == .hash {
            problems.add(hashField, .required, "is required with \"balance\": \"hash\" (\(HashKey.rule.dropFirst("must be ".count)))")
        }
        let stickyField = join(prefix, "sticky")
        if let value = present(json, "sticky") {
            if let balance, balance != .sticky {
                problems.add(stickyField, .invalid, "only applies with \"balance\": \"sticky\"")
            } else {
                out.sticky = p.sticky(value, at: stickyField, into: &problems)
            }
        } else if balance == .sticky {
            out.sticky = StickyCookie()
        }
        return problems.list.count == before ? out : nil
    }
}

// MARK: - Route members

/// One entry of a route's `split`.
public struct SplitTarget: Sendable, Hashable {
    public var upstream: String
    /// 0-1000; 0 takes the upstream out of the split without removing it.
    public var weight: Int

    public init(upstream: String, weight: Int) {
        self.upstream = upstream
        self.weight = weight
    }

    public static let weightRange = 0...1000
    public static let countRange = 2...10
    public static let defaultWeight = 1
}

/// The cookie that keeps a client on one side of a split.
public struct SplitSticky: Sendable, Hashable {
    public var cookie: String
    public var ttlSeconds: Int

    public init(cookie: String = "sy_split", ttlSeconds: Int = 3600) {
        self.cookie = cookie
        self.ttlSeconds = ttlSeconds
    }

    public static let fields: Set<String> = ["cookie", "ttl_s"]
}

/// Requests carrying a header or cookie go to another upstream.
public struct Canary: Sendable, Hashable {
    public var upstream: String
    public var header: String?
    public var cookie: String?
    /// nil: any non-empty value.
    public var value: String?

    public init(upstream: String, header: String? = nil, cookie: String? = nil, value: String? = nil) {
        self.upstream = upstream
        self.header = header
        self.cookie = cookie
        self.value = value
    }

    public static let fields: Set<String> = ["upstream", "header", "cookie", "value"]
}

/// How the request path is changed before it goes upstream.
public enum Rewrite: Sendable, Hashable {
    /// Remove the route's path from the front of the request path.
    case stripPrefix
    /// Replace the route's path at the front of the request path with this.
    case replacePrefix(String)
    /// `ngx.re.sub` of the path: `$0`-`$N`, `${N}` and `$$` in the replacement.
    case regex(pattern: String, replacement: String)

    public static let fields: Set<String> = ["strip_prefix", "replace_prefix", "regex", "replacement"]
}

/// One header to set.
public struct HeaderField: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// `request_headers` / `response_headers`: `remove`, then `set`.
public struct HeaderEdits: Sendable, Hashable {
    /// Sorted by name (UTF-8 bytes), like the document.
    public var set: [HeaderField]
    public var remove: [String]

    public init(set: [HeaderField] = [], remove: [String] = []) {
        self.set = set.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        self.remove = remove
    }

    public static let maxNames = 32
    public static let fields: Set<String> = ["set", "remove"]
    /// Lowercased names the edge owns (docs/traffic-policies.md).
    public static let refusedInRequest: Set<String> = [
        "connection", "upgrade", "keep-alive", "te", "transfer-encoding", "content-length", "x-forwarded-for",
        "x-forwarded-proto", "x-forwarded-host", "x-real-ip",
    ]
    public static let refusedInResponse: Set<String> = ["connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "trailer"]

    public var document: JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        if !set.isEmpty { members.append(("set", .object(set.map { ($0.name, .string($0.value)) }))) }
        if !remove.isEmpty { members.append(("remove", .array(remove.map { .string($0) }))) }
        return .object(members)
    }
}

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

/// The route answers with a redirect instead of proxying.
public struct Redirect: Sendable, Hashable {
    public var to: String
    public var status: Int
    /// Append the request's path and query to `to`.
    public var keepPath: Bool

    public init(to: String, status: Int = 301, keepPath: Bool = false) {
        self.to = to
        self.status = status
        self.keepPath = keepPath
    }

    public static let statuses = [301, 302, 303, 307, 308]
    public static let maxLength = 2048
    public static let fields: Set<String> = ["to", "status", "keep_path"]

    public var document: JSONValue {
        ["to": .string(to), "status": .integer(Int64(status)), "keep_path": .bool(keepPath)]
    }
}

/// Every traffic-policy member of a route. A value has passed validation.
public struct RoutePolicies: Sendable, Hashable {
    public var split: [SplitTarget]?
    public var splitSticky: SplitSticky?
    public var canary: Canary?
    public var rewrite: Rewrite?
    public var requestHeaders: HeaderEdits?
    public var responseHeaders: HeaderEdits?
    public var timeouts: Timeouts?
    public var maxBodyBytes: Int?
    public var rateLimit: RateLimit?
    public var allow: [CIDR] = []
    public var deny: [CIDR] = []
    public var redirect: Redirect?

    public init() {}

    public static let maxBodyRange = 0...104_857_600
    public static let maxAddressRanges = 256
    public static let fields: Set<String> = [
        "split", "split_sticky", "canary", "rewrite", "request_headers", "response_headers", "timeouts", "max_body_bytes",
        "rate_limit", "allow", "deny", "redirect",
    ]
    /// Members that need an upstream, refused on redirect routes.
    static let proxyOnly = ["upstream", "split", "split_sticky", "canary", "rewrite", "request_headers", "timeouts", "max_body_bytes"]

    /// The members to add to the route's document (none for a route without policies).
    public var members: [(key: String, value: JSONValue)] {
        var out: [(key: String, value: JSONValue)] = []
        if let split {
            out.append(("split", .array(split.map { ["upstream": .string($0.upstream), "weight": .integer(Int64($0.weight))] })))
        }
        if let splitSticky {
            out.append(("split_sticky", ["cookie": .string(splitSticky.cookie), "ttl_s": .integer(Int64(splitSticky.ttlSeconds))]))
        }
        if let canary {
            var members: [(key: String, value: JSONValue)] = [("upstream", .string(canary.upstream))]
            if let header = canary.header { members.append(("header", .string(header))) }
            if let cookie = canary.cookie { members.append(("cookie", .string(cookie))) }
            if let value = canary.value { members.append(("value", .string(value))) }
            out.append(("canary", .object(members)))
        }
        switch rewrite {
        case nil: break
        case .stripPrefix?: out.append(("rewrite", ["strip_prefix": true]))
        case .replacePrefix(let p)?: out.append(("rewrite", ["replace_prefix": .string(p)]))
        case .regex(let pattern, let replacement)?:
            out.append(("rewrite", ["regex": .string(pattern), "replacement": .string(replacement)]))
        }
        if let requestHeaders { out.append(("request_headers", requestHeaders.document)) }
        if let responseHeaders { out.append(("response_headers", responseHeaders.document)) }
        if let timeouts { out.append(("timeouts", timeouts.document)) }
        if let maxBodyBytes { out.append(("max_body_bytes", .integer(Int64(maxBodyBytes)))) }
        if let rateLimit { out.append(("rate_limit", rateLimit.document)) }
        if !allow.isEmpty { out.append(("allow", .array(allow.map { .string($0.description) }))) }
        if !deny.isEmpty { out.append(("deny", .array(deny.map { .string($0.description) }))) }
        if let redirect { out.append(("redirect", redirect.document)) }
        return out
    }

    /// Parses the policy members of route object `json` and checks the route's action:
    /// exactly one of `upstream` (given when `hasUpstream`), `split` and `redirect`.
    /// `regex` compiles rewrite patterns (nil: not checked). nil when something is wrong.
    static func parse(
        _ json: JSONValue, match: MatchKind?, hasUpstream: Bool, regex: (any RegexChecker)?, strict: Bool, at prefix: String,
        into problems: inout Problems
    ) -> RoutePolicies? {
        let before = problems.list.count
        let p = PolicyParser(strict: strict)
        var out = RoutePolicies()
        let field = { (name: String) in join(prefix, name) }

        // the action, and members that do not go with it
        let isRedirect = present(json, "redirect") != nil
        let hasSplit = present(json, "split") != nil
        var skip: Set<String> = []
        if isRedirect {
            for name in proxyOnly where name == "upstream" ? hasUpstream : present(json, name) != nil {
                problems.add(field(name), .invalid, "does not apply to a redirect route (it sends no request upstream)")
                skip.insert(name)
            }
        } else if hasUpstream && hasSplit {
            problems.add(field("split"), .invalid, "a route has exactly one action: give either upstream or split, not both")
            skip.insert("split")
        } else if !hasUpstream && !hasSplit {
            problems.add(field("upstream"), .required, "is required (or give split, or redirect)")
        }
        if !hasSplit, !skip.contains("split_sticky"), present(json, "split_sticky") != nil {
            problems.add(field("split_sticky"), .invalid, "only applies with split")
            skip.insert("split_sticky")
        }
        func value(_ name: String) -> JSONValue? { skip.contains(name) ? nil : present(json, name) }

        if let v = value("split") { out.split = p.split(v, at: field("split"), into: &problems) }
        if let v = value("split_sticky") { out.splitSticky = p.splitSticky(v, at: field("split_sticky"), into: &problems) }
        if let v = value("canary") { out.canary = p.canary(v, at: field("canary"), into: &problems) }
        if let v = value("rewrite") { out.rewrite = p.rewrite(v, match: match, regex: regex, at: field("rewrite"), into: &problems) }
        if let v = value("request_headers") {
            out.requestHeaders = p.headers(v, refused: HeaderEdits.refusedInRequest, at: field("request_headers"), into: &problems)
        }
        if let v = value("response_headers") {
            out.responseHeaders = p.headers(v, refused: HeaderEdits.refusedInResponse, at: field("response_headers"), into: &problems)
        }
        if let v = value("timeouts") { out.timeouts = p.timeouts(v, at: field("timeouts"), into: &problems) }
        if value("max_body_bytes") != nil {
            out.maxBodyBytes = Validator.integer(json, "max_body_bytes", in: maxBodyRange, default: 0, at: prefix, into: &problems)
        }
        if let v = value("rate_limit") { out.rateLimit = p.rateLimit(v, at: field("rate_limit"), into: &problems) }
        if let v = value("allow") { out.allow = p.ranges(v, at: field("allow"), into: &problems) ?? [] }
        if let v = value("deny") { out.deny = p.ranges(v, at: field("deny"), into: &problems) ?? [] }
        if let v = value("redirect") { out.redirect = p.redirect(v, at: field("redirect"), into: &problems) }
        return problems.list.count == before ? out : nil
    }
}

/// The member `key` unless absent or null (null means "not given", as for other optional members).
func present(_ json: JSONValue, _ key: String) -> JSONValue? {
    guard let value = json[key], value != .null else { return nil }
    return value
}

// MARK: - Parsing

/// Parsers of the policy objects; each adds its problems and returns nil when any.
struct PolicyParser {
    var strict: Bool

    func object(_ json: JSONValue, fields: Set<String>, example: String, at prefix: String,
                into problems: inout Problems) -> [(key: String, value: JSONValue)]? {
        guard case .object(let members) = json else {
            problems.add(prefix, .invalid, "must be a JSON object such as \(example), not \(json.typeName)")
            return nil
        }
        if strict { Validator.rejectUnknown(members, allowed: fields, at: prefix, into: &problems) }
        return members
    }

    func string(_ json: JSONValue, _ key: String, required: Bool, at prefix: String, into problems: inout Problems) -> String?? {
        switch present(json, key) {
        case nil:
            if required { problems.add(join(prefix, key), .required, "is required"); return nil }
            return .some(nil)
        case .string(let s)?:
            return .some(s)
        case let other?:
            problems.add(join(prefix, key), .invalid, "must be a string, not \(other.typeName)")
            return nil
        }
    }

    func bool(_ json: JSONValue, _ key: String, default defaultValue: Bool, at prefix: String, into problems: inout Problems) -> Bool? {
        switch present(json, key) {
        case nil: return defaultValue
        case .bool(let b)?: return b
        case let other?:
            problems.add(join(prefix, key), .invalid, "must be true or false, not \(other.typeName)")
            return nil
        }
    }

    func cookieName(_ json: JSONValue, _ key: String, default defaultValue: String?, at prefix: String, into problems: inout Problems) -> String?? {
        guard let given = string(json, key, required: defaultValue == nil, at: prefix, into: &problems) else { return nil }
        guard let name = given else { return .some(defaultValue) }
        guard Tokens.isCookieName(name) else {
            problems.add(join(prefix, key), .invalid, "'\(name)' is not a cookie name (\(Tokens.cookieRule))")
            return nil
        }
        return .some(name)
    }

    // MARK: upstream

    func sticky(_ json: JSONValue, at prefix: String, into problems: inout Problems) -> StickyCookie? {
        guard object(json, fields: StickyCookie.fields, example: #"{"cookie":"sy_sticky","ttl_s":3600}"#, at: prefix, into: &problems) != nil else {
            return nil
        }
        let before = problems.list.count
        let defaults = StickyCookie()
        let cookie = cookieName(json, "cookie", default: defaults.cookie, at: prefix, into: &problems)
        let ttl = Validator.integer(json, "ttl_s", in: StickyCookie.ttlRange, default: defaults.ttlSeconds, at: prefix, into: &problems)
        var path: String? = defaults.path
        if let given = string(json, "path", required: false, at: prefix, into: &problems), let text = given {
            if !text.hasPrefix("/") {
                problems.add(join(prefix, "path"), .invalid, "'\(text)' must start with /")
            } else if text.utf8.count > StickyCookie.maxPathLength {
                problems.add(join(prefix, "path"), .invalid, "must be at most \(StickyCookie.maxPathLength) bytes")
            } else if text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: ";") }) {
                problems.add(join(prefix, "path"), .invalid, "must not contain ';', spaces or control characters")
            } else {
                path = text
            }
        }
        var domain: String?
        if let given = string(json, "domain", required: false, at: prefix, into: &problems), let text = given {
            switch HostNames.canonical(text) {
            case .success(let name) where !name.hasPrefix("*."): domain = name
            case .success: problems.add(join(prefix, "domain"), .invalid, "'\(text)' must be a host name, not a wildcard")
            case .failure(let error): problems.add(join(prefix, "domain"), .invalid, "'\(text)' \(error.message)")
            }
        }
        let secure = bool(json, "secure", default: defaults.secure, at: prefix, into: &problems)
        let httpOnly = bool(json, "httponly", default: defaults.httpOnly, at: prefix, into: &problems)
        guard problems.list.count == before, let cookie = cookie ?? nil, let ttl, let path, let secure, let httpOnly else { return nil }
        return StickyCookie(cookie: cookie, ttlSeconds: ttl, path: path, domain: domain, secure: secure, httpOnly: httpOnly)
    }

    // MARK: route

    func split(_ json: JSONValue, at prefix: String, into problems: inout Problems) -> [SplitTarget]? {
        let example = #"[{"upstream":"blue","weight":90},{"upstream":"green","weight":10}]"#
        guard case .array(let items) = json else {
            problems.add(prefix, .invalid, "must be an array such as \(example), not \(json.typeName)")
            return nil
        }
        guard SplitTarget.countRange.contains(items.count) else {
            problems.add(prefix, .invalid, "must have \(SplitTarget.countRange.lowerBound)-\(SplitTarget.countRange.upperBound) entries, not \(items.count)")
            return nil
        }
        let before = problems.list.count
        var targets: [SplitTarget] = []
        var first: [String: Int] = [:]
        for (i, item) in items.enumerated() {
            let at = "\(prefix)[\(i)]"
            guard object(item, fields: ["upstream", "weight"], example: #"{"upstream":"blue","weight":90}"#, at: at, into: &problems) != nil else {
                continue
            }
            let weight = Validator.integer(item, "weight", in: SplitTarget.weightRange, default: SplitTarget.defaultWeight, at: at, into: &problems)
            guard let given = string(item, "upstream", required: true, at: at, into: &problems), let name = given else { continue }
            guard Names.isValid(name) else {
                problems.add(join(at, "upstream"), .invalid, "'\(name)' is not a valid upstream name (\(Names.rule))")
                continue
            }
            if let j = first[name] {
                problems.add(join(at, "upstream"), .duplicate, "upstream '\(name)' appears twice in the split (also \(prefix)[\(j)])")
                continue
            }
            first[name] = i
            if let weight { targets.append(SplitTarget(upstream: name, weight: weight)) }
        }
        guard problems.list.count == before else { return nil }
        if targets.allSatisfy({ $0.weight == 0 }) {
            problems.add(prefix, .invalid, "the weights must not all be 0")
            return nil
        }
        return targets
    }

    func splitSticky(_ json: JSONValue, at prefix: String, into problems: inout Problems) -> SplitSticky? {
        guard object(json, fields: SplitSticky.fields, example: #"{"cookie":"sy_split","ttl_s":3600}"#, at: prefix, into: &problems) != nil else {
            return nil
        }
        let defaults = SplitSticky()
        let cookie = cookieName(json, "cookie", default: defaults.cookie, at: prefix, into: &problems)
        let ttl = Validator.integer(json, "ttl_s", in: StickyCookie.ttlRange, default: defaults.ttlSeconds, at: prefix, into: &problems)
        guard let cookie = cookie ?? nil, let ttl else { return nil }
        return SplitSticky(cookie: cookie, ttlSeconds: ttl)
    }

    func canary(_ json: JSONValue, at prefix: String, into problems: inout Problems) -> Canary? {
        let example = #"{"upstream":"green","header":"X-Canary","value":"1"}"#
        guard object(json, fields: Canary.fields, example: example, at: prefix, into: &problems) != nil else { return nil }
        let before = problems.list.count
        var upstream: String?
        if let given = string(json, "upstream", required: true, at: prefix, into: &problems), let name = given {
            if Names.isValid(name) {
                upstream = name
            } else {
                problems.add(join(prefix, "upstream"), .invalid, "'\(name)' is not a valid upstream name (\(Names.rule))")
            }
        }
        var header: String?
        if let given = string(json, "header", required: false, at: prefix, into: &problems), let name = given {
            if Tokens.isHeaderName(name) {
                header = name
            } else {
                problems.add(join(prefix, "header"), .invalid, "'\(name)' is not a header name (\(Tokens.headerRule))")
            }
        }
        let cookie = cookieName(json, "cookie", default: "", at: prefix, into: &problems).map { $0 == "" ? nil : $0 }
        var value: String?
        if let given = string(json, "value", required: false, at: prefix, into: &problems), let text = given {
            if text.isEmpty {
                problems.add(join(prefix, "value"), .invalid, "must not be empty (omit value to match any non-empty value)")
            } else if let problem = Tokens.headerValueProblem(text) {
                problems.add(join(prefix, "value"), .invalid, problem)
            } else {
                value = text
            }
        }
        guard problems.list.count == before, let upstream, let cookie else { return nil }
        if header == nil && cookie == nil {
            problems.add(prefix, .invalid, "needs header or cookie (or both): which requests go to the canary")
            return nil
        }
        return Canary(upstream: upstream, header: header, cookie: cookie, value: value)
    }

    func rewrite(_ json: JSONValue, match: MatchKind?, regex: (any RegexChecker)?, at prefix: String, into problems: inout Problems) -> Rewrite? {
        let example = #"{"strip_prefix":true}, {"replace_prefix":"/v2"} or {"regex":"^/old/(.*)","replacement":"/new/$1"}"#
        guard object(json, fields: Rewrite.fields, example: example, at: prefix, into: &problems) != nil else { return nil }
        let forms = ["strip_prefix", "replace_prefix", "regex"].filter { present(json, $0) != nil }
        guard forms.count == 1, let form = forms.first else {
            problems.add(prefix, .invalid, "must have exactly one of strip_prefix, replace_prefix or regex (with replacement), e.g. \(example)")
            return nil
        }
        let field = join(prefix, form)
        if form != "regex", present(json, "replacement") != nil {
            problems.add(join(prefix, "replacement"), .invalid, "only applies with regex")
            return nil
        }
        if form != "regex", let match, match == .regex {
            problems.add(field, .invalid, "only applies to exact and prefix routes (use regex and replacement on a regex route)")
            return nil
        }
        switch form {
        case "strip_prefix":
            guard present(json, form) == .bool(true) else {
                problems.add(field, .invalid, "must be true (omit rewrite to keep the path)")
                return nil
            }
            return .stripPrefix
        case "replace_prefix":
            guard let given = string(json, form, required: true, at: prefix, into: &problems), let text = given else { return nil }
            if let problem = Paths.problem(text, match: .prefix) {
                problems.add(field, .invalid, "'\(text)' \(problem)")
                return nil
            }
            return .replacePrefix(text)
        default:
            let before = problems.list.count
            var pattern: String?
            var captures: Int?
            if let given = string(json, "regex", required: true, at: prefix, into: &problems), let text = given {
                if let problem = Paths.problem(text, match: .regex) {
                    problems.add(field, .invalid, problem)
                } else if let problem = regex?.problem(in: text) {
                    problems.add(field, .invalid, problem)
                } else {
                    pattern = text
                    captures = regex?.captureCount(in: text)
                }
            }
            var replacement: String?
            let replacementField = join(prefix, "replacement")
            if let given = string(json, "replacement", required: true, at: prefix, into: &problems), let text = given {
                if let problem = Paths.problem(text, match: .prefix) {
                    problems.add(replacementField, .invalid, "'\(text)' \(problem)")
                } else if let problem = Self.templateProblem(text, captures: captures) {
                    problems.add(replacementField, .invalid, "'\(text)': \(problem)")
                } else {
                    replacement = text
                }
            }
            guard problems.list.count == before, let pattern, let replacement else { return nil }
            return .regex(pattern: pattern, replacement: replacement)
        }
    }

    /// nil when `text` is a valid `ngx.re.sub` template: every `$` is followed by a group
    /// number, `{number}` or another `$`; numbers no larger than `captures` (when known).
    static func templateProblem(_ text: String, captures: Int?) -> String? {
        let bytes = Array(text.utf8)
        var i = 0
        func isDigit(_ j: Int) -> Bool { j < bytes.count && bytes[j] >= 0x30 && bytes[j] <= 0x39 }
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "$") else { i += 1; continue }
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "$") { i += 1; continue }
            let braced = i < bytes.count && bytes[i] == UInt8(ascii: "{")
            if braced { i += 1 }
            let start = i
            while isDigit(i) { i += 1 }
            guard i > start, i - start <= 3, !braced || (i < bytes.count && bytes[i] == UInt8(ascii: "}")) else {
                return "'$' must be followed by a group number ($1 or ${1}), or be written $$"
            }
            let number = Int(String(decoding: bytes[start..<i], as: UTF8.self)) ?? 0
            if braced { i += 1 }
            if let captures, number > captures {
                return "refers to group \(number), but the regex has \(captures == 0 ? "no groups" : "only \(captures) group\(captures == 1 ? "" : "s")")"
            }
        }
        return nil
    }

    func headers(_ json: JSONValue, refused: Set<String>, at prefix: String, into problems: inout Problems) -> HeaderEdits? {
        guard object(json, fields: HeaderEdits.fields, example: #"{"set":{"X-A":"1"},"remove":["X-B"]}"#, at: prefix, into: &problems) != nil else {
            return nil
        }
        let before = problems.list.count
        func nameProblem(_ name: String) -> String? {
            if !Tokens.isHeaderName(name) { return "'\(name)' is not a header name (\(Tokens.headerRule))" }
            if refused.contains(name.lowercased()) { return "\(name) is set by the edge itself and cannot be changed here" }
            return nil
        }
        var set: [HeaderField] = []
        var setNames: Set<String> = []
        let setField = join(prefix, "set")
        switch present(json, "set") {
        case nil: break
        case .object(let members)?:
            if members.count > HeaderEdits.maxNames {
                problems.add(setField, .invalid, "must have at most \(HeaderEdits.maxNames) headers, not \(members.count)")
                break
            }
            for member in members {
                let at = join(setField, member.key)
                if let problem = nameProblem(member.key) { problems.add(at, .invalid, problem); continue }
                guard case .string(let value) = member.value else {
                    problems.add(at, .invalid, "must be a string, not \(member.value.typeName)")
                    continue
                }
                if let problem = Tokens.headerValueProblem(value) { problems.add(at, .invalid, problem); continue }
                guard setNames.insert(member.key.lowercased()).inserted else {
                    problems.add(at, .duplicate, "header \(member.key) appears twice (names are case-insensitive)")
                    continue
                }
                set.append(HeaderField(name: member.key, value: value))
            }
        case let other?:
            problems.add(setField, .invalid, "must be an object of header names to values, such as {\"X-A\":\"1\"}, not \(other.typeName)")
        }
        var remove: [String] = []
        var removeNames: Set<String> = []
        let removeField = join(prefix, "remove")
        switch present(json, "remove") {
        case nil: break
        case .array(let items)?:
            if items.count > HeaderEdits.maxNames {
                problems.add(removeField, .invalid, "must have at most \(HeaderEdits.maxNames) headers, not \(items.count)")
                break
            }
            for (i, item) in items.enumerated() {
                let at = "\(removeField)[\(i)]"
                guard case .string(let name) = item else {
                    problems.add(at, .invalid, "must be a header name, not \(item.typeName)")
                    continue
                }
                if let problem = nameProblem(name) { problems.add(at, .invalid, problem); continue }
                let lower = name.lowercased()
                if setNames.contains(lower) {
                    problems.add(at, .invalid, "\(name) is also in set: a header is either set or removed")
                    continue
                }
                guard removeNames.insert(lower).inserted else {
                    problems.add(at, .duplicate, "header \(name) appears twice (names are case-insensitive)")
                    continue
                }
                remove.append(name)
            }
        case let other?:
            problems.add(removeField, .invalid, "must be an array of header names, such as [\"X-B\"], not \(other.typeName)")
        }
        guard problems.list.count == before else { return nil }
        if set.isEmpty && remove.isEmpty {
            problems.add(prefix, .invalid, "must set or remove at least one header (omit it otherwise)")
            return nil
        }
        return HeaderEdits(set: set, remove: remove)
    }

    func timeouts(_ json: JSONValue, at prefix: String, into problems: inout Problems) -> Timeouts? {
        guard object(json, fields: Timeouts.fields, example: #"{"connect_ms":1000,"read_ms":5000}"#, at: prefix, into: &problems) != nil else {
            return nil
        }
        let before = problems.list.count
        func value(_ key: String, _ range: ClosedRange<Int>) -> Int? {
            guard present(json, key) != nil else { return nil }
            return Validator.integer(json, key, in: range, default: 0, at: prefix, into: &problems)
        }
        let out = Timeouts(connectMs: value("connect_ms", Timeouts.connectRange), sendMs: value("send_ms", Timeouts.sendReadRange),
                           readMs: value("read_ms", Timeouts.sendReadRange))
        guard problems.list.count == before else { return nil }
        if out == Timeouts() {
            problems.add(prefix, .invalid, "must give at least one of connect_ms, send_ms, read_ms (omit it otherwise)")
            return nil
        }
        return out
    }

    func rateLimit(_ json: JSONValue, at prefix: String, into problems: inout Problems) -> RateLimit? {
        guard object(json, fields: RateLimit.fields, example: #"{"rps":10,"burst":20,"key":"ip"}"#, at: prefix, into: &problems) != nil else {
            return nil
        }
        var rps: Int?
        if present(json, "rps") == nil {
            problems.add(join(prefix, "rps"), .required, "is required (requests per second, \(RateLimit.rpsRange.lowerBound)-\(RateLimit.rpsRange.upperBound))")
        } else {
            rps = Validator.integer(json, "rps", in: RateLimit.rpsRange, default: 1, at: prefix, into: &problems)
        }
        let burst = Validator.integer(json, "burst", in: RateLimit.burstRange, default: 0, at: prefix, into: &problems)
        var key: RateLimit.Key? = .ip
        if let given = string(json, "key", required: false, at: prefix, into: &problems) {
            if let text = given, text != "ip" {
                let name = text.hasPrefix("header:") ? String(text.dropFirst("header:".count)) : nil
                if let name, Tokens.isHeaderName(name) {
                    key = .header(name)
                } else {
                    problems.add(join(prefix, "key"), .invalid, "'\(text)' must be \"ip\" or \"header:NAME\"")
                    key = nil
                }
            }
        } else {
            key = nil
        }
        guard let rps, let burst, let key else { return nil }
        return RateLimit(rps: rps, burst: burst, key: key)
    }

    func ranges(_ json: JSONValue, at prefix: String, into problems: inout Problems) -> [CIDR]? {
        guard case .array(let items) = json else {
            problems.add(prefix, .invalid, "must be an array of addresses or CIDR ranges, such as [\"10.0.0.0/8\"], not \(json.typeName)")
            return nil
        }
        guard items.count <= RoutePolicies.maxAddressRanges else {
            problems.add(prefix, .invalid, "must have at most \(RoutePolicies.maxAddressRanges) entries, not \(items.count)")
            return nil
        }
        let before = problems.list.count
        var out: [CIDR] = []
        var first: [CIDR: Int] = [:]
        for (i, item) in items.enumerated() {
            let at = "\(prefix)[\(i)]"
            guard case .string(let text) = item else {
                problems.add(at, .invalid, "must be a string such as \"10.0.0.0/8\", not \(item.typeName)")
                continue
            }
            switch CIDR.parse(text) {
            case .success(let range):
                if let j = first[range] {
                    problems.add(at, .duplicate, "'\(text)' appears twice (also \(prefix)[\(j)])")
                } else {
                    first[range] = i
                    out.append(range)
                }
            case .failure(let error):
                problems.add(at, .invalid, "'\(text)': \(error.message)")
            }
        }
        return problems.list.count == before ? out : nil
    }

    func redirect(_ json: JSONValue, at prefix: String, into problems: inout Problems) -> Redirect? {
        let example = #"{"to":"https://example.com/new","status":301}"#
        guard object(json, fields: Redirect.fields, example: example, at: prefix, into: &problems) != nil else { return nil }
        let before = problems.list.count
        let keepPath = bool(json, "keep_path", default: false, at: prefix, into: &problems)
        var to: String?
        let toField = join(prefix, "to")
        if let given = string(json, "to", required: true, at: prefix, into: &problems), let text = given {
            if let problem = Self.redirectTargetProblem(text) {
                problems.add(toField, .invalid, "'\(text)' \(problem)")
            } else if keepPath == true, text.contains("?") || text.contains("#") {
                problems.add(toField, .invalid, "'\(text)' must not contain a query or fragment with keep_path (the request's path and query are appended)")
            } else {
                to = text
            }
        }
        var status: Int? = 301
        switch present(json, "status") {
        case nil: break
        case .integer(let v)? where Redirect.statuses.contains(Int(v)): status = Int(v)
        default:
            status = nil
            problems.add(join(prefix, "status"), .invalid, "must be one of \(Redirect.statuses.map(String.init).joined(separator: ", "))")
        }
        guard problems.list.count == before, let to, let status, let keepPath else { return nil }
        return Redirect(to: to, status: status, keepPath: keepPath)
    }

    static func redirectTargetProblem(_ text: String) -> String? {
        if text.isEmpty { return "must not be empty" }
        if text.utf8.count > Redirect.maxLength { return "must be at most \(Redirect.maxLength) bytes" }
        if text.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F || (0x80...0x9F).contains($0.value) || $0.properties.isWhitespace }) {
            return "must not contain spaces or control characters"
        }
        let lower = text.lowercased()
        for scheme in ["http://", "https://"] where lower.hasPrefix(scheme) {
            let rest = text.dropFirst(scheme.count)
            let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            if authority.isEmpty { return "has no host after \(scheme)" }
            return nil
        }
        if text.hasPrefix("//") { return "must be an http:// or https:// URL or a path starting with a single /" }
        if text.hasPrefix("/") { return nil }
        return "must be an http:// or https:// URL or a path starting with /"
    }
}
