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
}
