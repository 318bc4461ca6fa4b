// The cluster objects the Kubernetes translation reads, as plain values (no I/O, no client
// types): each declares only the fields the translation uses. `KubeObjectParser` makes them
// from JSON (a watched object or a document of a YAML file); the translation
// (`KubeTranslator`) turns a `ClusterState` of them into Switchyard routes, upstreams and
// certificates. Enumerations the API defines stay as parsed values only where the parser
// has checked them (pathType); everything else is a String the translation judges.

/// namespace/name of an object ("" namespace for cluster-scoped kinds).
public struct K8sKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var namespace: String
    public var name: String

    public init(_ namespace: String, _ name: String) {
        self.namespace = namespace
        self.name = name
    }

    public static func < (a: K8sKey, b: K8sKey) -> Bool { (a.namespace, a.name) < (b.namespace, b.name) }
    public var description: String { namespace.isEmpty ? name : "\(namespace)/\(name)" }

    /// `namespace/name` (a flag's value), or nil.
    public static func parse(_ text: String) -> K8sKey? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return K8sKey(String(parts[0]), String(parts[1]))
    }
}

/// kind + namespace/name: what a problem, a route's source or an Event is about.
public struct K8sRef: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var kind: String
    public var key: K8sKey

    public init(_ kind: String, _ key: K8sKey) {
        self.kind = kind
        self.key = key
    }

    public init(_ kind: String, _ namespace: String, _ name: String) {
        self.init(kind, K8sKey(namespace, name))
    }

    public static func < (a: K8sRef, b: K8sRef) -> Bool { (a.kind, a.key) < (b.kind, b.key) }
    /// `Ingress default/bbs`.
    public var description: String { "\(kind) \(key)" }
}

/// The metadata the translation reads.
public struct K8sMeta: Sendable, Hashable {
    public var namespace: String
    public var name: String
    public var uid: String?
    public var resourceVersion: String?
    /// RFC 3339 (`2025-01-31T12:00:00Z`); compares as a string. "" when absent (a document
    /// of a file, not yet created): such objects count as the newest.
    public var creationTimestamp: String
    public var annotations: [String: String]
    public var labels: [String: String]

    public init(
        namespace: String, name: String, uid: String? = nil, resourceVersion: String? = nil, creationTimestamp: String = "",
        annotations: [String: String] = [:], labels: [String: String] = [:]
    ) {
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.resourceVersion = resourceVersion
        self.creationTimestamp = creationTimestamp
        self.annotations = annotations
        self.labels = labels
    }

    public var key: K8sKey { K8sKey(namespace, name) }
}

// MARK: - Ingress

public enum K8sPathType: String, Sendable, Hashable, CaseIterable {
    case exact = "Exact"
    case prefix = "Prefix"
    case implementationSpecific = "ImplementationSpecific"
}

/// A Service port in a backend or a targetPort: by number or by name.
public enum K8sPort: Sendable, Hashable, CustomStringConvertible {
    case number(Int)
    case name(String)

    public var description: String {
        switch self {
        case .number(let n): return "\(n)"
        case .name(let s): return s
        }
    }
}

/// An Ingress backend: a Service and one of its ports.
public struct K8sBackend: Sendable, Hashable {
    public var service: String
    public var port: K8sPort
    /// Where the backend is written (`spec.rules[0].http.paths[1].backend`).
    public var field: String

    public init(service: String, port: K8sPort, field: String) {
        self.service = service
        self.port = port
        self.field = field
    }
}

public struct K8sIngressPath: Sendable, Hashable {
    /// As written; "/" when the rule gave none.
    public var path: String
    public var pathType: K8sPathType
    public var backend: K8sBackend
    /// `spec.rules[0].http.paths[1]`.
    public var field: String

    public init(path: String, pathType: K8sPathType, backend: K8sBackend, field: String) {
        self.path = path
        self.pathType = pathType
        self.backend = backend
        self.field = field
    }
}

public struct K8sIngressRule: Sendable, Hashable {
    /// nil: every host (the rule applies to requests no other host claims).
    public var host: String?
    public var paths: [K8sIngressPath]
    /// `spec.rules[0]`.
    public var field: String

    public init(host: String?, paths: [K8sIngressPath], field: String) {
        self.host = host
        self.paths = paths
        self.field = field
    }
}

public struct K8sIngressTLS: Sendable, Hashable {
    public var hosts: [String]
    public var secretName: String?
    /// `spec.tls[0]`.
    public var field: String

    public init(hosts: [String], secretName: String?, field: String) {
        self.hosts = hosts
        self.secretName = secretName
        self.field = field
    }
}

public struct K8sIngress: Sendable, Hashable {
    public var meta: K8sMeta
    /// `networking.k8s.io/v1`, `networking.k8s.io/v1beta1` or `extensions/v1beta1`.
    public var apiVersion: String
    public var className: String?
    public var defaultBackend: K8sBackend?
    public var rules: [K8sIngressRule]
    public var tls: [K8sIngressTLS]

