// `switchyard diff` without the server's dry run (an older controller, or a read-only token):
// the apply body against what GET /api/v1/routes, /upstreams, /certificates and /streams answer.
//
// Routes and upstreams are compared as the store would hold them: the body is validated with
// the controller's own rules (defaults filled in) and both sides are compared by their
// canonical documents, field by field. Certificates by SHA-256 fingerprint and default flag;
// streams by their documents (StreamService.validate fills in the defaults).
// Deleting an id that does not exist is no change. What this cannot see: --prune (which
// objects an owner holds is the server's to say) and the routing impact.

import SwitchyardCore

public struct ClientDiff: Sendable, Equatable {
    public struct Change: Sendable, Equatable, CustomStringConvertible {
        public enum Action: String, Sendable { case create, update, delete }
        public var action: Action
        public var kind: ObjectKind
        public var id: String
        /// The top-level fields that differ (update only).
        public var fields: [String] = []

        public var description: String {
            let what = "\(action.rawValue) \(kind.rawValue) \(id)"
            return fields.isEmpty ? what : "\(what): \(fields.joined(separator: ", "))"
        }
    }

    public var changes: [Change] = []
    public var isEmpty: Bool { changes.isEmpty }

    public struct DiffError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The changes `body` (an apply body) makes to the objects in the three GET answers.
    public static func compute(
        body: JSONValue, routes: JSONValue, upstreams: JSONValue, certificates: JSONValue, streams: JSONValue = [:], now: Int64
    ) throws -> ClientDiff {
        var batchBody = body
        /// Takes `key` and `delete.key` off the body: the items and the ids to delete.
        func takeOff(_ key: String) -> (items: [JSONValue], deletes: [String]) {
            guard case .object(var members) = batchBody else { return ([], []) }
            var items: [JSONValue] = []
            var deletes: [String] = []
            if let i = members.firstIndex(where: { $0.key == key }) {
                if case .array(let list) = members[i].value { items = list }
                members.remove(at: i)
            }
            if let i = members.firstIndex(where: { $0.key == "delete" }), case .object(var kinds) = members[i].value,
                let j = kinds.firstIndex(where: { $0.key == key })
            {
                if case .array(let ids) = kinds[j].value {
                    deletes = ids.compactMap { if case .string(let s) = $0 { s } else { nil } }
                }
                kinds.remove(at: j)
                members[i].value = .object(kinds)
            }
            batchBody = .object(members)
            return (items, deletes)
        }
        let (certificateItems, deleteCertificates) = takeOff("certificates")
        let (streamItems, deleteStreams) = takeOff("streams")
        let (batch, problems) = Validator().batchCollectingProblems(batchBody, maxObjects: nil)
        if !problems.isEmpty {
            throw DiffError(description: "the files are invalid:\n" + problems.map { "  \($0.description)" }.joined(separator: "\n"))
        }
        var currentRoutes: [String: JSONValue] = [:]
        var currentUpstreams: [String: JSONValue] = [:]
        var currentCertificates: [String: JSONValue] = [:]
        var currentStreams: [String: JSONValue] = [:]
        if case .array(let items)? = streams["items"] {
            for item in items {
                if case .string(let id)? = item["id"], case .success(let s) = StreamService.validate(item, id: id) {
                    currentStreams[id] = s.document
                }
            }
        }
        if case .array(let items)? = routes["items"] {
            for item in items { if let r = try? Route(document: item) { currentRoutes[r.id] = r.document } }
        }
        if case .array(let items)? = upstreams["items"] {
            for item in items { if let u = try? Upstream(document: item) { currentUpstreams[u.name] = u.document } }
        }
        if case .array(let items)? = certificates["items"] {
            for item in items { if case .string(let id)? = item["id"] { currentCertificates[id] = item } }
        }

        var diff = ClientDiff()
        func compare(_ kind: ObjectKind, _ id: String, desired: JSONValue, current: JSONValue?) {
            guard let current else {
                diff.changes.append(Change(action: .create, kind: kind, id: id))
                return
            }
            let fields = changedFields(current, desired)
            if !fields.isEmpty { diff.changes.append(Change(action: .update, kind: kind, id: id, fields: fields)) }
        }
        for upstream in batch.upstreams {
            compare(.upstream, upstream.name, desired: upstream.document, current: currentUpstreams[upstream.name])
        }
        for route in batch.routes { compare(.route, route.id, desired: route.document, current: currentRoutes[route.id]) }
        for (i, item) in certificateItems.enumerated() {
            guard case .string(let id)? = item["id"] else { throw DiffError(description: "certificates[\(i)]: id is required") }
            var body = item
            if case .object(let members) = item { body = .object(members.filter { $0.key != "id" }) }
            let certificate: Certificate
            switch CertificateValidator().certificate(body, id: id, now: now) {
            case .success(let value): certificate = value
            case .failure(let failure):
                throw DiffError(description: "certificates[\(i)] (\(id)): " + failure.problems.map(\.message).joined(separator: "; "))
            }
            guard let current = currentCertificates[id] else {
                diff.changes.append(Change(action: .create, kind: .certificate, id: id))
                continue
            }
            var fields: [String] = []
            if current["fingerprint_sha256"] != .string(certificate.fingerprintSHA256) { fields.append("cert") }
            if (current["default"] == .bool(true)) != certificate.isDefault { fields.append("default") }
            if !fields.isEmpty { diff.changes.append(Change(action: .update, kind: .certificate, id: id, fields: fields)) }
        }
        for (i, item) in streamItems.enumerated() {
            guard case .string(let id)? = item["id"] else { throw DiffError(description: "streams[\(i)]: id is required") }
            switch StreamService.validate(item, id: id) {
            case .success(let stream): compare(.stream, id, desired: stream.document, current: currentStreams[id])
            case .failure(let failure):
                throw DiffError(description: "streams[\(i)] (\(id)): " + failure.problems.map(\.description).joined(separator: "; "))
            }
        }
        for id in batch.deleteRoutes where currentRoutes[id] != nil { diff.changes.append(Change(action: .delete, kind: .route, id: id)) }
        for id in batch.deleteUpstreams where currentUpstreams[id] != nil {
            diff.changes.append(Change(action: .delete, kind: .upstream, id: id))
        }
        for id in deleteCertificates where currentCertificates[id] != nil {
            diff.changes.append(Change(action: .delete, kind: .certificate, id: id))
        }
        for id in deleteStreams where currentStreams[id] != nil { diff.changes.append(Change(action: .delete, kind: .stream, id: id)) }
        return diff
    }

    /// Top-level members whose values differ (present on one side only included), sorted.
    static func changedFields(_ a: JSONValue, _ b: JSONValue) -> [String] {
        guard case .object(let left) = a, case .object(let right) = b else { return a == b ? [] : ["(document)"] }
        var keys = Set(left.map(\.key)).union(right.map(\.key))
        keys.remove("version")
        return keys.filter { a[$0] != b[$0] }.sorted()
    }

    /// Whether the controller's dry-run answer (docs/change-management.md, "Dry run") would
    /// change anything: its `changed` count of objects created, updated or deleted.
    public static func serverAnswerHasChanges(_ answer: JSONValue) -> Bool {
        if case .integer(let n)? = answer["changed"] { return n > 0 }
        return false
    }
}
