// What the kube role tells the cluster: the addresses of served Ingresses
// (status.loadBalancer.ingress from --publish-address), each endpoint's health in the status
// of PhysicalEndpoints (when their resource has a status subresource), and a Kubernetes
// Event for every problem the translation reports, on the object it is about.
//
// Writes are merge patches of status only (never the whole object), made only when the
// value differs from what the cluster shows, so a quiet cluster sees no writes. Events get a
// name derived from the problem, so a restarted or failed-over source does not repeat them
// (the API answers 409 AlreadyExists), and at most `eventsPerRound` are posted per round.

import Foundation
import Logging
import SwitchyardCore
import SwitchyardKube
import SwitchyardRedis

public actor StatusReporter {
    let client: KubeClient
    let publish: [String]
    let physicalResource: ResourceType
    let physicalHasStatus: Bool
    let logger: Logger
    public var eventsPerRound = 50
    /// Problems already posted (or found posted) by this process.
    var posted: Set<String> = []
    /// Ingress -> addresses this process last wrote (the cache shows them once the watch does).
    var written: [K8sKey: [String]] = [:]
    var physicalWritten: [K8sKey: String] = [:]

    public init(client: KubeClient, publish: [String], physicalResource: ResourceType, physicalHasStatus: Bool, logger: Logger) {
        self.client = client
        self.publish = publish
        self.physicalResource = physicalResource
        self.physicalHasStatus = physicalHasStatus
        self.logger = logger
    }

    /// status.loadBalancer.ingress of every served Ingress.
    public func ingresses(_ served: [K8sKey], current: [K8sKey: [String]]) async {
        guard !publish.isEmpty else { return }
        for key in served where current[key] != publish && written[key] != publish {
            let entries: [SwitchyardKube.JSONValue] = publish.map { address in
                Self.isIP(address) ? ["ip": .string(address)] : ["hostname": .string(address)]
            }
            let patch: SwitchyardKube.JSONValue = ["status": ["loadBalancer": ["ingress": .array(entries)]]]
            do {
                _ = try await client.patch(
                    GenericObject.self, namespace: key.namespace, name: key.name, merge: patch, subresource: "status",
                    resource: Ingress.resource)
                written[key] = publish
                logger.debug("ingress status written", metadata: ["ingress": "\(key)"])
            } catch {
                logger.warning("cannot write ingress status", metadata: ["ingress": "\(key)", "error": "\(error)"])
            }
        }
        // a set: this runs after every reconcile, and a scan of `served` per key is quadratic
        let servedSet = Set(served)
        for key in written.keys where !servedSet.contains(key) { written[key] = nil }
    }

    static func isIP(_ text: String) -> Bool {
        if text.contains(":") { return true }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) }
    }

    /// One Event per new problem, on its object.
    public func events(_ problems: [KubeProblem], state: ClusterState) async {
        var budget = eventsPerRound
        for problem in problems {
            let fingerprint = "\(problem.object)|\(problem.field)|\(problem.message)"
            if posted.contains(fingerprint) { continue }
            if budget == 0 { break }
            budget -= 1
            posted.insert(fingerprint)
            let (apiVersion, uid) = Self.identity(problem.object, in: state)
            let namespace = problem.object.key.namespace.isEmpty ? "default" : problem.object.key.namespace
            let name = "\(String(problem.object.key.name.prefix(200))).sy\(KubeIdentity.digest([fingerprint]))"
            let event = Event(
                metadata: ObjectMeta(name: name, namespace: namespace),
                involvedObject: ObjectReference(
                    apiVersion: apiVersion, kind: problem.object.kind,
                    namespace: problem.object.key.namespace.isEmpty ? nil : problem.object.key.namespace,
                    name: problem.object.key.name, uid: uid),
                reason: problem.reason, message: problem.field.isEmpty ? problem.message : "\(problem.field): \(problem.message)",
                type: "Warning", component: "switchyard-kube", time: Self.now())
            do {
                _ = try await client.create(event, namespace: namespace)
            } catch let error as KubeError where error.isAlreadyExists {
                // posted by an earlier run
            } catch {
                posted.remove(fingerprint)
                logger.warning("cannot post an event", metadata: ["object": "\(problem.object)", "error": "\(error)"])
            }
        }
    }

    static func identity(_ ref: K8sRef, in state: ClusterState) -> (String?, String?) {
        switch ref.kind {
        case "Ingress": return ("networking.k8s.io/v1", state.ingresses[ref.key]?.meta.uid)
        case "Service": return ("v1", state.services[ref.key]?.meta.uid)
        case "EndpointSlice": return ("discovery.k8s.io/v1", state.endpointSlices[ref.key]?.meta.uid)
        case "Secret": return ("v1", state.secrets[ref.key]?.meta.uid)
        case "PhysicalEndpoint": return (nil, state.physicalEndpoints[ref.key]?.meta.uid)
        case "IngressClass": return ("networking.k8s.io/v1", state.ingressClasses[K8sKey("", ref.key.name)]?.meta.uid)
        default: return (nil, nil)
        }
    }

    static func now() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date())
    }

    /// status.endpoints of every PhysicalEndpoint in use: each machine's health as the prober
    /// recorded it in Redis (`unknown` until it decided).
    public func physical(
        _ upstreams: [KubeUpstreamDraft], current: [K8sKey: String], redis: RedisClient, keys: KeySchema = .default
    ) async {
        guard physicalHasStatus else { return }
        var byPhysical: [K8sKey: [(address: String, upstream: String)]] = [:]
        for draft in upstreams {
            for (key, addresses) in draft.physical { byPhysical[key, default: []] += addresses.map { ($0, draft.id) } }
        }
        var records: [String: [String: SwitchyardCore.JSONValue]] = [:]
        for upstream in Set(byPhysical.values.flatMap { $0.map(\.upstream) }).sorted() {
            guard let reply = try? await redis.send(["HGETALL", keys.health(upstream)]), let items = reply.array else { continue }
            var map: [String: SwitchyardCore.JSONValue] = [:]
            var i = 0
            while i + 1 < items.count {
                if let address = items[i].text, let text = items[i + 1].text, let json = try? SwitchyardCore.JSONValue.parse(text) {
                    map[address] = json
                }
                i += 2
            }
            records[upstream] = map
        }
        for (key, machines) in byPhysical.sorted(by: { $0.key < $1.key }) {
            var seen: Set<String> = []
            var entries: [SwitchyardCore.JSONValue] = []
            for machine in machines.sorted(by: { $0.address < $1.address }) where seen.insert(machine.address).inserted {
                var members: [(key: String, value: SwitchyardCore.JSONValue)] = [("address", .string(machine.address))]
                if let record = records[machine.upstream]?[machine.address], case .string(let state)? = record["state"] {
                    members.append(("health", .string(state)))
                    if case .string(let reason)? = record["reason"] { members.append(("reason", .string(reason))) }
                    if case .integer(let since)? = record["since"] { members.append(("since", .string(iso8601(milliseconds: since)))) }
                } else {
                    members.append(("health", "unknown"))
                }
                entries.append(.object(members))
            }
            let up = entries.filter { $0["health"] == .string("up") }.count
            let status: SwitchyardCore.JSONValue = [
                "endpoints": .array(entries), "ready": .string("\(up)/\(entries.count)"),
                "upstreams": .array(Set(machines.map(\.upstream)).sorted().map { .string($0) }),
            ]
            let text = status.canonical
            if current[key] == text || physicalWritten[key] == text { continue }
            do {
                let patch = try SwitchyardKube.JSONValue.from(core: ["status": status])
                _ = try await client.patch(
                    GenericObject.self, namespace: key.namespace, name: key.name, merge: patch, subresource: "status",
                    resource: physicalResource)
                physicalWritten[key] = text
            } catch {
                logger.warning("cannot write PhysicalEndpoint status", metadata: ["physicalendpoint": "\(key)", "error": "\(error)"])
            }
        }
    }
}

extension SwitchyardKube.JSONValue {
    /// The core's JSON as the client's.
    static func from(core value: SwitchyardCore.JSONValue) throws -> SwitchyardKube.JSONValue {
        switch value {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .integer(let i): return .int(Int(i))
        case .number(let text): return .double(Double(text) ?? 0)
        case .string(let s): return .string(s)
        case .array(let items): return .array(try items.map(from(core:)))
        case .object(let members):
            return .object(Dictionary(try members.map { ($0.key, try from(core: $0.value)) }, uniquingKeysWith: { a, _ in a }))
        }
    }
}
