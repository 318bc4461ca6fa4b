// Traffic policies (docs/traffic-policies.md): the balancing members of upstreams
// (`hash_on`, `sticky`: Balancing.swift) and the per-route options (`split`,
// `split_sticky`, `canary`, `rewrite`, `request_headers`, `response_headers`, `timeouts`,
// `max_body_bytes`, `rate_limit`, `allow`, `deny`, `redirect`, `cors`, `error_pages`,
// `gzip`, `basic_auth`, `jwt`, `forward_auth`), one subject per file in this folder. This file holds the route's set of them and decides the route's action.
//
// Each is parsed once, through a `FieldReader`, with the same rules for request bodies
// (strict: unknown members are problems) and stored documents (lenient: unknown members
// ignored). Absent options are not written to documents, so a route or upstream that uses
// none of them keeps the exact document (and digest) it had before they existed. Objects
// whose members have defaults are written with every effective value, so edges never need
// the defaults.

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
    public var cors: CORS?
    public var errorPages: ErrorPages?
    public var gzip: Gzip?
    public var basicAuth: BasicAuth?
    public var jwt: JWTAuth?
    public var forwardAuth: ForwardAuth?

    public init() {}

    public static let maxBodyRange = 0...104_857_600
    public static let maxAddressRanges = 256
    public static let fields: Set<String> = [
        "split", "split_sticky", "canary", "rewrite", "request_headers", "response_headers", "timeouts", "max_body_bytes",
        "rate_limit", "allow", "deny", "redirect", "cors", "error_pages", "gzip", "basic_auth", "jwt",
        "forward_auth",
    ]
    /// Members that need an upstream, refused on redirect routes.
    static let proxyOnly = [
        "upstream", "split", "split_sticky", "canary", "rewrite", "request_headers", "timeouts", "max_body_bytes", "gzip",
    ]

    /// The members to add to the route's document (none for a route without policies).
    public var members: [(key: String, value: JSONValue)] { members(storage: false) }

    /// `storage`: HS256 secrets in their stored form (JWTAuth.document(storage:)).
    public func members(storage: Bool) -> [(key: String, value: JSONValue)] {
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
        if let cors { out.append(("cors", cors.document)) }
        if let errorPages { out.append(("error_pages", errorPages.document)) }
        if let gzip { out.append(("gzip", gzip.document)) }
        if let basicAuth { out.append(("basic_auth", basicAuth.document)) }
        if let jwt { out.append(("jwt", jwt.document(storage: storage))) }
        if let forwardAuth { out.append(("forward_auth", forwardAuth.document)) }
        return out
    }

    /// Parses the policy members of route object `json` and checks the route's action:
    /// exactly one of `upstream` (given when `hasUpstream`), `split` and `redirect`.
    /// `regex` compiles rewrite patterns (nil: not checked). nil when something is wrong.
    static func parse(
        _ json: JSONValue, match: MatchKind?, hasUpstream: Bool, regex: (any RegexChecker)?, at prefix: String,
        into reader: inout FieldReader
    ) -> RoutePolicies? {
        let before = reader.count
        var out = RoutePolicies()
        let field = { (name: String) in join(prefix, name) }

        // the action, and members that do not go with it
        let isRedirect = present(json, "redirect") != nil
        let hasSplit = present(json, "split") != nil
        var skip: Set<String> = []
        if isRedirect {
            for name in proxyOnly where name == "upstream" ? hasUpstream : present(json, name) != nil {
                reader.add(field(name), .invalid, "does not apply to a redirect route (it sends no request upstream)")
                skip.insert(name)
            }
        } else if hasUpstream && hasSplit {
            reader.add(field("split"), .invalid, "a route has exactly one action: give either upstream or split, not both")
            skip.insert("split")
        } else if !hasUpstream && !hasSplit {
            reader.add(field("upstream"), .required, "is required (or give split, or redirect)")
        }
        if !hasSplit, !skip.contains("split_sticky"), present(json, "split_sticky") != nil {
            reader.add(field("split_sticky"), .invalid, "only applies with split")
            skip.insert("split_sticky")
        }
        func value(_ name: String) -> JSONValue? { skip.contains(name) ? nil : present(json, name) }

        if let v = value("split") { out.split = SplitTarget.parseList(v, at: field("split"), into: &reader) }
        if let v = value("split_sticky") { out.splitSticky = SplitSticky.parse(v, at: field("split_sticky"), into: &reader) }
        if let v = value("canary") { out.canary = Canary.parse(v, at: field("canary"), into: &reader) }
        if let v = value("rewrite") { out.rewrite = Rewrite.parse(v, match: match, regex: regex, at: field("rewrite"), into: &reader) }
        if let v = value("request_headers") {
            out.requestHeaders = HeaderEdits.parse(v, refused: HeaderEdits.refusedInRequest, at: field("request_headers"), into: &reader)
        }
        if let v = value("response_headers") {
            out.responseHeaders = HeaderEdits.parse(v, refused: HeaderEdits.refusedInResponse, at: field("response_headers"), into: &reader)
        }
        if let v = value("timeouts") { out.timeouts = Timeouts.parse(v, at: field("timeouts"), into: &reader) }
        if value("max_body_bytes") != nil {
            out.maxBodyBytes = reader.integer(json, "max_body_bytes", in: maxBodyRange, default: 0, at: prefix)
        }
        if let v = value("rate_limit") { out.rateLimit = RateLimit.parse(v, at: field("rate_limit"), into: &reader) }
        if let v = value("allow") { out.allow = addressRanges(v, at: field("allow"), into: &reader) ?? [] }
        if let v = value("deny") { out.deny = addressRanges(v, at: field("deny"), into: &reader) ?? [] }
        if let v = value("redirect") { out.redirect = Redirect.parse(v, at: field("redirect"), into: &reader) }
        if let v = value("cors") { out.cors = CORS.parse(v, at: field("cors"), into: &reader) }
        if let v = value("error_pages") { out.errorPages = ErrorPages.parse(v, at: field("error_pages"), into: &reader) }
        if let v = value("gzip") { out.gzip = Gzip.parse(v, at: field("gzip"), into: &reader) }
        // one authentication per route
        let auth = ["basic_auth", "jwt", "forward_auth"].filter { value($0) != nil }
        if auth.count > 1 {
            reader.add(field(auth[1]), .invalid, "a route has one authentication: give one of basic_auth, jwt and forward_auth")
        } else if let v = value("basic_auth") {
            out.basicAuth = BasicAuth.parse(v, at: field("basic_auth"), into: &reader)
        } else if let v = value("jwt") {
            out.jwt = JWTAuth.parse(v, at: field("jwt"), into: &reader)
        } else if let v = value("forward_auth") {
            out.forwardAuth = ForwardAuth.parse(v, at: field("forward_auth"), into: &reader)
        }
        return reader.count == before ? out : nil
    }
}