    public init(
        meta: K8sMeta, apiVersion: String = "networking.k8s.io/v1", className: String? = nil, defaultBackend: K8sBackend? = nil,
        rules: [K8sIngressRule] = [], tls: [K8sIngressTLS] = []
    ) {
        self.meta = meta
        self.apiVersion = apiVersion
        self.className = className
        self.defaultBackend = defaultBackend
        self.rules = rules
        self.tls = tls
    }

    public var ref: K8sRef { K8sRef("Ingress", meta.key) }
}

public struct K8sIngressClass: Sendable, Hashable {
    public var meta: K8sMeta
    public var controller: String

    public init(meta: K8sMeta, controller: String) {
        self.meta = meta
        self.controller = controller
    }

    public static let defaultClassAnnotation = "ingressclass.kubernetes.io/is-default-class"
    public var isDefault: Bool { meta.annotations[Self.defaultClassAnnotation] == "true" }
}

// MARK: - Service and its endpoints

public struct K8sServicePort: Sendable, Hashable {
    /// "" when the port has no name (then it is the Service's only port).
    public var name: String
    public var port: Int
    /// nil: the same number as `port`.
    public var targetPort: K8sPort?
    public var proto: String

    public init(name: String = "", port: Int, targetPort: K8sPort? = nil, proto: String = "TCP") {
        self.name = name
        self.port = port
        self.targetPort = targetPort
        self.proto = proto
    }
}

public struct K8sService: Sendable, Hashable {
    public var meta: K8sMeta
    /// ClusterIP, NodePort, LoadBalancer or ExternalName.
    public var type: String
    public var hasSelector: Bool
    public var ports: [K8sServicePort]
    public var externalName: String?

    public init(meta: K8sMeta, type: String = "ClusterIP", hasSelector: Bool = true, ports: [K8sServicePort], externalName: String? = nil) {
        self.meta = meta
        self.type = type
        self.hasSelector = hasSelector
        self.ports = ports
        self.externalName = externalName
    }

    public var ref: K8sRef { K8sRef("Service", meta.key) }

    /// The annotation naming PhysicalEndpoints (comma-separated) whose machines join the
    /// Service's upstreams (the seed fixture physical-endpoint.yaml).
    public static let physicalEndpointsAnnotation = "test.api.io/physical.deployment.endpoints"

    /// The PhysicalEndpoint names of the annotation, in order, each once.
    public var physicalEndpointNames: [String] {
        guard let value = meta.annotations[Self.physicalEndpointsAnnotation] else { return [] }
        var seen: Set<String> = []
        return value.split(separator: ",").map { $0.trimmingSpaces }.filter { !$0.isEmpty && seen.insert($0).inserted }
    }
}

/// A port of an EndpointSlice or an Endpoints subset: its name ("" when unnamed) and number.
public struct K8sEndpointPort: Sendable, Hashable {
    public var name: String
    public var port: Int?

    public init(name: String = "", port: Int?) {
        self.name = name
        self.port = port
    }
}

public struct K8sSliceEndpoint: Sendable, Hashable {
    public var addresses: [String]
    /// nil: unknown, which the API says to treat as ready.
    public var ready: Bool?
    public var terminating: Bool?

    public init(addresses: [String], ready: Bool? = nil, terminating: Bool? = nil) {
        self.addresses = addresses
        self.ready = ready
        self.terminating = terminating
    }
}

public struct K8sEndpointSlice: Sendable, Hashable {
    public var meta: K8sMeta
    /// IPv4, IPv6 or FQDN.
    public var addressType: String
    public var endpoints: [K8sSliceEndpoint]
    public var ports: [K8sEndpointPort]

    public init(meta: K8sMeta, addressType: String, endpoints: [K8sSliceEndpoint], ports: [K8sEndpointPort]) {
        self.meta = meta
        self.addressType = addressType
        self.endpoints = endpoints
        self.ports = ports
    }

    public static let serviceNameLabel = "kubernetes.io/service-name"
    /// The Service this slice belongs to.
    public var serviceName: String? { meta.labels[Self.serviceNameLabel] }
}

public struct K8sEndpointSubset: Sendable, Hashable {
    public var addresses: [String]
    public var notReadyAddresses: [String]
    public var ports: [K8sEndpointPort]

    public init(addresses: [String], notReadyAddresses: [String] = [], ports: [K8sEndpointPort]) {
        self.addresses = addresses
        self.notReadyAddresses = notReadyAddresses
        self.ports = ports
    }
}

/// Hand-written v1 Endpoints (of a Service without a selector, as in the bbs fixture).
public struct K8sEndpoints: Sendable, Hashable {
    public var meta: K8sMeta
    public var subsets: [K8sEndpointSubset]

