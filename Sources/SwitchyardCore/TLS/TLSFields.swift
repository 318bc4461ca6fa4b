// TLS-related members of routes and upstreams.
//
// Route:    "https_redirect": true      plain-HTTP requests get 308 to https://<host><uri>
//           "hsts": {"max_age_s":31536000,"include_subdomains":false,"preload":false}
//                                        Strict-Transport-Security on HTTPS responses only
//           "require_sni_match": true   over HTTPS, a request whose Host differs from the
//                                        TLS SNI name gets 421 (no domain fronting)
// Upstream: "scheme": "https"           the edge connects to the endpoints over TLS
//           "tls_server_name": "name"   SNI (and verified name); default: the request's host
//           "tls_verify": true          verify the endpoint's certificate against the edge's
//                                        CA bundle (switchyard edge --upstream-ca)
// Members with their default value are not written, so documents of objects that use none
// of this stay byte-identical to those written before it existed (no spurious changes, the
// same digest). Parsed with the same rules for request bodies (strict) and stored documents
// (lenient).

/// `Strict-Transport-Security` of a route.
public struct HSTS: Sendable, Hashable {
    public var maxAgeSeconds: Int
    public var includeSubdomains: Bool
    public var preload: Bool

    public init(maxAgeSeconds: Int = HSTS.defaultMaxAge, includeSubdomains: Bool = false, preload: Bool = false) {
        self.maxAgeSeconds = maxAgeSeconds
        self.includeSubdomains = includeSubdomains
        self.preload = preload
    }

    public static let defaultMaxAge = 31_536_000
    /// Two years, the longest value browsers' preload lists ask for.
    public static let maxAgeRange = 0...63_072_000
    public static let fields: Set<String> = ["max_age_s", "include_subdomains", "preload"]

    /// The header value, e.g. `max-age=31536000; includeSubDomains`.
    public var headerValue: String {
        "max-age=\(maxAgeSeconds)" + (includeSubdomains ? "; includeSubDomains" : "") + (preload ? "; preload" : "")
    }

    public var document: JSONValue {
        ["max_age_s": .integer(Int64(maxAgeSeconds)), "include_subdomains": .bool(includeSubdomains), "preload": .bool(preload)]
    }
}

/// The TLS members of a route.
public struct RouteTLS: Sendable, Hashable {
    /// Requests that arrived over plain HTTP are redirected (308) to HTTPS.
    public var httpsRedirect: Bool
    public var hsts: HSTS?
    /// Over HTTPS, requests whose Host is not the TLS SNI name are answered 421 Misdirected
    /// Request (routing is by Host otherwise, whatever the SNI: domain fronting).
    public var requireSNIMatch: Bool

    public init(httpsRedirect: Bool = false, hsts: HSTS? = nil, requireSNIMatch: Bool = false) {
        self.httpsRedirect = httpsRedirect
        self.hsts = hsts
        self.requireSNIMatch = requireSNIMatch
    }

    public static let fields: Set<String> = ["https_redirect", "hsts", "require_sni_match"]

    /// The members to add to the route's document (none when everything is default).
    public var members: [(key: String, value: JSONValue)] {
        var out: [(key: String, value: JSONValue)] = []
        if httpsRedirect { out.append(("https_redirect", true)) }
        if let hsts { out.append(("hsts", hsts.document)) }
        if requireSNIMatch { out.append(("require_sni_match", true)) }
        return out
    }

    /// nil when a member is wrong (the problems say which).
    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> RouteTLS? {
        let before = reader.count
        var tls = RouteTLS()
        switch json["https_redirect"] {
        case nil, .null?: break
        case .bool(let b)?: tls.httpsRedirect = b
        case let other?: reader.add(join(prefix, "https_redirect"), .invalid, "must be true or false, not \(other.typeName)")
        }
        if let requireSNIMatch = reader.bool(json, "require_sni_match", default: false, at: prefix) {
            tls.requireSNIMatch = requireSNIMatch
        }
        if let value = json["hsts"], value != .null {
            let at = join(prefix, "hsts")
            if case .object(let members) = value {
                reader.rejectUnknown(members, allowed: HSTS.fields, at: at)
                let maxAge = reader.integer(value, "max_age_s", in: HSTS.maxAgeRange, default: HSTS.defaultMaxAge, at: at)
                let include = reader.bool(value, "include_subdomains", default: false, at: at)
                let preload = reader.bool(value, "preload", default: false, at: at)
                if let maxAge, let include, let preload {
                    if preload && (maxAge < HSTS.defaultMaxAge || !include) && reader.strict {
                        reader.add(
                            join(at, "preload"), .invalid,
                            "preload needs max_age_s of at least \(HSTS.defaultMaxAge) and include_subdomains: true")
                    } else {
                        tls.hsts = HSTS(maxAgeSeconds: maxAge, includeSubdomains: include, preload: preload)
                    }
                }
            } else {
                reader.add(at, .invalid, "must be a JSON object such as {\"max_age_s\":31536000}, not \(value.typeName)")
            }
        }
        return reader.count == before ? tls : nil
    }
}

