// What a translation keeps for the next one (`KubeTranslator.translate(_:memo:)`), so that the
// cost of a change follows what changed, not the size of the cluster: a pod turning ready
// redoes its Service's upstreams, not 5,000 others.
//
// Every entry holds the inputs it was made from and is used only while they are equal to the
// cluster's (compared as values, which is cheap for the unchanged objects of a snapshot: they
// share storage with the entry's copies). So the memo never changes a result: a translation
// with a memo equals one from scratch (KubeIncrementalTests checks it over random changes).
//   - an upstream (by id): the Service, the port, the upstream policy, the Service's
//     EndpointSlices (or v1 Endpoints when it has none), the PhysicalEndpoints it names;
//   - an Ingress: the Ingress, the Services its backends name and the Secrets its TLS
//     sections name; what is settled between Ingresses (conflicts: the oldest wins,
//     canaries, the controller's default backend, certificates shared by several Ingresses)
//     is settled again on every translation over these per-Ingress parts;
//   - the age order of the Ingresses served, and the id order of the results, while the
//     same objects are in them.
// Options are part of every entry: a memo made with other options starts empty.

public struct KubeTranslationMemo: Sendable {
    var options: KubeTranslationOptions?
    var upstreams: [String: UpstreamMemo] = [:]
    var ingresses: [K8sKey: IngressMemo] = [:]
    /// Ingresses served, oldest first (KubeTranslator.older), with their creation time.
    var order: [(key: K8sKey, created: String)] = []
    /// `--default-backend` route drafts by host, upstream and Service.
    var fallbacks: [String: KubeRouteDraft] = [:]
    var routeOrder: [String] = []
    var upstreamOrder: [String] = []
    var ingressOrder: [K8sKey] = []

    public init() {}

    init(options: KubeTranslationOptions) {
        self.options = options
    }

    struct UpstreamInputs: Equatable, Sendable {
        var service: K8sService
        var port: K8sServicePort
        var policy: JSONValue
        var slices: [K8sEndpointSlice]
        /// Only when the Service has no slices.
        var endpoints: K8sEndpoints?
        var physical: [K8sPhysicalEndpoint?]
    }

    struct UpstreamMemo: Sendable {
        var inputs: UpstreamInputs
        var draft: KubeUpstreamDraft
        /// Problems of the objects behind it, with the key that reports each once per translation.
        var reports: [(key: String, problem: KubeProblem)]
    }

    struct IngressMemo: Sendable {
        var ingress: K8sIngress
        var services: [(key: K8sKey, value: K8sService?)]
        var secrets: [(key: K8sKey, value: K8sTLSSecret?)]
        var part: IngressPart
    }

    /// The upstream draft of `request` and the problems found making it, made again only when
    /// its inputs changed.
    mutating func upstream(
        _ request: UpstreamRequest, state: ClusterState, slices: [K8sKey: [K8sEndpointSlice]], options: KubeTranslationOptions
    ) -> (KubeUpstreamDraft, [(key: String, problem: KubeProblem)]) {
        let service = request.service
        let key = service.meta.key
        let own = slices[key] ?? []
        let inputs = UpstreamInputs(
            service: service, port: request.port, policy: request.policy, slices: own,
            endpoints: own.isEmpty ? state.endpoints[key] : nil,
            physical: service.physicalEndpointNames.map { state.physicalEndpoints[K8sKey(key.namespace, $0)] })
        if let memo = upstreams[request.id], memo.inputs == inputs { return (memo.draft, memo.reports) }
        var builder = KubeUpstreamBuilder(state: state, options: options, slices: [key: own])
        let draft = builder.upstream(id: request.id, service: service, port: request.port, policy: request.policy)
        upstreams[request.id] = UpstreamMemo(inputs: inputs, draft: draft, reports: builder.reports)
        return (draft, builder.reports)
    }

    /// The part of `ingress`, made again (by `make`) only when it or what it names changed.
    mutating func part(for ingress: K8sIngress, state: ClusterState, make: () -> IngressPart) -> IngressPart {
        let key = ingress.meta.key
        if let memo = ingresses[key], memo.ingress == ingress, memo.services.allSatisfy({ state.services[$0.key] == $0.value }),
            memo.secrets.allSatisfy({ state.secrets[$0.key] == $0.value })
        {
            return memo.part
        }
        var services: [(key: K8sKey, value: K8sService?)] = []
        var backends = ingress.rules.flatMap { $0.paths.map(\.backend) }
        if let backend = ingress.defaultBackend { backends.append(backend) }
        for backend in backends {
            let serviceKey = K8sKey(key.namespace, backend.service)
            if !services.contains(where: { $0.key == serviceKey }) { services.append((serviceKey, state.services[serviceKey])) }
        }
        var secrets: [(key: K8sKey, value: K8sTLSSecret?)] = []
        for name in ingress.tls.compactMap(\.secretName) where !name.isEmpty {
            let secretKey = K8sKey(key.namespace, name)
            if !secrets.contains(where: { $0.key == secretKey }) { secrets.append((secretKey, state.secrets[secretKey])) }
        }
        let part = make()
        ingresses[key] = IngressMemo(ingress: ingress, services: services, secrets: secrets, part: part)
        return part
    }
}

/// One upstream an Ingress asks for: a Service port with an upstream policy, and its id.
struct UpstreamRequest: Sendable {
    var id: String
    var service: K8sService
    var port: K8sServicePort
    var policy: JSONValue
}

/// A certificate one TLS section of an Ingress uses, with the hosts it lists (lowercase).
struct CertificateUse: Sendable {
    var id: String
    var origin: K8sRef
    var certificatePEM: String
    var keyPEM: String
    var hosts: [String]
    var usedBy: K8sRef
}

/// What one Ingress gives on its own (KubeTranslator.part).
struct IngressPart: Sendable {
    var annotations: IngressAnnotations
    /// Not served at all (a snippet annotation).
    var refused: Bool
    var problems: [KubeProblem]
    var certificates: [CertificateUse] = []
    /// Upstreams of its rules, then of its default backend.
    var ruleUpstreams: [UpstreamRequest] = []
    var defaultUpstreams: [UpstreamRequest] = []
    /// Route candidates of its rules (tier 0), then of its default backend (tier 1), in order.
    var rules: [KubeTranslator.Candidate] = []
    var defaults: [KubeTranslator.Candidate] = []
}
