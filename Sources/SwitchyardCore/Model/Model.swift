// The configuration model: routes, upstreams and their endpoints, as validated values.
//
// A value of these types has passed validation (see `Validator`); the JSON encoding in
// `Documents/Documents.swift` is the one stored in Redis (the API answers it with its version).

/// How a route's `path` is compared with the request path.
public enum MatchKind: String, Sendable, CaseIterable, Codable {
    /// The request path equals `path`.
    case exact
    /// The request path starts with `path` (the default).
    case prefix
    /// `path` is a PCRE pattern searched in the request path.
    case regex
    /// The request path is `path` or continues it after a `/`: `/foo` matches `/foo`, `/foo/`
    /// and `/foo/bar`, not `/foobar` (Kubernetes' Prefix). Stored without a trailing `/`.
    case segmentPrefix = "segment_prefix"

    /// Whether `path` is a literal path (exact, prefix, segment_prefix), not a regex.
    public var isLiteral: Bool { self != .regex }
}

/// How far a wildcard host (`*.example.com`) reaches.
public enum HostWildcard: String, Sendable, CaseIterable {
    /// Exactly one label in front of the suffix: `*.foo.com` matches `bar.foo.com`, not
    /// `a.bar.foo.com` (Kubernetes Ingress wildcards). Without it a wildcard matches any depth.
    case oneLabel = "one_label"
}

/// Who wrote an object and where it came from (docs: "Ownership"). Set by writers such as
/// the Kubernetes source, never by an admin API request; edges ignore both.
public enum Ownership {
    /// `owner` and `source`: printable ASCII, 1-253 bytes.
    public static let maxLength = 253
    public static let fields: Set<String> = ["owner", "source"]

    /// nil when `value` may be an owner or source.
    public static func problem(_ value: String) -> String? {
        let bytes = value.utf8
        guard (1...maxLength).contains(bytes.count) else { return "must be 1-\(maxLength) bytes" }
        guard bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return "must be printable ASCII" }
        return nil
    }
}

/// How an upstream spreads requests over its endpoints. An enum so new strategies can be
/// added without changing stored documents of the old ones.
public enum Balance: String, Sendable, CaseIterable, Codable {
    /// Smooth weighted round robin (the default).
    case roundRobin = "round_robin"
    /// Fewest active requests per unit of weight, per edge.
    case leastConn = "least_conn"
    /// Consistent hash of the client address.
    case ipHash = "ip_hash"
    /// Consistent hash of `hash_on`.
    case hash
    /// Cookie affinity (`sticky`).
    case sticky
}

/// One backend machine of an upstream.
public struct Endpoint: Sendable, Hashable {
    /// The canonical address, e.g. `10.0.0.1:8080` or `[2001:db8::1]:8080`.
    public var address: EndpointAddress
    /// Relative share of requests, 1-1000.
    public var weight: Int
    /// Whether the upstream's active health check applies (`"health_check": false` exempts
    /// the endpoint: the prober skips it and edges ignore any verdict for it; passive
    /// health still applies).
    public var activeCheck: Bool

    public init(address: EndpointAddress, weight: Int = Endpoint.defaultWeight, activeCheck: Bool = true) {
        self.address = address
        self.weight = weight
        self.activeCheck = activeCheck
    }

    public static let defaultWeight = 1
    public static let weightRange = 1...1000
}

