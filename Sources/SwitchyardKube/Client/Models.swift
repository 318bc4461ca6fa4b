// Codable models of the fields the Ingress translation and the controller need. Enumerations the
// API defines (pathType, addressType, ...) are Strings: an unexpected value is reported by the
// translation naming the object, rather than failing to decode the whole object.

// MARK: networking.k8s.io/v1 Ingress, IngressClass

import Foundation

public struct Ingress: KubeObject, Hashable {
    public static let resource = ResourceType(
        group: "networking.k8s.io", version: "v1", plural: "ingresses", kind: "Ingress", namespaced: true)
    public var metadata: ObjectMeta
    public var spec: IngressSpec?
    public var status: IngressStatus?
    public init(metadata: ObjectMeta, spec: IngressSpec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }
}

public struct IngressSpec: Codable, Sendable, Hashable {
    public var ingressClassName: String?
    public var defaultBackend: IngressBackend?
    public var tls: [IngressTLS]?
    public var rules: [IngressRule]?
    public init(
        ingressClassName: String? = nil, defaultBackend: IngressBackend? = nil, tls: [IngressTLS]? = nil, rules: [IngressRule]? = nil
    ) {
        self.ingressClassName = ingressClassName
        self.defaultBackend = defaultBackend
        self.tls = tls
        self.rules = rules
    }
}

public struct IngressBackend: Codable, Sendable, Hashable {
    public var service: IngressServiceBackend?
    public var resource: TypedLocalObjectReference?
    public init(service: IngressServiceBackend? = nil) { self.service = service }
}

public struct IngressServiceBackend: Codable, Sendable, Hashable {
    public var name: String
    public var port: ServiceBackendPort?
    public init(name: String, port: ServiceBackendPort? = nil) {
        self.name = name
        self.port = port
    }
}

public struct ServiceBackendPort: Codable, Sendable, Hashable {
    public var name: String?
    public var number: Int?
    public init(name: String? = nil, number: Int? = nil) {
        self.name = name
        self.number = number
    }
}

public struct TypedLocalObjectReference: Codable, Sendable, Hashable {
    public var apiGroup: String?
    public var kind: String
    public var name: String
}

public struct IngressTLS: Codable, Sendable, Hashable {
    public var hosts: [String]?
    public var secretName: String?
    public init(hosts: [String]? = nil, secretName: String? = nil) {
        self.hosts = hosts
        self.secretName = secretName
    }
}

public struct IngressRule: Codable, Sendable, Hashable {
    public var host: String?
    public var http: HTTPIngressRuleValue?
    public init(host: String? = nil, http: HTTPIngressRuleValue? = nil) {
        self.host = host
        self.http = http
    }
}

public struct HTTPIngressRuleValue: Codable, Sendable, Hashable {
    public var paths: [HTTPIngressPath]
    public init(paths: [HTTPIngressPath]) { self.paths = paths }
}

public struct HTTPIngressPath: Codable, Sendable, Hashable {
    public var path: String?
    /// Exact, Prefix or ImplementationSpecific.
    public var pathType: String?
    public var backend: IngressBackend
    public init(path: String? = nil, pathType: String? = nil, backend: IngressBackend) {
        self.path = path
        self.pathType = pathType
        self.backend = backend
    }
}

public struct IngressStatus: Codable, Sendable, Hashable {
    public var loadBalancer: IngressLoadBalancerStatus?
    public init(loadBalancer: IngressLoadBalancerStatus? = nil) { self.loadBalancer = loadBalancer }
}

public struct IngressLoadBalancerStatus: Codable, Sendable, Hashable {
    public var ingress: [IngressLoadBalancerIngress]?
    public init(ingress: [IngressLoadBalancerIngress]? = nil) { self.ingress = ingress }
}

public struct IngressLoadBalancerIngress: Codable, Sendable, Hashable {
    public var ip: String?
    public var hostname: String?
    public init(ip: String? = nil, hostname: String? = nil) {
        self.ip = ip
        self.hostname = hostname
    }
}

