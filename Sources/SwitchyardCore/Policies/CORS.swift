// `cors`: cross-origin resource sharing answered by the edge (docs/traffic-policies.md,
// "CORS"). Preflights (OPTIONS with Access-Control-Request-Method) never reach the
// upstream; other requests from an allowed origin get the Access-Control-* headers on
// their response. The stored object carries every effective value (defaults filled in).

/// A route's CORS policy. A value has passed validation.
public struct CORS: Sendable, Hashable {
    /// `["*"]` (any origin) or origins `scheme://host[:port]`, lowercase, no path.
    public var origins: [String]
    public var methods: [String]
    /// Request headers a preflight may ask for; `["*"]` any (not with credentials).
    public var headers: [String]
    public var exposeHeaders: [String]
    public var credentials: Bool
    public var maxAgeSeconds: Int

    public init(
        origins: [String], methods: [String] = CORS.defaultMethods, headers: [String] = [], exposeHeaders: [String] = [],
        credentials: Bool = false, maxAgeSeconds: Int = CORS.defaultMaxAge
    ) {
        self.origins = origins
        self.methods = methods
        self.headers = headers
        self.exposeHeaders = exposeHeaders
        self.credentials = credentials
        self.maxAgeSeconds = maxAgeSeconds
    }

    public static let fields: Set<String> = ["origins", "methods", "headers", "expose_headers", "credentials", "max_age_s"]
    public static let defaultMethods = ["GET", "HEAD", "POST"]
    public static let defaultMaxAge = 600
    public static let maxAgeRange = 0...86_400
    public static let maxOrigins = 64
    public static let maxNames = 32
    public static let maxOriginLength = 300

    public var document: JSONValue {
        func list(_ items: [String]) -> JSONValue { .array(items.map { .string($0) }) }
        return .object([
            ("origins", list(origins)), ("methods", list(methods)), ("headers", list(headers)),
            ("expose_headers", list(exposeHeaders)), ("credentials", .bool(credentials)),
            ("max_age_s", .integer(Int64(maxAgeSeconds))),
        ])
    }

    /// Why `origin` is not `scheme://host[:port]` as a browser sends it, or nil.
    static func originProblem(_ origin: String) -> String? {
        let rule =
            "must be an origin as browsers send it: http:// or https://, a lowercase host name, IPv4 or [IPv6] address, "
            + "an optional port, no path"
        if origin.utf8.count > maxOriginLength { return "must be at most \(maxOriginLength) bytes" }
        let rest: Substring
        if origin.hasPrefix("https://") {
            rest = origin.dropFirst(8)
        } else if origin.hasPrefix("http://") {
            rest = origin.dropFirst(7)
        } else {
            return rule
        }
        var host = rest
        var port: Substring? = nil
        if rest.hasPrefix("[") {
            // an IPv6 origin: as browsers serialize it (lowercase, compressed, RFC 5952), or
            // it never equals an Origin header
            guard let close = rest.firstIndex(of: "]") else { return rule }
            let literal = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            guard !literal.contains("."), let bytes = EndpointAddress.parseIPv6(literal) else {
                return "has an invalid IPv6 address (write it as browsers send it, e.g. http://[::1]:3000)"
            }
            if EndpointAddress.formatIPv6(bytes) != literal {
                return "must write the IPv6 address as browsers send it: [\(EndpointAddress.formatIPv6(bytes))]"
            }
            if after.isEmpty { return nil }
            guard after.hasPrefix(":") else { return rule }
            if case .failure = EndpointAddress.parsePort(after.dropFirst()) { return "has an invalid port (1-65535, no leading zeros)" }
            return nil
        }
        if let colon = rest.firstIndex(of: ":") {
            host = rest[..<colon]
            port = rest[rest.index(after: colon)...]
        }
        if let port {
            guard (1...5).contains(port.utf8.count), port.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), port.first != "0",
                let n = Int(port), n <= 65535
            else { return "has an invalid port (1-65535, no leading zeros)" }
        }
        guard !host.isEmpty, host.utf8.count <= 253,
            host.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E }),
            !host.hasPrefix("."), !host.hasSuffix("."), !host.contains("..")
        else { return rule }
        return nil
    }

    static func isMethod(_ s: String) -> Bool {
        (1...32).contains(s.utf8.count) && s.utf8.allSatisfy { $0 >= 0x41 && $0 <= 0x5A }
    }
}

