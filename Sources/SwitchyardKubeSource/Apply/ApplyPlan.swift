// What `switchyard apply` changes: the translated objects against what the controller holds.
// Pure, so `--dry-run` and the real run print the same plan, and a second apply of the same
// files plans nothing (so writes nothing).
//
// Created: an id the controller does not have. Changed: its canonical document differs
// (certificates: the fingerprint or the default flag). Deleted: an object whose id says it
// came from an Ingress, Service or Secret in these files (KubeIdentity's origin part) that
// the files no longer produce; an upstream only when no route left after the apply uses it.

import SwitchyardCore

/// What the controller holds, as far as the plan needs it.
public struct ControllerObjects: Sendable {
    public var routes: [String: Route] = [:]
    public var upstreams: [String: Upstream] = [:]
    /// certificate id -> (fingerprint, default flag)
    public var certificates: [String: (fingerprint: String, isDefault: Bool)] = [:]

    public init() {}

    /// From the answers of GET /api/v1/routes, /upstreams and /certificates. Objects the
    /// controller answers but this binary cannot decode are left out (they are not ours).
    public init(routes: JSONValue, upstreams: JSONValue, certificates: JSONValue) {
        for case .array(let items)? in [routes["items"]] {
            for item in items { if let r = try? Route(document: item) { self.routes[r.id] = r } }
        }
        for case .array(let items)? in [upstreams["items"]] {
            for item in items { if let u = try? Upstream(document: item) { self.upstreams[u.name] = u } }
        }
        for case .array(let items)? in [certificates["items"]] {
            for item in items {
                guard case .string(let id)? = item["id"], case .string(let fingerprint)? = item["fingerprint_sha256"] else { continue }
                self.certificates[id] = (fingerprint, item["default"] == .bool(true))
            }
        }
    }
}

public struct ApplyPlan: Sendable {
    public enum Action: String, Sendable { case create, change, delete }

    public struct Item: Sendable, Hashable, CustomStringConvertible {
        public var action: Action
        public var kind: ObjectKind
        public var id: String
        /// What it is, for people: `Ingress default/bbs: bbs.test.com /api (segment_prefix)`.
        public var summary: String

        public var description: String { "\(action.rawValue) \(kind.rawValue) \(id)  \(summary)" }
    }

    public var items: [Item] = []
    public var putUpstreams: [Upstream] = []
    public var putRoutes: [Route] = []
    public var putCertificates: [Certificate] = []
    public var deleteRoutes: [String] = []
    public var deleteUpstreams: [String] = []
    public var deleteCertificates: [String] = []

    public var isEmpty: Bool { items.isEmpty }

    /// `origins`: the origin hashes (KubeIdentity) of every Ingress, Service and Secret in the
    /// files: what the files produced before and no longer do is deleted.
    public init(desired: KubeDesired, current: ControllerObjects, origins: Set<String>) {
        func describe(_ kind: ObjectKind, _ id: String, _ detail: String) -> String {
            let origin = desired.origin(kind, id).map { "\($0)" } ?? "from an earlier apply"
            return detail.isEmpty ? origin : "\(origin): \(detail)"
        }
        for upstream in desired.upstreams {
            let detail = "\(upstream.endpoints.count) endpoint\(upstream.endpoints.count == 1 ? "" : "s")"
            if let stored = current.upstreams[upstream.name] {
                if stored.canonicalDocument != upstream.canonicalDocument {
                    putUpstreams.append(upstream)
                    items.append(
                        Item(action: .change, kind: .upstream, id: upstream.name, summary: describe(.upstream, upstream.name, detail)))
                }
            } else {
                putUpstreams.append(upstream)
                items.append(Item(action: .create, kind: .upstream, id: upstream.name, summary: describe(.upstream, upstream.name, detail)))
            }
        }
        for route in desired.routes {
            let detail = "\(route.host) \(route.path) (\(route.match.rawValue))"
            if let stored = current.routes[route.id] {
                if stored.canonicalDocument != route.canonicalDocument {
                    putRoutes.append(route)
                    items.append(Item(action: .change, kind: .route, id: route.id, summary: describe(.route, route.id, detail)))
                }
            } else {
                putRoutes.append(route)
                items.append(Item(action: .create, kind: .route, id: route.id, summary: describe(.route, route.id, detail)))
            }
        }
        for certificate in desired.certificates {
            let detail = certificate.names.joined(separator: ", ")
            if let stored = current.certificates[certificate.id] {
                if stored.fingerprint != certificate.fingerprintSHA256 || stored.isDefault != certificate.isDefault {
                    putCertificates.append(certificate)
                    items.append(
                        Item(
                            action: .change, kind: .certificate, id: certificate.id, summary: describe(.certificate, certificate.id, detail)
                        ))
                }
            } else {
                putCertificates.append(certificate)
                items.append(
                    Item(action: .create, kind: .certificate, id: certificate.id, summary: describe(.certificate, certificate.id, detail)))
            }
        }

        func ours(_ id: String) -> Bool { KubeIdentity.originHash(of: id).map(origins.contains) ?? false }
        let desiredRoutes = Set(desired.routes.map(\.id))
        for id in current.routes.keys.sorted() where ours(id) && !desiredRoutes.contains(id) {
            deleteRoutes.append(id)
            let route = current.routes[id]!
            items.append(Item(action: .delete, kind: .route, id: id, summary: "\(route.host) \(route.path) (\(route.match.rawValue))"))
        }
        // upstreams still used by a route that stays (one this apply does not delete)
        let deleted = Set(deleteRoutes)
        var used: Set<String> = []
        for route in current.routes.values where !deleted.contains(route.id) { used.formUnion(route.upstreams) }
        for route in desired.routes { used.formUnion(route.upstreams) }
        let desiredUpstreams = Set(desired.upstreams.map(\.name))
        for id in current.upstreams.keys.sorted() where ours(id) && !desiredUpstreams.contains(id) && !used.contains(id) {
            deleteUpstreams.append(id)
            items.append(Item(action: .delete, kind: .upstream, id: id, summary: "no longer produced"))
        }
        let desiredCertificates = Set(desired.certificates.map(\.id))
        for id in current.certificates.keys.sorted() where ours(id) && !desiredCertificates.contains(id) {
            deleteCertificates.append(id)
            items.append(Item(action: .delete, kind: .certificate, id: id, summary: "no longer produced"))
        }
    }

    /// The body of POST /api/v1/apply (routes and upstreams; certificates go one by one).
    public var batch: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("upstreams", .array(putUpstreams.map(\.document))), ("routes", .array(putRoutes.map(\.document))),
        ]
        if !deleteRoutes.isEmpty || !deleteUpstreams.isEmpty {
            members.append(
                ("delete", ["routes": .array(deleteRoutes.map { .string($0) }), "upstreams": .array(deleteUpstreams.map { .string($0) })]))
        }
        return .object(members)
    }

    /// Whether the batch fits one atomic `POST /api/v1/apply` (Batch.maxObjects objects and
    /// Batch.maxBytes of body); a larger one is applied in consecutive atomic parts (`?atomic=false`).
    public var batchIsAtomic: Bool {
        let body = batch
        return Batch.objectCount(body) <= Batch.maxObjects && body.canonical.utf8.count <= Batch.maxBytes
    }

    public var hasBatch: Bool { !(putUpstreams.isEmpty && putRoutes.isEmpty && deleteRoutes.isEmpty && deleteUpstreams.isEmpty) }
}