public struct IngressClass: KubeObject, Hashable {
    public static let resource = ResourceType(
        group: "networking.k8s.io", version: "v1", plural: "ingressclasses", kind: "IngressClass", namespaced: false)
    public static let defaultClassAnnotation = "ingressclass.kubernetes.io/is-default-class"
    public var metadata: ObjectMeta
    public var spec: IngressClassSpec?
    public init(metadata: ObjectMeta, spec: IngressClassSpec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }
    /// Whether the class carries the default-class annotation set to "true".
    public var isDefault: Bool { metadata.annotations?[Self.defaultClassAnnotation] == "true" }
}

public struct IngressClassSpec: Codable, Sendable, Hashable {
    public var controller: String?
    public var parameters: JSONValue?
    public init(controller: String? = nil) { self.controller = controller }
}

// MARK: v1 Service, Endpoints, Secret

public struct Service: KubeObject, Hashable {
    public static let resource = ResourceType(group: "", version: "v1", plural: "services", kind: "Service", namespaced: true)
    public var metadata: ObjectMeta
    public var spec: ServiceSpec?
    public init(metadata: ObjectMeta, spec: ServiceSpec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }
}

public struct ServiceSpec: Codable, Sendable, Hashable {
    /// ClusterIP, NodePort, LoadBalancer or ExternalName.
    public var type: String?
    public var selector: [String: String]?
    public var ports: [ServicePort]?
    public var clusterIP: String?
    public var externalName: String?
    public var sessionAffinity: String?
    public init(type: String? = nil, selector: [String: String]? = nil, ports: [ServicePort]? = nil, externalName: String? = nil) {
        self.type = type
        self.selector = selector
        self.ports = ports
        self.externalName = externalName
    }
}

public struct ServicePort: Codable, Sendable, Hashable {
    public var name: String?
    public var port: Int
    public var targetPort: IntOrString?
    public var `protocol`: String?
    public var appProtocol: String?
    public init(name: String? = nil, port: Int, targetPort: IntOrString? = nil, protocol: String? = nil) {
        self.name = name
        self.port = port
        self.targetPort = targetPort
        self.protocol = `protocol`
    }
}

/// A port given by number or by name (Service targetPort).
public enum IntOrString: Codable, Sendable, Hashable {
    case int(Int)
    case string(String)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let i = try? c.decode(Int.self) { self = .int(i) } else { self = .string(try c.decode(String.self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .int(let i): try c.encode(i)
        case .string(let s): try c.encode(s)
        }
    }
}

public struct Endpoints: KubeObject, Hashable {
    public static let resource = ResourceType(group: "", version: "v1", plural: "endpoints", kind: "Endpoints", namespaced: true)
    public var metadata: ObjectMeta
    public var subsets: [EndpointSubset]?
    public init(metadata: ObjectMeta, subsets: [EndpointSubset]? = nil) {
        self.metadata = metadata
        self.subsets = subsets
    }
}

public struct EndpointSubset: Codable, Sendable, Hashable {
    public var addresses: [EndpointAddress]?
    public var notReadyAddresses: [EndpointAddress]?
    public var ports: [EndpointPort]?
    public init(addresses: [EndpointAddress]? = nil, notReadyAddresses: [EndpointAddress]? = nil, ports: [EndpointPort]? = nil) {
        self.addresses = addresses
        self.notReadyAddresses = notReadyAddresses
        self.ports = ports
    }
}

public struct EndpointAddress: Codable, Sendable, Hashable {
    public var ip: String
    public var hostname: String?
    public init(ip: String, hostname: String? = nil) {
        self.ip = ip
        self.hostname = hostname
    }
}

public struct EndpointPort: Codable, Sendable, Hashable {
    public var name: String?
    public var port: Int
    public var `protocol`: String?
    public init(name: String? = nil, port: Int, protocol: String? = nil) {
        self.name = name
        self.port = port
        self.protocol = `protocol`
    }
}

public struct Secret: KubeObject, Hashable {
    public static let resource = ResourceType(group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true)
    public static let tlsType = "kubernetes.io/tls"
    public var metadata: ObjectMeta
    public var type: String?
    /// base64 values, as the API serves them (decoded by `value(for:)`).
    public var data: [String: String]?
    public init(metadata: ObjectMeta, type: String? = nil, data: [String: String]? = nil) {
        self.metadata = metadata
        self.type = type
        self.data = data
    }

