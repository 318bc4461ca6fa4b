// What a change would do, for dry runs and the history (docs/change-management.md): the
// field-by-field diff of two documents, and the routing impact of a whole configuration,
// by the edges' routing rules (lua/README.md, "Routing"): a host is a bucket of its own (no
// fall-through), then the exact path, else the longest literal prefix, else regexes by
// priority; ties go to the higher priority, then the smaller id. Pure: no I/O.

/// One field that differs between two documents; nil = absent on that side.
public struct FieldChange: Sendable, Equatable {
    /// `priority`, `endpoints[1].weight`, `hsts.max_age_s`.
    public var field: String
    public var before: JSONValue?
    public var after: JSONValue?

    public init(field: String, before: JSONValue?, after: JSONValue?) {
        self.field = field
        self.before = before
        self.after = after
    }
}

public enum DocumentDiff {
    /// The fields that differ, in document order (objects by sorted key, arrays by index when
    /// both have the same length, else the whole array). Top-level `ignoring` members (the
    /// stored `version`) are left out.
    public static func fields(_ before: JSONValue?, _ after: JSONValue?, ignoring: Set<String> = ["version"]) -> [FieldChange] {
        var out: [FieldChange] = []
        walk(before, after, path: "", ignoring: ignoring, into: &out)
        return out
    }

    private static func walk(_ a: JSONValue?, _ b: JSONValue?, path: String, ignoring: Set<String>, into out: inout [FieldChange]) {
        switch (a, b) {
        case (.object(let x)?, .object(let y)?):
            var keys = Set(x.map(\.key)).union(y.map(\.key))
            if path.isEmpty { keys.subtract(ignoring) }
            for key in keys.sorted() {
                walk(a?[key], b?[key], path: path.isEmpty ? key : path + "." + key, ignoring: [], into: &out)
            }
        case (.array(let x)?, .array(let y)?) where x.count == y.count && !path.isEmpty:
            for i in x.indices { walk(x[i], y[i], path: "\(path)[\(i)]", ignoring: [], into: &out) }
        default:
            if a != b { out.append(FieldChange(field: path.isEmpty ? "." : path, before: a, after: b)) }
        }
    }
}

/// A route no request reaches: another route wins every request it would match.
public struct RouteShadow: Sendable, Equatable {
    public var route: String
    /// The route that wins instead (nil: no single one, e.g. regexes behind a catch-all).
    public var by: String?
    public var reason: String

    public init(route: String, by: String?, reason: String) {
        self.route = route
        self.by = by
        self.reason = reason
    }
}

/// A route some of whose upstreams have no endpoint that can take a request.
public struct RouteWithoutEndpoints: Sendable, Equatable {
    public var route: String
    public var upstreams: [String]

    public init(route: String, upstreams: [String]) {
        self.route = route
        self.upstreams = upstreams
    }
}

public enum RoutingImpact {
    /// Does `a` win a tie against `b` (higher priority, then smaller id)?
    static func wins(_ a: Route, over b: Route) -> Bool {
        a.priority != b.priority ? a.priority > b.priority : a.id < b.id
    }

    /// Every route that is shadowed (another route wins every request it would match) or
    /// unreachable, by id. Only certain cases are reported, never a guess: the same exact
    /// path; the same literal prefix where the winner matches at least every path the loser
    /// does (`prefix` covers `segment_prefix`, not the other way round); the same regex; and
    /// regexes of a host that has a `/` prefix route (every path matches a literal route
    /// first, so regexes are never tried).
    public static func shadowed(_ routes: [Route]) -> [RouteShadow] {
        var hosts: [String: [Route]] = [:]
        for route in routes { hosts[route.host + "\u{0}" + (route.wildcard?.rawValue ?? ""), default: []].append(route) }
        var out: [RouteShadow] = []
        for (_, group) in hosts {
            let catchAll = group.filter { $0.match != .regex && $0.match != .exact && $0.path == "/" }
            for route in group {
                let rivals = group.filter { $0.id != route.id && wins($0, over: route) }
                switch route.match {
                case .exact:
                    if let winner = best(rivals.filter { $0.match == .exact && $0.path == route.path }) {
                        out.append(
                            RouteShadow(
                                route: route.id, by: winner.id,
                                reason:
                                    "the same exact path \(route.path) on the same host, and \(winner.id) wins the tie (priority, then id)")
                        )
                    }
                case .prefix, .segmentPrefix:
                    let covering = rivals.filter {
                        $0.path == route.path && ($0.match == .prefix || ($0.match == .segmentPrefix && route.match == .segmentPrefix))
                    }
                    if let winner = best(covering) {
                        out.append(
                            RouteShadow(
                                route: route.id, by: winner.id,
                                reason:
                                    "the same prefix \(route.path) on the same host, matching at least the same paths, and \(winner.id) wins the tie (priority, then id)"
                            ))
                    }
                case .regex:
                    if let first = catchAll.min(by: { $0.id < $1.id }) {
                        out.append(
                            RouteShadow(
                                route: route.id, by: first.id,
                                reason:
                                    "regex routes are tried only when no literal route matches, and \(first.id) (prefix /) matches every path of this host"
                            ))
                    } else if let winner = best(rivals.filter { $0.match == .regex && $0.path == route.path }) {
                        out.append(
                            RouteShadow(
                                route: route.id, by: winner.id,
                                reason: "the same regex on the same host, and \(winner.id) is tried first (priority, then id)"))
                    }
                }
            }
        }
        return out.sorted { $0.route < $1.route }
    }

    private static func best(_ routes: [Route]) -> Route? {
        routes.min { wins($0, over: $1) }
    }

    /// Upstreams without a single endpoint (every request to them fails).
    public static func upstreamsWithoutEndpoints(_ upstreams: [Upstream]) -> [String] {
        upstreams.filter { $0.endpoints.isEmpty }.map(\.name).sorted()
    }

    /// Routes whose upstreams (any of them) have no endpoint that may take a request: none
    /// at all, or every checked endpoint marked `down` by the prober (`down`: upstream name ->
    /// the addresses whose health record says down). Endpoints exempt from the active check
    /// (`health_check: false`), and those without a record, count as able to.
    public static func routesWithoutHealthyEndpoints(
        _ routes: [Route], upstreams: [String: Upstream], down: [String: Set<String>]
    ) -> [RouteWithoutEndpoints] {
        var out: [RouteWithoutEndpoints] = []
        for route in routes {
            let failing = Array(Set(route.upstreams)).sorted().filter { name in
                guard let upstream = upstreams[name] else { return true }
                let marked = down[name] ?? []
                return !upstream.endpoints.contains { endpoint in
                    upstream.healthCheck == nil || !endpoint.activeCheck || !marked.contains(endpoint.address.description)
                }
            }
            if !failing.isEmpty { out.append(RouteWithoutEndpoints(route: route.id, upstreams: failing)) }
        }
        return out.sorted { $0.route < $1.route }
    }
}
