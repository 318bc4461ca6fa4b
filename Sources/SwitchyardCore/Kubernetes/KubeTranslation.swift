// What the translation takes (options, which Ingresses are ours) and what it gives: routes,
// upstreams and certificates as admin-API documents with deterministic ids, the object each
// came from, and every problem. `KubeLowering` validates the documents into model values.

public struct KubeTranslationOptions: Sendable, Hashable {
    /// The ingress class this installation serves; also its identity (owner `k8s/<class>`,
    /// part of every id).
    public var ingressClass: String
    /// `spec.controller` of the IngressClasses this controller implements.
    public var controllerName: String
    /// Serve Ingresses that name no class at all.
    public var watchIngressWithoutClass: Bool
    /// true (a cluster): `ingressClassName` must name an IngressClass whose controller is
    /// `controllerName`. false (`switchyard apply`, offline): the name alone decides.
    public var requireIngressClassObject: Bool
    /// The Service (its first port) for requests no route matches (`--default-backend`).
    public var defaultBackend: K8sKey?
    /// Health-check interval of a PhysicalEndpoint without `interval`, seconds.
    public var physicalEndpointInterval: Int

    public init(
        ingressClass: String = "switchyard", controllerName: String = KubeTranslationOptions.defaultControllerName,
        watchIngressWithoutClass: Bool = false, requireIngressClassObject: Bool = true, defaultBackend: K8sKey? = nil,
        physicalEndpointInterval: Int = 10
    ) {
        self.ingressClass = ingressClass
        self.controllerName = controllerName
        self.watchIngressWithoutClass = watchIngressWithoutClass
        self.requireIngressClassObject = requireIngressClassObject
        self.defaultBackend = defaultBackend
        self.physicalEndpointInterval = physicalEndpointInterval
    }

    public static let defaultControllerName = "switchyard.io/ingress-controller"
    /// The legacy class annotation, still honoured (it wins over `ingressClassName`).
    public static let legacyClassAnnotation = "kubernetes.io/ingress.class"

    /// Whether this installation serves `ingress`.
    public func handles(_ ingress: K8sIngress, classes: [K8sKey: K8sIngressClass]) -> Bool {
        if let legacy = ingress.meta.annotations[Self.legacyClassAnnotation] { return legacy == ingressClass }
        if let name = ingress.className {
            guard name == ingressClass else { return false }
            return !requireIngressClassObject || classes[K8sKey("", name)]?.controller == controllerName
        }
        if watchIngressWithoutClass { return true }
        // no class: ours when our class is the cluster's default class
        if let mine = classes[K8sKey("", ingressClass)], mine.controller == controllerName, mine.isDefault { return true }
        return false
    }
}

/// A route as the admin API takes it, with where it came from.
public struct KubeRouteDraft: Sendable, Hashable {
    public var id: String
    /// The Ingress (or, for `--default-backend` routes, the Service) it comes from.
    public var origin: K8sRef
    /// The route object (request form: no owner or source).
    public var document: JSONValue
    /// Field of the object it comes from (`spec.rules[0].http.paths[1]`).
    public var field: String
    /// Route member -> the annotation it came from (for problems the validation finds).
    public var annotations: [String: String]
    /// The certificate whose presence turned `https_redirect` on (dropped with it).
    public var redirectCertificate: String?

    public static func == (a: KubeRouteDraft, b: KubeRouteDraft) -> Bool {
        a.id == b.id && a.origin == b.origin && a.document == b.document && a.field == b.field && a.annotations == b.annotations
            && a.redirectCertificate == b.redirectCertificate
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        hasher.combine(document.canonical)
    }

    public var host: String? { if case .string(let s)? = document["host"] { return s } else { return nil } }
    public var path: String? { if case .string(let s)? = document["path"] { return s } else { return nil } }
    public var match: String? { if case .string(let s)? = document["match"] { return s } else { return nil } }
    public var upstream: String? { if case .string(let s)? = document["upstream"] { return s } else { return nil } }
}

/// An upstream as the admin API takes it.
public struct KubeUpstreamDraft: Sendable, Hashable {
    public var id: String
    /// The Service it comes from.
    public var origin: K8sRef
    public var document: JSONValue
    /// The PhysicalEndpoints whose machines it holds, and their addresses (canonical text).
    public var physical: [K8sKey: [String]]

    public static func == (a: KubeUpstreamDraft, b: KubeUpstreamDraft) -> Bool {
        a.id == b.id && a.origin == b.origin && a.document == b.document && a.physical == b.physical
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        hasher.combine(document.canonical)
    }
}

/// A certificate from a Secret of type kubernetes.io/tls.
public struct KubeCertificateDraft: Sendable, Hashable {
    public var id: String
    /// The Secret.
    public var origin: K8sRef
    public var certificatePEM: String
    public var keyPEM: String
    /// The hosts the Ingresses list for it (`spec.tls[].hosts`), to check the names against.
    public var hosts: [String]
    public var usedBy: [K8sRef]

    /// The request body of `PUT /api/v1/certificates/{id}`.
    public var document: JSONValue { ["cert": .string(certificatePEM), "key": .string(keyPEM)] }
}

/// The result of one translation; everything sorted by id (problems by object), so two runs
/// over the same cluster give equal values.
public struct KubeTranslation: Sendable, Hashable {
    public var routes: [KubeRouteDraft] = []
    public var upstreams: [KubeUpstreamDraft] = []
    public var certificates: [KubeCertificateDraft] = []
    public var problems: [KubeProblem] = []
    /// Ingresses this installation serves (for their status), sorted.
    public var ingresses: [K8sKey] = []

    public init() {}

    public func route(_ id: String) -> KubeRouteDraft? { routes.first { $0.id == id } }
    public func upstream(_ id: String) -> KubeUpstreamDraft? { upstreams.first { $0.id == id } }
}