    public func value(for key: String) -> [UInt8]? {
        guard let encoded = data?[key], let decoded = Data(base64Encoded: encoded) else { return nil }
        return Array(decoded)
    }

    /// tls.crt and tls.key of a kubernetes.io/tls Secret, as PEM text.
    public var tlsPair: (certificate: String, key: String)? {
        guard let c = value(for: "tls.crt"), let k = value(for: "tls.key"),
            let cert = String(bytes: c, encoding: .utf8), let key = String(bytes: k, encoding: .utf8)
        else { return nil }
        return (cert, key)
    }
}

// MARK: discovery.k8s.io/v1 EndpointSlice

public struct EndpointSlice: KubeObject, Hashable {
    public static let resource = ResourceType(
        group: "discovery.k8s.io", version: "v1", plural: "endpointslices", kind: "EndpointSlice", namespaced: true)
    public static let serviceNameLabel = "kubernetes.io/service-name"
    public var metadata: ObjectMeta
    /// IPv4, IPv6 or FQDN.
    public var addressType: String
    public var endpoints: [SliceEndpoint]?
    public var ports: [EndpointSlicePort]?
    public init(metadata: ObjectMeta, addressType: String, endpoints: [SliceEndpoint]? = nil, ports: [EndpointSlicePort]? = nil) {
        self.metadata = metadata
        self.addressType = addressType
        self.endpoints = endpoints
        self.ports = ports
    }
    /// The Service this slice belongs to (its kubernetes.io/service-name label).
    public var serviceName: String? { metadata.labels?[Self.serviceNameLabel] }
}

public struct SliceEndpoint: Codable, Sendable, Hashable {
    public var addresses: [String]
    public var conditions: EndpointConditions?
    public var hostname: String?
    public var nodeName: String?
    public var zone: String?
    public init(addresses: [String], conditions: EndpointConditions? = nil) {
        self.addresses = addresses
        self.conditions = conditions
    }
}

public struct EndpointConditions: Codable, Sendable, Hashable {
    public var ready: Bool?
    public var serving: Bool?
    public var terminating: Bool?
    public init(ready: Bool? = nil, serving: Bool? = nil, terminating: Bool? = nil) {
        self.ready = ready
        self.serving = serving
        self.terminating = terminating
    }
}

public struct EndpointSlicePort: Codable, Sendable, Hashable {
    public var name: String?
    public var port: Int?
    public var `protocol`: String?
    public var appProtocol: String?
    public init(name: String? = nil, port: Int? = nil, protocol: String? = nil) {
        self.name = name
        self.port = port
        self.protocol = `protocol`
    }
}

// MARK: PhysicalEndpoint (test.api.io/v1beta1 by default)

/// Machines outside the cluster that join a Service's upstream (see the seed fixture
/// physical-endpoint.yaml): `spec.endpoints` as "ip:port", `http_detect` the health-check path,
/// `interval` seconds between checks. Its group and version are configurable: pass
/// `PhysicalEndpoint.resourceType(group:version:)` to the client.
public struct PhysicalEndpoint: KubeObject, Hashable {
    public static let resource = resourceType(group: "test.api.io", version: "v1beta1")
    public static func resourceType(group: String, version: String) -> ResourceType {
        ResourceType(group: group, version: version, plural: "physicalendpoints", kind: "PhysicalEndpoint", namespaced: true)
    }
    /// The Service annotation naming PhysicalEndpoints (comma-separated) to merge in.
    public static let serviceAnnotation = "test.api.io/physical.deployment.endpoints"

