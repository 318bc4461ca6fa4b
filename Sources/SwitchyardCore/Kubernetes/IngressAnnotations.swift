// The Ingress annotations switchyard honours, under `nginx.ingress.kubernetes.io/` (and its
// old prefix `ingress.kubernetes.io/`) and `switchyard.io/` (which wins when both are given),
// mapped onto existing route and upstream fields. docs/kubernetes.md has the table.
//
// An annotation under these prefixes that is unknown, or whose value cannot be honoured, is
// reported (a warning: the Ingress is served without it, never silently). Snippet
// annotations (`*-snippet`) are refused with the whole Ingress: they are raw nginx
// configuration, the root of CVE-2021-25742 and CVE-2025-1974, and switchyard has no
// nginx configuration per route to put them in. Values that are well-formed here but break a
// field's rules (a CIDR with host bits, a rate out of range) are caught when the route is
// validated, and the route is skipped with an error naming the annotation.

public struct IngressAnnotations: Sendable, Hashable {
    public static let prefixes = ["nginx.ingress.kubernetes.io/", "ingress.kubernetes.io/", "switchyard.io/"]

    /// Route members (JSON, as the admin API takes them) and the annotation each came from.
    public var routeMembers: [String: Member] = [:]
    /// Upstream members (scheme, balance, sticky, hash_on, retries): an Ingress with any gets
    /// upstreams of its own for its Services (see KubeTranslator).
    var upstreamMembers: [String: Member] = [:]

    /// ssl-redirect as written (nil: the default, on for hosts with a certificate).
    public var sslRedirect: Bool?
    public var forceSSLRedirect = false
    public var useRegex = false
    public var rewriteTarget: String?
    public var canary: CanaryOptions?

    public struct CanaryOptions: Sendable, Hashable {
        public var weight = 0
        public var weightTotal = 100
        public var header: String?
        public var headerValue: String?
        public var cookie: String?
    }

    public struct Member: Sendable, Hashable {
        public var value: JSONValue
        /// The annotation(s) it came from, for problems (comma-separated).
        public var annotation: String

        public static func == (a: Member, b: Member) -> Bool { a.value == b.value && a.annotation == b.annotation }
        public func hash(into hasher: inout Hasher) {
            hasher.combine(annotation)
            hasher.combine(value.canonical)
        }
    }

    /// The upstream policy members as one JSON object (sorted keys): part of an upstream's
    /// identity, so Ingresses with different policies for one Service get different upstreams.
    var upstreamPolicy: JSONValue {
        .object(upstreamMembers.sorted { $0.key < $1.key }.map { ($0.key, $0.value.value) })
    }

    public static let sizeLimit = RoutePolicies.maxBodyRange.upperBound