/// How an edge talks to an upstream's endpoints.
public enum UpstreamScheme: String, Sendable, CaseIterable {
    case http
    case https
}

/// The TLS members of an upstream.
public struct UpstreamTLS: Sendable, Hashable {
    public var scheme: UpstreamScheme
    /// SNI sent to the endpoints and the name verified; nil = the request's host.
    public var serverName: String?
    /// Verify the endpoints' certificates (against the edge's CA bundle).
    public var verify: Bool

    public init(scheme: UpstreamScheme = .http, serverName: String? = nil, verify: Bool = false) {
        self.scheme = scheme
        self.serverName = serverName
        self.verify = verify
    }

    public static let fields: Set<String> = ["scheme", "tls_server_name", "tls_verify", "ca_file"]

    public var members: [(key: String, value: JSONValue)] {
        guard scheme == .https else { return [] }
        var out: [(key: String, value: JSONValue)] = [("scheme", .string(scheme.rawValue))]
        if let serverName { out.append(("tls_server_name", .string(serverName))) }
        if verify { out.append(("tls_verify", true)) }
        return out
    }

    /// `proto`: the upstream's protocol (UpstreamProtocol.swift). "grpcs" is TLS to the
    /// endpoints as "scheme": "https" is (tls_server_name and tls_verify apply; the tls
    /// value then has scheme https, not written to the document); with "grpc" or "grpcs"
    /// "scheme": "https" is refused.
    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader, protocol proto: UpstreamProtocol = .http)
        -> UpstreamTLS?
    {
        let before = reader.count
        var tls = UpstreamTLS()
        if let value = json["scheme"], value != .null {
            if case .string(let s) = value, let scheme = UpstreamScheme(rawValue: s) {
                if proto.isGRPC && scheme == .https {
                    // gRPC: the protocol says whether TLS is used
                    reader.add(
                        join(prefix, "scheme"), .invalid,
                        "\"https\" is for HTTP upstreams; gRPC over TLS is \"protocol\": \"grpcs\" (leave scheme out)")
                } else {
                    tls.scheme = scheme
                }
            } else {
                reader.add(
                    join(prefix, "scheme"), .invalid, "must be one of \(UpstreamScheme.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        if proto == .grpcs { tls.scheme = .https }
        let httpsOnly = proto.isGRPC ? "only applies with \"protocol\": \"grpcs\"" : "only applies with \"scheme\": \"https\""
        if let value = json["tls_server_name"], value != .null {
            let field = join(prefix, "tls_server_name")
            if reader.strict && tls.scheme != .https {
                reader.add(field, .invalid, httpsOnly)
            } else if case .string(let s) = value {
                switch HostNames.canonical(s) {
                case .success(let name) where !name.hasPrefix("*."): tls.serverName = name
                case .success: reader.add(field, .invalid, "'\(s)' must be a host name, not a wildcard")
                case .failure(let error): reader.add(field, .invalid, "'\(s)' \(error.message)")
                }
            } else {
                reader.add(field, .invalid, "must be a string, not \(value.typeName)")
            }
        }
        if let value = json["tls_verify"], value != .null {
            let field = join(prefix, "tls_verify")
            if case .bool(let b) = value {
                if b && reader.strict && tls.scheme != .https { reader.add(field, .invalid, httpsOnly) } else { tls.verify = b }
            } else {
                reader.add(field, .invalid, "must be true or false, not \(value.typeName)")
            }
        }
        if reader.strict, json["ca_file"] != nil {
            reader.add(
                join(prefix, "ca_file"), .invalid,
                "per-upstream CA files are not supported: edges verify against one CA bundle, "
                    + "given by `switchyard edge --upstream-ca PATH` (add your CA to it)")
        }
        if tls.scheme != .https { tls = UpstreamTLS() }  // lenient reads: http ignores the rest
        return reader.count == before ? tls : nil
    }
}