    public init(meta: K8sMeta, subsets: [K8sEndpointSubset]) {
        self.meta = meta
        self.subsets = subsets
    }
}

/// A Secret of type kubernetes.io/tls: its PEM chain and key (nil when absent or not text).
public struct K8sTLSSecret: Sendable, Hashable {
    public var meta: K8sMeta
    public var certificate: String?
    public var key: String?

    public init(meta: K8sMeta, certificate: String?, key: String?) {
        self.meta = meta
        self.certificate = certificate
        self.key = key
    }

    public static let type = "kubernetes.io/tls"
    public var ref: K8sRef { K8sRef("Secret", meta.key) }
}

/// Machines outside the cluster that join a Service's upstream: `spec.endpoints` ("ip:port"),
/// `http_detect` (the health-check path) and `interval` (seconds).
public struct K8sPhysicalEndpoint: Sendable, Hashable {
    public var meta: K8sMeta
    public var endpoints: [String]
    public var httpDetect: String?
    public var interval: Int?

    public init(meta: K8sMeta, endpoints: [String], httpDetect: String? = nil, interval: Int? = nil) {
        self.meta = meta
        self.endpoints = endpoints
        self.httpDetect = httpDetect
        self.interval = interval
    }

    public var ref: K8sRef { K8sRef("PhysicalEndpoint", meta.key) }
}

// MARK: - The whole picture

/// Everything the translation reads, keyed by namespace/name per kind. Slices are grouped
/// by the Service they belong to when the translation runs.
public struct ClusterState: Sendable, Hashable {
    public var ingresses: [K8sKey: K8sIngress] = [:]
    /// Cluster-scoped: keyed by name (namespace "").
    public var ingressClasses: [K8sKey: K8sIngressClass] = [:]
    public var services: [K8sKey: K8sService] = [:]
    public var endpointSlices: [K8sKey: K8sEndpointSlice] = [:]
    public var endpoints: [K8sKey: K8sEndpoints] = [:]
    public var secrets: [K8sKey: K8sTLSSecret] = [:]
    public var physicalEndpoints: [K8sKey: K8sPhysicalEndpoint] = [:]

    public init() {}

    /// Adds or replaces one object.
    public mutating func insert(_ object: K8sObject) {
        switch object {
        case .ingress(let o): ingresses[o.meta.key] = o
        case .ingressClass(let o): ingressClasses[K8sKey("", o.meta.name)] = o
        case .service(let o): services[o.meta.key] = o
        case .endpointSlice(let o): endpointSlices[o.meta.key] = o
        case .endpoints(let o): endpoints[o.meta.key] = o
        case .secret(let o): secrets[o.meta.key] = o
        case .physicalEndpoint(let o): physicalEndpoints[o.meta.key] = o
        }
    }

    /// Removes the object of `kind` at `key` (the kinds as `K8sObject.kind` names them).
    public mutating func remove(kind: String, key: K8sKey) {
        switch kind {
        case "Ingress": ingresses[key] = nil
        case "IngressClass": ingressClasses[K8sKey("", key.name)] = nil
        case "Service": services[key] = nil
        case "EndpointSlice": endpointSlices[key] = nil
        case "Endpoints": endpoints[key] = nil
        case "Secret": secrets[key] = nil
        case "PhysicalEndpoint": physicalEndpoints[key] = nil
        default: break
        }
    }
}

/// One parsed cluster object.
public enum K8sObject: Sendable, Hashable {
    case ingress(K8sIngress)
    case ingressClass(K8sIngressClass)
    case service(K8sService)
    case endpointSlice(K8sEndpointSlice)
    case endpoints(K8sEndpoints)
    case secret(K8sTLSSecret)
    case physicalEndpoint(K8sPhysicalEndpoint)

    public var kind: String {
        switch self {
        case .ingress: return "Ingress"
        case .ingressClass: return "IngressClass"
        case .service: return "Service"
        case .endpointSlice: return "EndpointSlice"
        case .endpoints: return "Endpoints"
        case .secret: return "Secret"
        case .physicalEndpoint: return "PhysicalEndpoint"
        }
    }

    public var meta: K8sMeta {
        switch self {
        case .ingress(let o): return o.meta
        case .ingressClass(let o): return o.meta
        case .service(let o): return o.meta
        case .endpointSlice(let o): return o.meta
        case .endpoints(let o): return o.meta
        case .secret(let o): return o.meta
        case .physicalEndpoint(let o): return o.meta
        }
    }

    public var ref: K8sRef { K8sRef(kind, meta.key) }
}

extension Substring {
    var trimmingSpaces: String {
        String(self.drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}

extension String {
    var trimmingSpaces: String { Substring(self).trimmingSpaces }
}