    /// Parses the annotations of `ingress`. `refused` is set when the Ingress must not be
    /// served at all (a snippet).
    public static func parse(_ annotations: [String: String], object: K8sRef) -> (
        options: IngressAnnotations, problems: [KubeProblem], refused: Bool
    ) {
        var out = IngressAnnotations()
        var problems: [KubeProblem] = []
        var refused = false
        // short name -> (full annotation name, value); switchyard.io/ is read last and wins
        var given: [String: (name: String, value: String)] = [:]
        for (name, value) in annotations.sorted(by: { rank($0.key) < rank($1.key) || (rank($0.key) == rank($1.key) && $0.key < $1.key) }) {
            guard let prefix = prefixes.first(where: { name.hasPrefix($0) }) else { continue }
            given[String(name.dropFirst(prefix.count))] = (name, value)
        }
        func warn(_ name: String, _ message: String, reason: String = "UnsupportedAnnotation") {
            problems.append(KubeProblem(.warning, object, field: annotationField(name), message, reason: reason))
        }
        func flag(_ short: String) -> Bool? {
            guard let (name, value) = given[short] else { return nil }
            switch value.lowercased() {
            case "true": return true
            case "false": return false
            default:
                warn(name, "'\(value)' is not true or false; ignored", reason: "InvalidAnnotation")
                return nil
            }
        }
        func integer(_ short: String, _ range: ClosedRange<Int>) -> (Int, String)? {
            guard let (name, value) = given[short] else { return nil }
            var text = Substring(value.trimmingSpaces)
            if short.hasPrefix("proxy-"), text.hasSuffix("s") { text = text.dropLast() }
            guard let n = Int(text), range.contains(n) else {
                warn(
                    name, "'\(value)' must be a whole number \(range.lowerBound)-\(range.upperBound); ignored", reason: "InvalidAnnotation")
                return nil
            }
            return (n, name)
        }

        for (short, entry) in given.sorted(by: { $0.key < $1.key }) {
            if short.hasSuffix("-snippet") || short == "snippet" {
                problems.append(
                    KubeProblem(
                        .error, object, field: annotationField(entry.name),
                        "snippet annotations are refused (raw nginx configuration: CVE-2021-25742, CVE-2025-1974); the Ingress is not served",
                        reason: "SnippetRefused"))
                refused = true
            } else if !known.contains(short) {
                warn(entry.name, "is not supported by switchyard; ignored (docs/kubernetes.md lists what is)")
            }
        }

        // --- route members
        out.sslRedirect = flag("ssl-redirect")
        out.forceSSLRedirect = flag("force-ssl-redirect") ?? false
        out.useRegex = flag("use-regex") ?? false
        if let (name, value) = given["rewrite-target"] {
            if value.hasPrefix("/") {
                out.rewriteTarget = value
            } else {
                warn(name, "'\(value)' must be a path starting with /; ignored", reason: "InvalidAnnotation")
            }
        }
        if let (name, value) = given["proxy-body-size"] {
            switch parseSize(value) {
            case nil:
                warn(name, "'\(value)' is not a size (e.g. 8m, 512k, 1g); ignored", reason: "InvalidAnnotation")
            case 0?:
                warn(name, "0 (no limit) cannot be honoured: the edge's limit of 100m applies", reason: "PartlyHonoured")
            case let n? where n > sizeLimit:
                warn(name, "'\(value)' is above the edge's limit of 100m, which applies instead", reason: "PartlyHonoured")
            case let n?:
                out.routeMembers["max_body_bytes"] = Member(value: .integer(Int64(n)), annotation: name)
            }
        }
        var timeouts: [(key: String, value: JSONValue)] = []
        var timeoutNames: [String] = []
        for (short, key, range) in [
            ("proxy-connect-timeout", "connect_ms", 1...60), ("proxy-send-timeout", "send_ms", 1...3600),
            ("proxy-read-timeout", "read_ms", 1...3600),
        ] {
            if let (seconds, name) = integer(short, range) {
                timeouts.append((key, .integer(Int64(seconds * 1000))))
                timeoutNames.append(name)
            }
        }
        if !timeouts.isEmpty {
            out.routeMembers["timeouts"] = Member(value: .object(timeouts), annotation: timeoutNames.joined(separator: ","))
        }
        if let (rps, name) = integer("limit-rps", 1...100_000) {
            let multiplier = integer("limit-burst-multiplier", 1...1000)?.0 ?? 5
            out.routeMembers["rate_limit"] = Member(
                value: ["rps": .integer(Int64(rps)), "burst": .integer(Int64(min(rps * multiplier, 100_000))), "key": "ip"],
                annotation: name)
        }
        for (shorts, key) in [(["whitelist-source-range", "allowlist-source-range"], "allow"), (["denylist-source-range"], "deny")] {
            for short in shorts {
                guard let (name, value) = given[short] else { continue }
                let ranges = value.split(separator: ",").map { $0.trimmingSpaces }.filter { !$0.isEmpty }
                if ranges.isEmpty { continue }
                out.routeMembers[key] = Member(value: .array(ranges.map { .string($0) }), annotation: name)
            }
        }
        if let on = flag("hsts"), on {
            var members: [(key: String, value: JSONValue)] = []
            if let (age, _) = integer("hsts-max-age", HSTS.maxAgeRange) { members.append(("max_age_s", .integer(Int64(age)))) }
            if let sub = flag("hsts-include-subdomains") { members.append(("include_subdomains", .bool(sub))) }
            if let preload = flag("hsts-preload") { members.append(("preload", .bool(preload))) }
            out.routeMembers["hsts"] = Member(value: .object(members), annotation: given["hsts"]!.name)
        }

        // --- upstream members
        if let (name, value) = given["backend-protocol"] {
            switch value.uppercased() {
            case "HTTP": break
            case "HTTPS": out.upstreamMembers["scheme"] = Member(value: "https", annotation: name)
            default: warn(name, "'\(value)' is not supported (switchyard speaks HTTP and HTTPS to endpoints); HTTP is used")
            }
        }
        var balance: (String, String)?
        if let (name, value) = given["load-balance"] {
            switch value {
            case "round_robin": balance = ("round_robin", name)
            case "least_conn": balance = ("least_conn", name)
            case "ewma":
                balance = ("least_conn", name)
                warn(name, "ewma is served as least_conn (fewest requests in flight per edge)", reason: "PartlyHonoured")
            default: warn(name, "'\(value)' is not supported (round_robin, least_conn, ewma); round_robin is used")
            }
        }
        if let (name, value) = given["upstream-hash-by"] {
            if let key = hashKey(value) {
                if let (_, other) = balance { warn(other, "overridden by \(name)", reason: "PartlyHonoured") }
                balance = ("hash", name)
                out.upstreamMembers["hash_on"] = Member(value: .string(key), annotation: name)
            } else {
                warn(
                    name,
                    "'\(value)' is not supported (one of $request_uri, $uri, $remote_addr, $binary_remote_addr, $http_NAME, $cookie_NAME)")
            }
        }
        if let (name, value) = given["affinity"] {
            if value == "cookie" {
                if let (_, other) = balance {
                    out.upstreamMembers["hash_on"] = nil
                    warn(other, "overridden by \(name)", reason: "PartlyHonoured")
                }
                balance = ("sticky", name)
                var sticky: [(key: String, value: JSONValue)] = [
                    ("cookie", .string(given["session-cookie-name"]?.value ?? "INGRESSCOOKIE"))
                ]
                if let path = given["session-cookie-path"]?.value { sticky.append(("path", .string(path))) }
                if let (age, _) = integer("session-cookie-max-age", 0...31_536_000) { sticky.append(("ttl_s", .integer(Int64(age)))) }
                out.upstreamMembers["sticky"] = Member(value: .object(sticky), annotation: name)
            } else {
                warn(name, "'\(value)' is not supported (only cookie)")
            }
        }
        if let (kind, name) = balance { out.upstreamMembers["balance"] = Member(value: .string(kind), annotation: name) }
        if let (tries, name) = integer("proxy-next-upstream-tries", 0...1000) {
            // nginx counts the first attempt; 0 means no limit. switchyard counts retries, at most 10.
            let retries = tries == 0 ? UpstreamPolicy.retriesRange.upperBound : min(tries - 1, UpstreamPolicy.retriesRange.upperBound)
            if tries == 0 || tries - 1 > UpstreamPolicy.retriesRange.upperBound {
                warn(
                    name, "served as \(UpstreamPolicy.retriesRange.upperBound) retries, the most switchyard allows",
                    reason: "PartlyHonoured")
            }
            out.upstreamMembers["retries"] = Member(value: .integer(Int64(retries)), annotation: name)
        }

        // --- canary
        if flag("canary") == true {
            var canary = CanaryOptions()
            if let (total, _) = integer("canary-weight-total", 1...1000) { canary.weightTotal = total }
            if let (weight, name) = integer("canary-weight", 0...1000) {
                if weight > canary.weightTotal {
                    warn(
                        name, "\(weight) is above canary-weight-total (\(canary.weightTotal)); all traffic goes to the canary",
                        reason: "InvalidAnnotation")
                }
                canary.weight = min(weight, canary.weightTotal)
            }
            canary.header = given["canary-by-header"]?.value
            canary.headerValue = given["canary-by-header-value"]?.value
            canary.cookie = given["canary-by-cookie"]?.value
            if canary.cookie != nil, let value = canary.headerValue, let name = given["canary-by-cookie"]?.name {
                warn(
                    name, "served with the value '\(value)' of canary-by-header-value (switchyard's canary has one value)",
                    reason: "PartlyHonoured")
            }
            out.canary = canary
        } else {
            for short in ["canary-weight", "canary-weight-total", "canary-by-header", "canary-by-header-value", "canary-by-cookie"] {
                if let (name, _) = given[short] { warn(name, "has no effect without canary: \"true\"", reason: "InvalidAnnotation") }
            }
        }
        return (out, problems, refused)
    }

