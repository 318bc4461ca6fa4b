// The translation: a cluster's Ingresses, Services, endpoints, PhysicalEndpoints and TLS
// Secrets become Switchyard routes, upstreams and certificates (admin-API documents with
// deterministic ids; KubeIdentity). Pure: the same ClusterState always gives the same result.
//
// Hosts: `foo.com` is exact; `*.foo.com` is a wildcard of ONE label (`"wildcard":
// "one_label"`), as Kubernetes defines it; a rule without host applies to every host no
// other route claims: the catch-all host `*` (docs/kubernetes.md).
// Paths: Exact -> `exact`; Prefix -> `segment_prefix` (element-wise: `/foo` matches `/foo`,
// `/foo/` and `/foo/bar`, not `/foobar`; one trailing slash of the rule is dropped);
// ImplementationSpecific -> `prefix`, or with `use-regex` (or a `rewrite-target` with
// capture groups) `regex`, anchored at the start and case-insensitive as ingress-nginx's
// `location ~*` is.
// Default backends: an Ingress's `spec.defaultBackend` serves the paths of its hosts that no
// rule matches (a `prefix /` route at priority -1000), or every host when the Ingress has no
// rules (the catch-all host); `--default-backend ns/svc` does the same for every host and the
// catch-all where no Ingress did; else the edge's built-in 404.
// Conflicts: two Ingresses claiming the same host, path and path type: the older wins (by
// creationTimestamp, then namespace/name), as in ingress-nginx; the other is reported.
// TLS: each `spec.tls[].secretName` becomes a certificate; requests over plain HTTP to the
// hosts it lists are redirected to HTTPS (308) unless `ssl-redirect: "false"` (the
// ingress-nginx default), only while the certificate is valid.

public struct KubeTranslator: Sendable {
    public var options: KubeTranslationOptions

    public init(options: KubeTranslationOptions = KubeTranslationOptions()) {
        self.options = options
    }

    /// Lowest route priority: default-backend routes lose every tie to rule routes.
    static let fallbackPriority = Route.priorityRange.lowerBound

    struct RouteKey: Hashable {
        var host: String
        var oneLabel: Bool
        var match: String
        var path: String
        var priority: Int
    }

    struct Candidate {
        var key: RouteKey
        /// 0: an Ingress rule, 1: an Ingress's default backend, 2: --default-backend.
        var tier: Int
        var origin: K8sRef
        var field: String
        var leaf: [String]
        var upstream: String
        var members: [String: JSONValue]
        var annotations: [String: String]
        var redirectCertificate: String?
        /// The rule's path and type as written (canary Ingresses find their primary by them).
        var writtenPath: String
        var pathType: K8sPathType?
        var hasCanary = false
    }

    /// An Ingress's default backend, added after every Ingress's rules.
    struct PendingDefault {
        var ingress: K8sIngress
        var annotations: IngressAnnotations
        var backend: K8sBackend
        var hosts: [(String, Bool)]
        var tlsHosts: [String: String]
        var policy: JSONValue
    }