extension CORS {
    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> CORS? {
        let example = #"{"origins":["https://app.example.com"],"methods":["GET","POST"],"credentials":true}"#
        guard reader.object(json, fields: CORS.fields, example: example, at: prefix) != nil else { return nil }
        let before = reader.count

        // a list of strings, each checked; duplicates (case-insensitive) refused
        func strings(_ key: String, max: Int, required: Bool, check: (String) -> String?) -> [String]? {
            let at = join(prefix, key)
            switch present(json, key) {
            case nil:
                if required { reader.add(at, .required, "is required: the origins allowed, or [\"*\"]") }
                return nil
            case .array(let items)?:
                if items.count > max {
                    reader.add(at, .invalid, "must have at most \(max) entries, not \(items.count)")
                    return nil
                }
                var out: [String] = []
                var seen: Set<String> = []
                for (i, item) in items.enumerated() {
                    let itemAt = "\(at)[\(i)]"
                    guard case .string(let s) = item else {
                        reader.add(itemAt, .invalid, "must be a string, not \(item.typeName)")
                        continue
                    }
                    if let problem = check(s) {
                        reader.add(itemAt, .invalid, "'\(s)' \(problem)")
                        continue
                    }
                    guard seen.insert(s.lowercased()).inserted else {
                        reader.add(itemAt, .duplicate, "'\(s)' appears twice")
                        continue
                    }
                    out.append(s)
                }
                return out
            case let other?:
                reader.add(at, .invalid, "must be an array of strings, not \(other.typeName)")
                return nil
            }
        }
        let origins =
            strings("origins", max: maxOrigins, required: true) { s in
                s == "*" ? nil : originProblem(s)
            } ?? []
        if origins.count > 1, origins.contains("*") {
            reader.add(join(prefix, "origins"), .invalid, "\"*\" stands for every origin: give it alone, or list the origins")
        }
        if present(json, "origins") != nil, origins.isEmpty, reader.count == before {
            reader.add(join(prefix, "origins"), .invalid, "must name at least one origin, or [\"*\"]")
        }
        let methods =
            strings("methods", max: maxNames, required: false) { s in
                isMethod(s) ? nil : "is not a method (1-32 upper-case letters, such as GET)"
            } ?? defaultMethods
        let headerRule = { (s: String) -> String? in Tokens.isHeaderName(s) ? nil : "is not a header name (\(Tokens.headerRule))" }
        let headers = strings("headers", max: maxNames, required: false, check: headerRule) ?? []
        if headers.count > 1, headers.contains("*") {
            reader.add(join(prefix, "headers"), .invalid, "\"*\" stands for every header: give it alone, or list the headers")
        }
        let expose = strings("expose_headers", max: maxNames, required: false, check: headerRule) ?? []
        let credentials = reader.bool(json, "credentials", default: false, at: prefix)
        let maxAge = reader.integer(json, "max_age_s", in: maxAgeRange, default: defaultMaxAge, at: prefix)
        if credentials == true {
            // browsers refuse a wildcard answer to a request with credentials
            if origins == ["*"] {
                reader.add(
                    join(prefix, "credentials"), .invalid,
                    "cannot be true with origins [\"*\"]: browsers refuse credentials for a wildcard origin; list the origins")
            } else if headers == ["*"] {
                reader.add(
                    join(prefix, "credentials"), .invalid,
                    "cannot be true with headers [\"*\"]: browsers read \"*\" literally with credentials; list the headers")
            }
        }
        guard reader.count == before, let credentials, let maxAge else { return nil }
        return CORS(
            origins: origins, methods: methods, headers: headers, exposeHeaders: expose, credentials: credentials, maxAgeSeconds: maxAge)
    }
}
