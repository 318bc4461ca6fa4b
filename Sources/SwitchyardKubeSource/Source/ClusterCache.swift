// The cluster as the kube role sees it: every watched object parsed into the core's cluster
// values (ClusterState), the parse problems of objects that could not be read, and a
// generation number that moves with every change. Reflectors write into it; the reconciler
// takes consistent snapshots and waits for the generation to move.

import Logging
import SwitchyardCore
import SwitchyardKube
import Synchronization

/// One watched kind: its REST resource and how its objects are parsed.
public struct WatchedKind: Sendable, Hashable {
    public var kind: String
    public var resource: ResourceType
    public var fieldSelector: String?
    /// Cluster-scoped kinds are watched in every namespace whatever --namespace says.
    public var clusterScoped: Bool { !resource.namespaced }

    public init(kind: String, resource: ResourceType, fieldSelector: String? = nil) {
        self.kind = kind
        self.resource = resource
        self.fieldSelector = fieldSelector
    }

    public static func standard(physicalEndpointGroup: String, physicalEndpointVersion: String) -> [WatchedKind] {
        [
            WatchedKind(kind: "IngressClass", resource: IngressClass.resource),
            WatchedKind(kind: "Ingress", resource: Ingress.resource),
            WatchedKind(kind: "Service", resource: Service.resource),
            WatchedKind(kind: "EndpointSlice", resource: EndpointSlice.resource),
            WatchedKind(kind: "Secret", resource: Secret.resource, fieldSelector: "type=\(Secret.tlsType)"),
            WatchedKind(
                kind: "PhysicalEndpoint",
                resource: PhysicalEndpoint.resourceType(group: physicalEndpointGroup, version: physicalEndpointVersion)),
        ]
    }
}

public final class ClusterCache: Sendable {
    public struct Snapshot: Sendable {
        public var state: ClusterState
        public var generation: Int
        /// Problems of objects that could not be parsed (they are left out of `state`).
        public var problems: [KubeProblem]
        /// Ingress -> the addresses its status.loadBalancer lists now (ip or hostname).
        public var ingressStatus: [K8sKey: [String]]
        /// PhysicalEndpoint -> its status as stored (canonical JSON), "" for none.
        public var physicalStatus: [K8sKey: String]
    }

    struct Inner {
        var state = ClusterState()
        var generation = 0
        var problems: [K8sRef: [KubeProblem]] = [:]
        var ingressStatus: [K8sKey: [String]] = [:]
        var physicalStatus: [K8sKey: String] = [:]
        var synced: Set<String> = []
        var waiters: [(Int, CheckedContinuation<Void, Never>)] = []
    }

    let inner = Mutex(Inner())
    let parser: KubeObjectParser
    let logger: Logger

    public init(parser: KubeObjectParser, logger: Logger) {
        self.parser = parser
        self.logger = logger
    }

    public func snapshot() -> Snapshot {
        inner.withLock {
            Snapshot(
                state: $0.state, generation: $0.generation, problems: $0.problems.values.flatMap { $0 }.sorted(),
                ingressStatus: $0.ingressStatus, physicalStatus: $0.physicalStatus)
        }
    }

    public func isSynced(_ kinds: [String]) -> Bool { inner.withLock { s in kinds.allSatisfy { s.synced.contains($0) } } }

