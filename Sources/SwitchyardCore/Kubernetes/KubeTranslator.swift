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

    struct RouteKey: Hashable, Sendable {
        var host: String
        var oneLabel: Bool
        var match: String
        var path: String
        var priority: Int
    }

    struct Candidate: Sendable {
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
        /// The route draft, made with the candidate (nil once a canary changed it).
        var draft: KubeRouteDraft?
    }

    /// Translates `state` from scratch.
    public func translate(_ state: ClusterState) -> KubeTranslation {
        var memo = KubeTranslationMemo()
        return translate(state, memo: &memo)
    }

    /// Translates `state`, reusing what `memo` kept from earlier translations wherever its
    /// inputs are unchanged (KubeTranslationMemo): the result is the same as `translate(state)`,
    /// but a change to one Service's endpoints redoes that Service's upstreams only.
    public func translate(_ state: ClusterState, memo: inout KubeTranslationMemo) -> KubeTranslation {
        if memo.options != options { memo = KubeTranslationMemo(options: options) }
        var out = KubeTranslation()
        var problems: [KubeProblem] = []
        let slices = KubeUpstreamBuilder.slicesByService(state)
        // upstreams used by this translation (made once per Service, port and policy)
        var upstreams: [String: KubeUpstreamDraft] = [:]
        var certificates: [String: KubeCertificateDraft] = [:]
        var candidates: [RouteKey: Candidate] = [:]
        var order: [RouteKey] = []

        // problems of the upstreams' objects, with the keys that report each once
        var upstreamReports: [(key: String, problem: KubeProblem)] = []
        func ensure(_ request: UpstreamRequest) {
            if upstreams[request.id] == nil {
                let (draft, reports) = memo.upstream(request, state: state, slices: slices, options: options)
                upstreams[request.id] = draft
                upstreamReports += reports
            }
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

        // Ours, oldest first (files have no creationTimestamp: they count as newest); the
        // order is kept while the same Ingresses with the same creation times are ours.
        var oursCount = 0
        for ingress in state.ingresses.values where options.handles(ingress, classes: state.ingressClasses) { oursCount += 1 }
        let sameOurs =
            memo.order.count == oursCount
            && memo.order.allSatisfy { entry in
                guard let ingress = state.ingresses[entry.key] else { return false }
                return ingress.meta.creationTimestamp == entry.created && options.handles(ingress, classes: state.ingressClasses)
            }
        if !sameOurs {
            memo.order = state.ingresses.values.filter { options.handles($0, classes: state.ingressClasses) }.sorted(by: Self.older)
                .map { (key: $0.meta.key, created: $0.meta.creationTimestamp) }
        }

        // --- each Ingress on its own (kept while it and the Services and Secrets it names are
        // unchanged): its rules (tier 0), then every Ingress's default backend (tier 1)
        var defaultParts: [(upstreams: [UpstreamRequest], candidates: [Candidate])] = []
        var canaries: [(K8sIngress, IngressAnnotations)] = []
        var liveIngresses = 0
        for entry in memo.order {
            let ingress = state.ingresses[entry.key]!
            let part = memo.part(for: ingress, state: state) { self.part(ingress, state: state) }
            liveIngresses += 1
            problems += part.problems
            if part.refused { continue }
            out.ingresses.append(ingress.meta.key)
            if part.annotations.canary != nil {
                canaries.append((ingress, part.annotations))
                continue
            }
            if !part.defaultUpstreams.isEmpty || !part.defaults.isEmpty { defaultParts.append((part.defaultUpstreams, part.defaults)) }
            for use in part.certificates {
                var draft =
                    certificates[use.id]
                    ?? KubeCertificateDraft(
                        id: use.id, origin: use.origin, certificatePEM: use.certificatePEM, keyPEM: use.keyPEM, hosts: [], usedBy: [])
                for host in use.hosts where !draft.hosts.contains(host) { draft.hosts.append(host) }
                if !draft.usedBy.contains(use.usedBy) { draft.usedBy.append(use.usedBy) }
                certificates[use.id] = draft
            }
            for request in part.ruleUpstreams { ensure(request) }
            for candidate in part.rules { add(candidate) }
        }
        for part in defaultParts {
            for request in part.upstreams { ensure(request) }
            for candidate in part.candidates { add(candidate) }
        }

        // --- canary Ingresses change their primary's routes
        if !canaries.isEmpty {
            // the first Ingress rule (in order) of each host, path and path type
            var primaryOf: [String: RouteKey] = [:]
            for key in order {
                guard let c = candidates[key], c.tier == 0 else { continue }
                let index = "\(key.host)|\(key.oneLabel)|\(c.writtenPath)|\(c.pathType?.rawValue ?? "")"
                if primaryOf[index] == nil { primaryOf[index] = key }
            }
            for (ingress, annotations) in canaries {
                guard let canary = annotations.canary else { continue }
                for rule in ingress.rules {
                    guard let (host, oneLabel) = hostOf(rule, ingress: ingress, problems: &problems) else { continue }
                    for path in rule.paths {
                        let primaryKey = primaryOf["\(host)|\(oneLabel)|\(path.path)|\(path.pathType.rawValue)"]
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
                        let canaryUpstream: String
                        switch request(for: path.backend, of: ingress, policy: annotations.upstreamPolicy, state: state) {
                        case .failure(let problem):
                            problems.append(problem)
                            continue
                        case .success(let request):
                            ensure(request)
                            canaryUpstream = request.id
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
                        primary.draft = nil
                        candidates[primaryKey] = primary
                    }
                }
            }
        }

        // --- --default-backend: every host without a fallback, and the catch-all (tier 2)
        if let key = options.defaultBackend {
            if let service = state.services[key], service.type != "ExternalName", let port = service.ports.first {
                let request = upstreamRequest(service: service, port: port, policy: .object([]))
                ensure(request)
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
                            upstream: request.id,
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
        var routes: [KubeRouteDraft] = []
        routes.reserveCapacity(order.count)
        var fallbacks: [String: KubeRouteDraft] = [:]
        for key in order {
            guard let c = candidates[key] else { continue }
            for case .object(let targets)? in [c.members["canary"]] {
                if case .string(let name)? = targets.first(where: { $0.key == "upstream" })?.value { usedUpstreams.insert(name) }
            }
            if case .array(let targets)? = c.members["split"] {
                for case .string(let name)? in targets.map({ $0["upstream"] }) { usedUpstreams.insert(name) }
            }
            usedUpstreams.insert(c.upstream)
            if let draft = c.draft {
                routes.append(draft)
            } else if c.tier == 2 {
                // the same for every translation while the host and the Service's upstream are
                let index = "\(key.host)|\(key.oneLabel)|\(c.upstream)|\(c.origin.key)"
                let draft = memo.fallbacks[index] ?? routeDraft(c)
                fallbacks[index] = draft
                routes.append(draft)
            } else {
                routes.append(routeDraft(c))
            }
        }
        memo.fallbacks = fallbacks
        out.routes = Self.sortedByID(routes, id: \.id, last: &memo.routeOrder)
        // the used upstreams by id, in the last translation's order while the same ones are used
        if memo.upstreamOrder.count != usedUpstreams.count || !memo.upstreamOrder.allSatisfy({ usedUpstreams.contains($0) }) {
            memo.upstreamOrder = usedUpstreams.sorted()
        }
        out.upstreams = memo.upstreamOrder.compactMap { upstreams[$0] }
        out.certificates = certificates.values.sorted { $0.id < $1.id }
        // problems of the upstreams' objects, each once per translation
        var reported: Set<String> = []
        for report in upstreamReports where reported.insert(report.key + "\u{0}" + report.problem.description).inserted {
            problems.append(report.problem)
        }
        out.problems = problems.sorted()
        out.ingresses = Self.sortedByID(out.ingresses, id: { $0 }, last: &memo.ingressOrder)
        // forget what this translation did not use
        if memo.upstreams.count > upstreams.count { memo.upstreams = memo.upstreams.filter { upstreams[$0.key] != nil } }
        if memo.ingresses.count > liveIngresses {
            let live = Set(memo.order.map(\.key))
            memo.ingresses = memo.ingresses.filter { live.contains($0.key) }
        }
        return out
    }

    /// `items` sorted by their (distinct) ids; the order of the last call is reused while the
    /// same ids come, so an unchanged set costs a look-up per item, not a sort.
    static func sortedByID<T, ID: Hashable & Comparable>(_ items: [T], id: (T) -> ID, last: inout [ID]) -> [T] {
        var byID: [ID: T] = [:]
        byID.reserveCapacity(items.count)
        for item in items { byID[id(item)] = item }
        guard byID.count == items.count else {
            let sorted = items.sorted { id($0) < id($1) }
            last = sorted.map(id)
            return sorted
        }
        if last.count != byID.count || !last.allSatisfy({ byID[$0] != nil }) { last = byID.keys.sorted() }
        return last.map { byID[$0]! }
    }

    /// The route draft of a candidate: its id, and its members with the route's own fields.
    func routeDraft(_ c: Candidate) -> KubeRouteDraft {
        let key = c.key
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
        return KubeRouteDraft(
            id: id, origin: c.origin, document: .object(members.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }),
            field: c.field, annotations: c.annotations, redirectCertificate: c.redirectCertificate)
    }

    // MARK: - One Ingress

    /// The upstream a backend of `ingress` names, or the problem.
    func request(for backend: K8sBackend, of ingress: K8sIngress, policy: JSONValue, state: ClusterState) -> Result<
        UpstreamRequest, KubeProblem
    > {
        switch KubeUpstreamBuilder.resolve(backend, namespace: ingress.meta.namespace, from: ingress.ref, services: state.services) {
        case .failure(let problem): return .failure(problem)
        case .success(let (service, port)): return .success(upstreamRequest(service: service, port: port, policy: policy))
        }
    }

    func upstreamRequest(service: K8sService, port: K8sServicePort, policy: JSONValue) -> UpstreamRequest {
        let slug = "\(service.meta.namespace)-\(service.meta.name)-\(port.port)"
        let id = KubeIdentity.id(
            installation: options.ingressClass, origin: service.ref, slug: slug, leaf: [String(port.port), policy.canonical])
        return UpstreamRequest(id: id, service: service, port: port, policy: policy)
    }

    /// What one Ingress gives on its own: its problems, certificates, upstreams and route
    /// candidates (its rules, then its default backend's), before the conflicts between
    /// Ingresses are settled. Reads the Ingress and the Services and Secrets it names only.
    func part(_ ingress: K8sIngress, state: ClusterState) -> IngressPart {
        let (annotations, annotationProblems, refused) = IngressAnnotations.parse(ingress.meta.annotations, object: ingress.ref)
        var part = IngressPart(annotations: annotations, refused: refused, problems: annotationProblems)
        if refused || annotations.canary != nil { return part }
        var problems: [KubeProblem] = []
        let tlsHosts = certificateHosts(ingress, state: state, uses: &part.certificates, problems: &problems)
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
                let upstreamID: String
                switch request(for: path.backend, of: ingress, policy: policy, state: state) {
                case .failure(let problem):
                    problems.append(problem)
                    continue
                case .success(let request):
                    part.ruleUpstreams.append(request)
                    upstreamID = request.id
                }
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
                var candidate = Candidate(
                    key: RouteKey(host: host, oneLabel: oneLabel, match: match, path: routePath, priority: 0), tier: 0,
                    origin: ingress.ref, field: path.field,
                    leaf: [host, oneLabel ? "one_label" : "", path.path, path.pathType.rawValue],
                    upstream: upstreamID, members: members, annotations: fields, redirectCertificate: redirect.certificate,
                    writtenPath: path.path, pathType: path.pathType)
                candidate.draft = routeDraft(candidate)
                part.rules.append(candidate)
            }
        }
        if let backend = ingress.defaultBackend {
            let targets = ingress.rules.isEmpty ? [("*", false)] : hosts.filter { !rootCovered.contains("\($0.0)|\($0.1)") }
            switch request(for: backend, of: ingress, policy: policy, state: state) {
            case .failure(let problem):
                problems.append(problem)
            case .success(let request):
                part.defaultUpstreams.append(request)
                for (host, oneLabel) in targets {
                    let redirect = redirectFor(host: host, annotations: annotations, tlsHosts: tlsHosts)
                    var members = annotations.routeMembers.mapValues(\.value)
                    if redirect.on { members["https_redirect"] = true }
                    var candidate = Candidate(
                        key: RouteKey(host: host, oneLabel: oneLabel, match: "prefix", path: "/", priority: Self.fallbackPriority),
                        tier: 1, origin: ingress.ref, field: backend.field,
                        leaf: ["defaultBackend", host, oneLabel ? "one_label" : ""], upstream: request.id, members: members,
                        annotations: annotations.routeMembers.mapValues(\.annotation), redirectCertificate: redirect.certificate,
                        writtenPath: "/", pathType: nil)
                    candidate.draft = routeDraft(candidate)
                    part.defaults.append(candidate)
                }
            }
        }
        part.problems += problems
        return part
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

    /// Hosts of the Ingress's TLS sections whose Secret is usable -> certificate id; notes
    /// the certificates they use (merged over every Ingress by the translation) and reports
    /// missing Secrets.
    func certificateHosts(
        _ ingress: K8sIngress, state: ClusterState, uses: inout [CertificateUse], problems: inout [KubeProblem]
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
            uses.append(
                CertificateUse(
                    id: id, origin: secret.ref, certificatePEM: cert, keyPEM: keyPEM, hosts: entry.hosts.map { $0.lowercased() },
                    usedBy: ingress.ref))
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