/// A named set of endpoints that routes send traffic to.
public struct Upstream: Sendable, Hashable {
    public var name: String
    public var balance: Balance
    /// May be empty: the edge answers 503 for routes to an upstream without endpoints.
    public var endpoints: [Endpoint]
    /// The active check the prober runs against every endpoint; nil = none.
    public var healthCheck: HealthCheck?
    /// How edges judge endpoints by real traffic.
    public var passive: PassiveHealth
    /// How many other endpoints an edge may try after a failed attempt, 0-10.
    public var retries: Int
    /// What an edge does when every endpoint is marked down.
    public var onAllDown: AllDownPolicy
    /// HTTP or HTTPS to the endpoints, SNI and verification (TLSFields.swift).
    public var tls = UpstreamTLS()
    /// What the endpoints speak: HTTP, or gRPC over h2c or TLS ("protocol";
    /// UpstreamProtocol.swift).
    public var proto: UpstreamProtocol = .http
    /// What `balance: hash` hashes; set exactly when `balance` is `hash` (Policies/Balancing.swift).
    public var hashOn: HashKey?
    /// The affinity cookie; set exactly when `balance` is `sticky`.
    public var sticky: StickyCookie?
    /// Who may change the object (e.g. `k8s/switchyard`) and where it came from (e.g.
    /// `k8s:default/bbs`); nil when not set (Ownership).
    public var owner: String?
    public var source: String?

    public init(
        name: String, balance: Balance = .roundRobin, endpoints: [Endpoint] = [], healthCheck: HealthCheck? = nil,
        passive: PassiveHealth = PassiveHealth(), retries: Int = UpstreamPolicy.defaultRetries, onAllDown: AllDownPolicy = .failOpen
    ) {
        self.name = name
        self.balance = balance
        self.endpoints = endpoints
        self.healthCheck = healthCheck
        self.passive = passive
        self.retries = retries
        self.onAllDown = onAllDown
        if balance == .sticky { self.sticky = StickyCookie() }
    }
}

/// Which requests go to which upstream.
public struct Route: Sendable, Hashable {
    public var id: String
    /// Lowercase host name, or `*.suffix` for any name under suffix.
    public var host: String
    /// Only with a `*.` host: how many labels the wildcard stands for (nil: any number).
    public var wildcard: HostWildcard?
    public var path: String
    public var match: MatchKind
    /// The route's upstream; nil when the route's action is `policies.split` or `policies.redirect`.
    public var upstream: String?
    /// Higher wins when several routes match equally well; -1000...1000.
    public var priority: Int
    /// Redirect to HTTPS, HSTS (TLSFields.swift).
    public var tls = RouteTLS()
    /// Split, canary, rewrite, headers, limits, address lists, redirect (Policies/).
    public var policies = RoutePolicies()
    /// Who may change the object and where it came from; nil when not set (Ownership).
    public var owner: String?
    public var source: String?

    public init(id: String, host: String, path: String, match: MatchKind = .prefix, upstream: String?, priority: Int = 0) {
        self.id = id
        self.host = host
        self.path = path
        self.match = match
        self.upstream = upstream
        self.priority = priority
    }

    /// The upstreams this route sends traffic to (the Function's `refs`), each once.
    public var upstreams: [String] {
        var seen: Set<String> = []
        return upstreamReferences.map(\.upstream).filter { seen.insert($0).inserted }
    }

    /// Every use of an upstream with the field naming it, relative to the route object:
    /// `upstream`, `split[1].upstream`, `canary.upstream`.
    public var upstreamReferences: [(field: String, upstream: String)] {
        var out: [(field: String, upstream: String)] = []
        if let upstream { out.append(("upstream", upstream)) }
        for (i, target) in (policies.split ?? []).enumerated() { out.append(("split[\(i)].upstream", target.upstream)) }
        if let canary = policies.canary { out.append(("canary.upstream", canary.upstream)) }
        return out
    }

    public static let priorityRange = -1000...1000
    public static let maxPathLength = 2048
}

/// An object as stored in Redis: the value and the configuration version it was written at.
public struct Stored<Value: Sendable>: Sendable {
    public var value: Value
    public var version: Int64

    public init(value: Value, version: Int64) {
        self.value = value
        self.version = version
    }
}

extension Stored: Equatable where Value: Equatable {}

/// The kinds of configuration object, as named in keys, the Function and the change stream.
public enum ObjectKind: String, Sendable, CaseIterable {
    case route
    case upstream
    /// A TLS certificate and key the edges serve by SNI (Certificate.swift).
    case certificate
    /// A TCP/UDP service served by `switchyard stream` (StreamService.swift, docs/stream.md);
    /// the edges hold its document for the digest only.
    case stream
}