    public func translate(_ state: ClusterState) -> KubeTranslation {
        var out = KubeTranslation()
        var problems: [KubeProblem] = []
        var builder = KubeUpstreamBuilder(state: state, options: options)
        var upstreams: [String: KubeUpstreamDraft] = [:]
        var certificates: [String: KubeCertificateDraft] = [:]
        var candidates: [RouteKey: Candidate] = [:]
        var order: [RouteKey] = []

        // Ours, oldest first (files have no creationTimestamp: they count as newest).
        let ours = state.ingresses.values.filter { options.handles($0, classes: state.ingressClasses) }.sorted(by: Self.older)
        var primaries: [(K8sIngress, IngressAnnotations)] = []
        var canaries: [(K8sIngress, IngressAnnotations)] = []
        for ingress in ours {
            let (parsed, annotationProblems, refused) = IngressAnnotations.parse(ingress.meta.annotations, object: ingress.ref)
            problems += annotationProblems
            if refused { continue }
            out.ingresses.append(ingress.meta.key)
            if parsed.canary != nil { canaries.append((ingress, parsed)) } else { primaries.append((ingress, parsed)) }
        }

        // The upstream of a backend (made once per Service, port and policy), or a problem.
        func upstream(for backend: K8sBackend, of ingress: K8sIngress, policy: JSONValue) -> String? {
            switch builder.resolve(backend, namespace: ingress.meta.namespace, from: ingress.ref) {
            case .failure(let problem):
                problems.append(problem)
                return nil
            case .success(let (service, port)):
                return upstreamID(service: service, port: port, policy: policy)
            }
        }
        func upstreamID(service: K8sService, port: K8sServicePort, policy: JSONValue) -> String {
            let slug = "\(service.meta.namespace)-\(service.meta.name)-\(port.port)"
            let id = KubeIdentity.id(
                installation: options.ingressClass, origin: service.ref, slug: slug, leaf: [String(port.port), policy.canonical])
            if upstreams[id] == nil { upstreams[id] = builder.upstream(id: id, service: service, port: port, policy: policy) }
            return id
        }

        func add(_ candidate: Candidate) {
            if let winner = candidates[candidate.key] {
                if candidate.tier < 2 {
                    let what = "\(candidate.key.host) \(candidate.writtenPath)\(candidate.pathType.map { " (\($0.rawValue))" } ?? "")"
                    let message =
                        winner.origin == candidate.origin
                        ? "\(what) is also at \(winner.field); this one is not served"
                        : "\(what) is already served by \(winner.origin) (older); this one is not served"
                    problems.append(KubeProblem(.warning, candidate.origin, field: candidate.field, message, reason: "Conflict"))
                }
                return
            }
            candidates[candidate.key] = candidate
            order.append(candidate.key)
        }

        // --- Ingress rules (tier 0), then their default backends (tier 1)
        var defaults: [PendingDefault] = []
        for (ingress, annotations) in primaries {
            let tlsHosts = certificateHosts(ingress, state: state, certificates: &certificates, problems: &problems)
            var policy = annotations.upstreamPolicy
            if case .object(let m) = policy, m.isEmpty { policy = .object([]) }
            var hosts: [(String, Bool)] = []
            var rootCovered: Set<String> = []
            for rule in ingress.rules {
                guard let (host, oneLabel) = hostOf(rule, ingress: ingress, problems: &problems) else { continue }
                if !hosts.contains(where: { $0 == (host, oneLabel) }) { hosts.append((host, oneLabel)) }
                for path in rule.paths {
                    guard let (match, routePath, rewrite) = pathRule(path, annotations: annotations, ingress: ingress, problems: &problems)
                    else {
                        continue
                    }
                    if routePath == "/" && match != "regex" && match != "exact" { rootCovered.insert("\(host)|\(oneLabel)") }
                    guard let upstreamID = upstream(for: path.backend, of: ingress, policy: policy) else { continue }
                    var members = annotations.routeMembers.mapValues(\.value)
                    var fields = annotations.routeMembers.mapValues(\.annotation)
                    if let rewrite {
                        members["rewrite"] = rewrite
                        fields["rewrite"] = annotationName(annotations, "rewrite-target", in: ingress)
                    }
                    let redirect = redirectFor(host: host, annotations: annotations, tlsHosts: tlsHosts)
                    if redirect.on {
                        members["https_redirect"] = true
                        if annotations.forceSSLRedirect {
                            fields["https_redirect"] = annotationName(annotations, "force-ssl-redirect", in: ingress)
                        }
                    }
                    add(
                        Candidate(
                            key: RouteKey(host: host, oneLabel: oneLabel, match: match, path: routePath, priority: 0), tier: 0,
                            origin: ingress.ref, field: path.field,
                            leaf: [host, oneLabel ? "one_label" : "", path.path, path.pathType.rawValue],
                            upstream: upstreamID, members: members, annotations: fields, redirectCertificate: redirect.certificate,
                            writtenPath: path.path, pathType: path.pathType))
                }
            }
            if let backend = ingress.defaultBackend {
                let targets = ingress.rules.isEmpty ? [("*", false)] : hosts.filter { !rootCovered.contains("\($0.0)|\($0.1)") }
                defaults.append(
                    PendingDefault(
                        ingress: ingress, annotations: annotations, backend: backend, hosts: targets, tlsHosts: tlsHosts, policy: policy))
            }
        }
        for pending in defaults {
            guard let upstreamID = upstream(for: pending.backend, of: pending.ingress, policy: pending.policy) else { continue }
            for (host, oneLabel) in pending.hosts {
                let redirect = redirectFor(host: host, annotations: pending.annotations, tlsHosts: pending.tlsHosts)
                var members = pending.annotations.routeMembers.mapValues(\.value)
                if redirect.on { members["https_redirect"] = true }
                add(
                    Candidate(
                        key: RouteKey(host: host, oneLabel: oneLabel, match: "prefix", path: "/", priority: Self.fallbackPriority),
                        tier: 1, origin: pending.ingress.ref, field: pending.backend.field,
                        leaf: ["defaultBackend", host, oneLabel ? "one_label" : ""], upstream: upstreamID, members: members,
                        annotations: pending.annotations.routeMembers.mapValues(\.annotation), redirectCertificate: redirect.certificate,
                        writtenPath: "/", pathType: nil))
            }
        }

        // --- canary Ingresses change their primary's routes
        for (ingress, annotations) in canaries {
            guard let canary = annotations.canary else { continue }
            for rule in ingress.rules {
                guard let (host, oneLabel) = hostOf(rule, ingress: ingress, problems: &problems) else { continue }
                for path in rule.paths {
                    let primaryKey = order.first { key in
                        guard let c = candidates[key], c.tier == 0 else { return false }
                        return key.host == host && key.oneLabel == oneLabel && c.writtenPath == path.path && c.pathType == path.pathType
                    }
                    guard let primaryKey, var primary = candidates[primaryKey] else {
                        problems.append(
                            KubeProblem(
                                .warning, ingress.ref, field: path.field,
                                "canary: no Ingress serves \(host) \(path.path) (\(path.pathType.rawValue)) for this canary to join; not served",
                                reason: "CanaryWithoutPrimary"))
                        continue
                    }
                    guard !primary.hasCanary else {
                        problems.append(
                            KubeProblem(
                                .warning, ingress.ref, field: path.field,
                                "\(host) \(path.path) already has an older canary; this one is not served",
                                reason: "Conflict"))
                        continue
                    }
                    guard let canaryUpstream = upstream(for: path.backend, of: ingress, policy: annotations.upstreamPolicy) else {
                        continue
                    }
                    guard canaryUpstream != primary.upstream else {
                        problems.append(
                            KubeProblem(
                                .warning, ingress.ref, field: "\(path.field).backend",
                                "the canary names the same Service and port as its primary (\(primary.origin)); nothing to split",
                                reason: "Conflict"))
                        continue
                    }
                    if canary.weight > 0 {
                        primary.members["split"] = [
                            ["upstream": .string(primary.upstream), "weight": .integer(Int64(canary.weightTotal - canary.weight))],
                            ["upstream": .string(canaryUpstream), "weight": .integer(Int64(canary.weight))],
                        ]
                    }
                    if canary.header != nil || canary.cookie != nil {
                        var members: [(key: String, value: JSONValue)] = [("upstream", .string(canaryUpstream))]
                        if let header = canary.header { members.append(("header", .string(header))) }
                        if let cookie = canary.cookie { members.append(("cookie", .string(cookie))) }
                        members.append(("value", .string(canary.headerValue ?? "always")))
                        primary.members["canary"] = .object(members)
                    }
                    primary.hasCanary = true
                    candidates[primaryKey] = primary
                }
            }
        }

        // --- --default-backend: every host without a fallback, and the catch-all (tier 2)
        if let key = options.defaultBackend {
            if let service = state.services[key], service.type != "ExternalName", let port = service.ports.first {
                let upstreamID = upstreamID(service: service, port: port, policy: .object([]))
                var hosts: [(String, Bool)] = []
                var seen: Set<String> = []
                for routeKey in order where seen.insert("\(routeKey.host)|\(routeKey.oneLabel)").inserted {
                    hosts.append((routeKey.host, routeKey.oneLabel))
                }
                if !seen.contains("*|false") { hosts.append(("*", false)) }
                for (host, oneLabel) in hosts {
                    add(
                        Candidate(
                            key: RouteKey(host: host, oneLabel: oneLabel, match: "prefix", path: "/", priority: Self.fallbackPriority),
                            tier: 2,
                            origin: service.ref, field: "", leaf: ["default-backend", host, oneLabel ? "one_label" : ""],
                            upstream: upstreamID,
                            members: [:], annotations: [:], redirectCertificate: nil, writtenPath: "/", pathType: nil))
                }
            } else {
                problems.append(
                    KubeProblem(
                        .error, K8sRef("Service", key), field: "",
                        "the --default-backend Service does not exist, has no port or is of type ExternalName; the built-in 404 answers",
                        reason: "MissingService"))
            }
        }

        // --- routes, and the upstreams and certificates they use
        var usedUpstreams: Set<String> = []
        for key in order {
            guard let c = candidates[key] else { continue }
            let slug = "\(c.origin.key.namespace)-\(c.origin.key.name)"
            let id = KubeIdentity.id(installation: options.ingressClass, origin: c.origin, slug: slug, leaf: c.leaf)
            var members = c.members
            members["id"] = .string(id)
            members["host"] = .string(key.host)
            if key.oneLabel { members["wildcard"] = "one_label" }
            members["path"] = .string(key.path)
            members["match"] = .string(key.match)
            members["priority"] = .integer(Int64(key.priority))
            if members["split"] == nil { members["upstream"] = .string(c.upstream) }
            for case .object(let targets)? in [members["canary"]] {
                if case .string(let name)? = targets.first(where: { $0.key == "upstream" })?.value { usedUpstreams.insert(name) }
            }
            if case .array(let targets)? = members["split"] {
                for case .string(let name)? in targets.map({ $0["upstream"] }) { usedUpstreams.insert(name) }
            }
            usedUpstreams.insert(c.upstream)
            out.routes.append(
                KubeRouteDraft(
                    id: id, origin: c.origin, document: .object(members.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }),
                    field: c.field,
                    annotations: c.annotations, redirectCertificate: c.redirectCertificate))
        }
        out.routes.sort { $0.id < $1.id }
        out.upstreams = upstreams.values.filter { usedUpstreams.contains($0.id) }.sorted { $0.id < $1.id }
        out.certificates = certificates.values.sorted { $0.id < $1.id }
        out.problems = (problems + builder.problems).sorted()
        out.ingresses.sort()
        return out
    }

    // MARK: - Pieces

    static func older(_ a: K8sIngress, _ b: K8sIngress) -> Bool {
        let ta = a.meta.creationTimestamp.isEmpty ? "~" : a.meta.creationTimestamp
        let tb = b.meta.creationTimestamp.isEmpty ? "~" : b.meta.creationTimestamp
        return (ta, a.meta.key) < (tb, b.meta.key)
    }

    /// The route host of a rule: (host, one-label wildcard), or nil and a problem.
    func hostOf(_ rule: K8sIngressRule, ingress: K8sIngress, problems: inout [KubeProblem]) -> (String, Bool)? {
        guard let given = rule.host else { return ("*", false) }
        switch HostNames.canonical(given) {
        case .success(let host): return (host, host.hasPrefix("*."))
        case .failure(let error):
            problems.append(
                KubeProblem(.error, ingress.ref, field: "\(rule.field).host", "'\(given)' \(error.message)", reason: "InvalidHost"))
            return nil
        }
    }

    /// match kind, route path and rewrite member of one Ingress path, or nil and a problem.
    func pathRule(_ path: K8sIngressPath, annotations: IngressAnnotations, ingress: K8sIngress, problems: inout [KubeProblem])
        -> (String, String, JSONValue?)?
    {
        let target = annotations.rewriteTarget
        let groups = target.map(Self.hasCaptureReference) ?? false
        var match: String
        var routePath = path.path
        switch path.pathType {
        case .exact:
            match = "exact"
        case .prefix:
            match = "segment_prefix"
            if routePath.count > 1, routePath.hasSuffix("/") { routePath.removeLast() }
        case .implementationSpecific:
            if annotations.useRegex || groups {
                match = "regex"
                routePath = "(?i)" + (routePath.hasPrefix("^") ? routePath : "^" + routePath)
            } else {
                match = "prefix"
            }
        }
        if match != "regex", !routePath.hasPrefix("/") {
            problems.append(
                KubeProblem(.error, ingress.ref, field: "\(path.field).path", "'\(path.path)' must start with /", reason: "InvalidPath"))
            return nil
        }
        guard let target else { return (match, routePath, nil) }
        if match == "regex" { return (match, routePath, ["regex": .string(routePath), "replacement": .string(target)]) }
        if groups {
            problems.append(
                KubeProblem(
                    .error, ingress.ref, field: "\(path.field).pathType",
                    "rewrite-target '\(target)' uses capture groups, which need a regex path: pathType ImplementationSpecific (with use-regex)",
                    reason: "InvalidRewrite"))
            return nil
        }
        return (match, routePath, ["replace_prefix": .string(target)])
    }

    /// Whether a rewrite target refers to a capture group (`$1`, `${1}`).
    static func hasCaptureReference(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == UInt8(ascii: "$") {
                let next = bytes[i + 1]
                if next == UInt8(ascii: "$") {
                    i += 2
                    continue
                }
                if (next >= 0x30 && next <= 0x39) || next == UInt8(ascii: "{") { return true }
            }
            i += 1
        }
        return false
    }

    func annotationName(_ annotations: IngressAnnotations, _ short: String, in ingress: K8sIngress) -> String {
        IngressAnnotations.prefixes.reversed().map { $0 + short }.first { ingress.meta.annotations[$0] != nil } ?? short
    }

    /// Hosts of the Ingress's TLS sections whose Secret is usable -> certificate id; makes
    /// (or extends) the certificate drafts and reports missing Secrets.
    func certificateHosts(
        _ ingress: K8sIngress, state: ClusterState, certificates: inout [String: KubeCertificateDraft], problems: inout [KubeProblem]
    ) -> [String: String] {
        var out: [String: String] = [:]
        for entry in ingress.tls {
            guard let secretName = entry.secretName, !secretName.isEmpty else {
                problems.append(
                    KubeProblem(
                        .warning, ingress.ref, field: "\(entry.field).secretName",
                        "no secretName: these hosts are answered with the edges' default certificate, if any", reason: "NoCertificate"))
                continue
            }
            let key = K8sKey(ingress.meta.namespace, secretName)
            guard let secret = state.secrets[key] else {
                // served without it (as ingress-nginx does): a warning, not an error
                problems.append(
                    KubeProblem(
                        .warning, ingress.ref, field: "\(entry.field).secretName",
                        "Secret \(key) of type \(K8sTLSSecret.type) does not exist; these hosts get no certificate (and no HTTPS redirect)",
                        reason: "MissingSecret"))
                continue
            }
            guard let cert = secret.certificate, let keyPEM = secret.key else {
                problems.append(
                    KubeProblem(
                        .error, secret.ref, field: secret.certificate == nil ? "data.tls.crt" : "data.tls.key", "is missing",
                        reason: "InvalidSecret"))
                continue
            }
            let id = KubeIdentity.id(
                installation: options.ingressClass, origin: secret.ref, slug: "\(key.namespace)-\(key.name)", leaf: ["tls"])
            var draft =
                certificates[id]
                ?? KubeCertificateDraft(id: id, origin: secret.ref, certificatePEM: cert, keyPEM: keyPEM, hosts: [], usedBy: [])
            for host in entry.hosts.map({ $0.lowercased() }) where !draft.hosts.contains(host) { draft.hosts.append(host) }
            if !draft.usedBy.contains(ingress.ref) { draft.usedBy.append(ingress.ref) }
            certificates[id] = draft
            for host in entry.hosts { out[host.lowercased()] = id }
        }
        return out
    }

    func redirectFor(host: String, annotations: IngressAnnotations, tlsHosts: [String: String]) -> (on: Bool, certificate: String?) {
        if annotations.forceSSLRedirect { return (true, nil) }
        if annotations.sslRedirect != false, let id = tlsHosts[host] { return (true, id) }
        return (false, nil)
    }
}