    public var metadata: ObjectMeta
    public var spec: PhysicalEndpointSpec?
    public var status: JSONValue?
    public init(metadata: ObjectMeta, spec: PhysicalEndpointSpec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }
}

public struct PhysicalEndpointSpec: Codable, Sendable, Hashable {
    public var endpoints: [String]?
    public var httpDetect: String?
    public var interval: Int?
    enum CodingKeys: String, CodingKey {
        case endpoints
        case httpDetect = "http_detect"
        case interval
    }
    public init(endpoints: [String]? = nil, httpDetect: String? = nil, interval: Int? = nil) {
        self.endpoints = endpoints
        self.httpDetect = httpDetect
        self.interval = interval
    }
}

// MARK: v1 Event, coordination.k8s.io/v1 Lease

public struct Event: KubeObject, Hashable {
    public static let resource = ResourceType(group: "", version: "v1", plural: "events", kind: "Event", namespaced: true)
    public var metadata: ObjectMeta
    public var involvedObject: ObjectReference
    public var reason: String?
    public var message: String?
    /// Normal or Warning.
    public var type: String?
    public var source: EventSource?
    public var firstTimestamp: String?
    public var lastTimestamp: String?
    public var count: Int?
    public var reportingComponent: String?
    public var reportingInstance: String?

    public init(
        metadata: ObjectMeta, involvedObject: ObjectReference, reason: String, message: String, type: String,
        component: String, instance: String? = nil, time: String
    ) {
        self.metadata = metadata
        self.involvedObject = involvedObject
        self.reason = reason
        self.message = message
        self.type = type
        self.source = EventSource(component: component)
        self.firstTimestamp = time
        self.lastTimestamp = time
        self.count = 1
        self.reportingComponent = component
        self.reportingInstance = instance
    }
}

public struct ObjectReference: Codable, Sendable, Hashable {
    public var apiVersion: String?
    public var kind: String?
    public var namespace: String?
    public var name: String?
    public var uid: String?
    public var resourceVersion: String?
    public init(apiVersion: String? = nil, kind: String? = nil, namespace: String? = nil, name: String? = nil, uid: String? = nil) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.uid = uid
    }
    /// A reference to `object` of type `resource`.
    public init(_ resource: ResourceType, _ meta: ObjectMeta) {
        self.init(apiVersion: resource.apiVersion, kind: resource.kind, namespace: meta.namespace, name: meta.name, uid: meta.uid)
    }
}

public struct EventSource: Codable, Sendable, Hashable {
    public var component: String?
    public var host: String?
    public init(component: String? = nil) { self.component = component }
}

public struct Lease: KubeObject, Hashable {
    public static let resource = ResourceType(
        group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true)
    public var metadata: ObjectMeta
    public var spec: LeaseSpec?
    public init(metadata: ObjectMeta, spec: LeaseSpec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }
}

/// Every field of LeaseSpec (coordination.k8s.io/v1), so a full update loses nothing.
public struct LeaseSpec: Codable, Sendable, Hashable {
    public var holderIdentity: String?
    public var leaseDurationSeconds: Int?
    /// MicroTime: RFC 3339 with microseconds.
    public var acquireTime: String?
    public var renewTime: String?
    public var leaseTransitions: Int?
    public var strategy: String?
    public var preferredHolder: String?
    public init(
        holderIdentity: String? = nil, leaseDurationSeconds: Int? = nil, acquireTime: String? = nil,
        renewTime: String? = nil, leaseTransitions: Int? = nil
    ) {
        self.holderIdentity = holderIdentity
        self.leaseDurationSeconds = leaseDurationSeconds
        self.acquireTime = acquireTime
        self.renewTime = renewTime
        self.leaseTransitions = leaseTransitions
    }
}