    /// The annotations (short names) switchyard reads.
    public static let known: Set<String> = [
        "rewrite-target", "ssl-redirect", "force-ssl-redirect", "proxy-body-size", "proxy-connect-timeout", "proxy-read-timeout",
        "proxy-send-timeout", "backend-protocol", "affinity", "session-cookie-name", "session-cookie-path", "session-cookie-max-age",
        "canary", "canary-weight", "canary-weight-total", "canary-by-header", "canary-by-header-value", "canary-by-cookie", "use-regex",
        "limit-rps", "limit-burst-multiplier", "whitelist-source-range", "allowlist-source-range", "denylist-source-range",
        "upstream-hash-by", "load-balance", "proxy-next-upstream-tries", "hsts", "hsts-max-age", "hsts-include-subdomains",
        "hsts-preload",
    ]

    static func rank(_ name: String) -> Int { name.hasPrefix("switchyard.io/") ? 1 : 0 }

    /// nginx sizes: a number with an optional k, m or g (any case); nil when not a size.
    static func parseSize(_ text: String) -> Int? {
        var digits = Substring(text.trimmingSpaces)
        var unit = 1
        switch digits.last?.lowercased() {
        case "k": unit = 1024
        case "m": unit = 1024 * 1024
        case "g": unit = 1024 * 1024 * 1024
        default: break
        }
        if unit > 1 { digits = digits.dropLast() }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(digits), n <= Int.max / unit else {
            return nil
        }
        return n * unit
    }

    /// ingress-nginx `upstream-hash-by` values switchyard's `hash_on` can express.
    static func hashKey(_ value: String) -> String? {
        switch value {
        case "$request_uri", "$uri": return "uri"
        case "$remote_addr", "$binary_remote_addr": return "ip"
        default: break
        }
        for (prefix, kind) in [("$http_", "header"), ("$cookie_", "cookie")] where value.hasPrefix(prefix) {
            let name = String(value.dropFirst(prefix.count))
            guard !name.isEmpty else { return nil }
            // nginx's $http_x_user is the header X-User
            return kind == "header" ? "header:\(name.replacingUnderscores)" : "cookie:\(name)"
        }
        return nil
    }
}

extension String {
    var replacingUnderscores: String { String(self.map { $0 == "_" ? "-" : $0 }) }
}