    /// Marks a kind listed without objects (a custom resource that is not installed).
    public func markSyncedEmpty(_ kind: String) {
        let wake = inner.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.synced.insert(kind)
            for key in keys(of: kind, in: s.state) { remove(kind: kind, key: key, from: &s) }
            return bump(&s)
        }
        for w in wake { w.resume() }
    }

    /// Waits until the generation is above `generation`, or the task is cancelled.
    public func waitForChange(after generation: Int) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = inner.withLock { s -> Bool in
                    if s.generation > generation || Task.isCancelled { return true }
                    s.waiters.append((generation, continuation))
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let all = inner.withLock { s -> [CheckedContinuation<Void, Never>] in
                defer { s.waiters = [] }
                return s.waiters.map(\.1)
            }
            for w in all { w.resume() }
        }
    }

    /// Applies one reflector event of `kind`.
    public func apply(_ event: ReflectorEvent<GenericObject>, kind: WatchedKind) {
        let wake = inner.withLock { s -> [CheckedContinuation<Void, Never>] in
            switch event {
            case .resync(let items, _):
                var present: Set<K8sKey> = []
                for item in items { present.insert(put(item, kind: kind, into: &s)) }
                for key in keys(of: kind.kind, in: s.state) where !present.contains(key) { remove(kind: kind.kind, key: key, from: &s) }
                for ref in s.problems.keys where ref.kind == kind.kind && !present.contains(ref.key) { s.problems[ref] = nil }
                s.synced.insert(kind.kind)
            case .added(let item), .modified(let item):
                _ = put(item, kind: kind, into: &s)
            case .deleted(let item):
                remove(kind: kind.kind, key: Self.key(item.metadata, kind), from: &s)
            case .undecodable(let failure):
                if let key = failure.key { remove(kind: kind.kind, key: K8sKey(key.namespace, key.name), from: &s) }
            }
            return bump(&s)
        }
        for w in wake { w.resume() }
    }

    func bump(_ s: inout Inner) -> [CheckedContinuation<Void, Never>] {
        s.generation += 1
        let ready = s.waiters.filter { $0.0 < s.generation }.map(\.1)
        s.waiters.removeAll { $0.0 < s.generation }
        return ready
    }

    static func key(_ meta: ObjectMeta, _ kind: WatchedKind) -> K8sKey {
        K8sKey(kind.clusterScoped ? "" : (meta.namespace ?? ""), meta.name ?? "")
    }

    /// Parses and stores one object; answers its key.
    func put(_ object: GenericObject, kind: WatchedKind, into s: inout Inner) -> K8sKey {
        let key = Self.key(object.metadata, kind)
        var json = Self.core(object.json)
        // list items carry no apiVersion/kind
        if case .object(var members) = json {
            members.removeAll { $0.key == "apiVersion" || $0.key == "kind" }
            json = .object([("apiVersion", .string(kind.resource.apiVersion)), ("kind", .string(kind.kind))] + members)
        }
        let ref = K8sRef(kind.kind, key)
        switch parser.parse(json) {
        case .object(let parsed):
            s.state.insert(parsed)
            s.problems[ref] = nil
        case .ignored:
            remove(kind: kind.kind, key: key, from: &s)
        case .invalid(_, let problems):
            remove(kind: kind.kind, key: key, from: &s)
            s.problems[ref] = problems
            logger.warning(
                "skipping an object that cannot be read", metadata: ["object": "\(ref)", "problems": "\(problems.map(\.description))"])
        }
        switch kind.kind {
        case "Ingress":
            let entries = json["status"]?["loadBalancer"]?["ingress"]
            var addresses: [String] = []
            if case .array(let items)? = entries {
                for item in items {
                    if case .string(let ip)? = item["ip"] {
                        addresses.append(ip)
                    } else if case .string(let host)? = item["hostname"] {
                        addresses.append(host)
                    }
                }
            }
            s.ingressStatus[key] = addresses
        case "PhysicalEndpoint":
            s.physicalStatus[key] = json["status"].map(\.canonical) ?? ""
        default: break
        }
        return key
    }

    func remove(kind: String, key: K8sKey, from s: inout Inner) {
        s.state.remove(kind: kind, key: key)
        s.problems[K8sRef(kind, key)] = nil
        if kind == "Ingress" { s.ingressStatus[key] = nil }
        if kind == "PhysicalEndpoint" { s.physicalStatus[key] = nil }
    }

    func keys(of kind: String, in state: ClusterState) -> [K8sKey] {
        switch kind {
        case "Ingress": return Array(state.ingresses.keys)
        case "IngressClass": return Array(state.ingressClasses.keys)
        case "Service": return Array(state.services.keys)
        case "EndpointSlice": return Array(state.endpointSlices.keys)
        case "Endpoints": return Array(state.endpoints.keys)
        case "Secret": return Array(state.secrets.keys)
        case "PhysicalEndpoint": return Array(state.physicalEndpoints.keys)
        default: return []
        }
    }

    /// The client's JSON as the core's (object members sorted: the order is not kept by the
    /// client, and a fixed one keeps every derived value deterministic).
    public static func core(_ value: SwitchyardKube.JSONValue) -> SwitchyardCore.JSONValue {
        switch value {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .integer(Int64(i))
        case .double(let d): return d.rounded() == d && abs(d) < 9e15 ? .integer(Int64(d)) : .number(String(d))
        case .string(let s): return .string(s)
        case .array(let items): return .array(items.map(core))
        case .object(let members): return .object(members.sorted { $0.key < $1.key }.map { ($0.key, core($0.value)) })
        }
    }
}
