// The change history (switchyard:{cfg}:history, written by sy_apply in the same atomic step
// as every change: redis/README.md, "History"), reverts built from it, and dry-run reports.
// Certificate keys and routes' HS256 secrets are in the history (a revert restores them byte
// for byte, encrypted when the controller has SWITCHYARD_CERT_KEY) but never in an answer:
// views redact them.

import SwitchyardCore
import SwitchyardRedis

/// One entry of the history.
struct HistoryEntry: Sendable {
    struct Object: Sendable {
        var kind: String
        var id: String
        /// The stored document before and after ("" = absent).
        var before: [UInt8]
        var after: [UInt8]
    }

    var version: Int64
    var who: String
    var note: String
    var ts: Int64
    var digest: String
    var bytes: Int64
    /// sy_digest or sy_reseed: every edge reloaded; a revert cannot cross it.
    var resync: Bool
    var objects: [Object]

    /// One XRANGE item: [id, [field, value, ...]].
    init?(_ reply: RedisReply) {
        guard let pair = reply.array, pair.count == 2, let id = pair[0].text, let fields = pair[1].array,
            let version = Int64(id.split(separator: "-").first ?? "")
        else { return nil }
        self.version = version
        who = ""
        note = ""
        ts = 0
        digest = ""
        bytes = 0
        resync = false
        objects = []
        var i = 0
        while i + 1 < fields.count {
            let name = fields[i].text ?? ""
            let value = fields[i + 1].bytes ?? []
            let text = String(decoding: value, as: UTF8.self)
            switch name {
            case "who": who = text
            case "note": note = text
            case "ts": ts = Int64(text) ?? 0
            case "digest": digest = text
            case "bytes": bytes = Int64(text) ?? 0
            case "op": resync = text == "resync"
            case "o":
                let parts = text.split(separator: ":", maxSplits: 1)
                objects.append(Object(kind: String(parts.first ?? ""), id: parts.count > 1 ? String(parts[1]) : "", before: [], after: []))
            case "b": if !objects.isEmpty { objects[objects.count - 1].before = value }
            case "a": if !objects.isEmpty { objects[objects.count - 1].after = value }
            default: break
            }
            i += 2
        }
    }
}

/// Why a revert cannot reach a version, and the oldest it can.
struct RevertRange: Sendable, Equatable {
    /// The oldest version a revert can restore (nil: none, the history is empty).
    var oldest: Int64?
}

extension ConfigStore {
    // MARK: Reading

    /// Entries with versions in `from...to` (to nil: up to the newest), at most `count`.
    func historyEntries(from: Int64, to: Int64? = nil, count: Int) async throws(StoreError) -> [HistoryEntry] {
        let end = to.map { "\($0)-0" } ?? "+"
        let reply = try await send(["XRANGE", keys.history, "\(max(from, 0))-0", end, "COUNT", String(max(count, 1))])
        guard let items = reply.array else {
            if case .error(let message) = reply { throw StoreError(.unexpected, "XRANGE history: \(message)") }
            return []
        }
        return items.compactMap(HistoryEntry.init)
    }

    /// The oldest and newest versions in the history (nil when empty).
    func historyBounds() async throws(StoreError) -> (oldest: Int64?, newest: Int64?) {
        let replies: [RedisReply]
        do {
            replies = try await redis.pipeline([
                ["XRANGE", keys.history, "-", "+", "COUNT", "1"], ["XREVRANGE", keys.history, "+", "-", "COUNT", "1"],
            ])
        } catch {
            throw StoreError.from(error)
        }
        func first(_ reply: RedisReply) -> Int64? { reply.array?.first.flatMap(HistoryEntry.init)?.version }
        return (first(replies[0]), first(replies[1]))
    }

    // MARK: Revert

    /// The operations that bring every object changed after `target` back to its stored
    /// bytes at `target`, from the entries `target...current` (all of them, contiguous, no
    /// resync after `target`; else `.conflict` naming the oldest version a revert can reach).
    /// Also answers the digest recorded at `target` and the objects an owner holds (now or
    /// at `target`).
    func revertPlan(to target: Int64, current: Int64) async throws(StoreError) -> (
        operations: [ApplyOperation], digest: String, owned: [(field: String, owner: String)], oldest: Int64?
    ) {
        let entries = try await historyEntries(from: target, to: current, count: Int(min(current - target + 1, 100_000)))
        // the oldest version reachable: walk back from the newest while versions are
        // contiguous and no entry after it is a resync
        var oldest: Int64?
        if let last = entries.last, last.version == current {
            oldest = current
            var i = entries.count - 1
            while i > 0, entries[i - 1].version == entries[i].version - 1, !entries[i].resync {
                i -= 1
                oldest = entries[i].version
            }
        }
        guard let reachable = oldest, reachable <= target, let first = entries.first, first.version == target else {
            var floor = oldest
            if floor == nil || (floor ?? 0) > current { floor = try await historyBounds().newest }
            throw StoreError(
                .conflict,
                "version \(target) is beyond the history: the oldest version a revert can restore is "
                    + (floor.map(String.init) ?? "none (the history is empty)"),
                report: ["oldest_version": floor.map { .integer($0) } ?? .null])
        }
        var state: [String: (kind: String, id: String, at: [UInt8], now: [UInt8])] = [:]
        var order: [String] = []
        for entry in entries.dropFirst() {
            for object in entry.objects {
                let field = object.kind + ":" + object.id
                if var known = state[field] {
                    known.now = object.after
                    state[field] = known
                } else {
                    state[field] = (object.kind, object.id, object.before, object.after)
                    order.append(field)
                }
            }
        }
        var puts: [ObjectKind: [ApplyOperation]] = [:]
        var dels: [ObjectKind: [ApplyOperation]] = [:]
        var ownedAtTarget: [String: String] = [:]
        for field in order {
            guard let s = state[field], s.at != s.now, let kind = ObjectKind(rawValue: s.kind) else { continue }
            if s.at.isEmpty {
                dels[kind, default: []].append(.delete(kind, s.id))
                continue
            }
            var refs: [String] = []
            if kind == .route {
                do { refs = try StoredDocument.route(s.at).value.upstreams } catch {
                    throw StoreError(.corrupt, "history of route \(s.id) at version \(target): \(error)")
                }
            }
            if case .string(let owner)? = (try? JSONValue.parse(s.at))?["owner"] { ownedAtTarget[field] = owner }
            puts[kind, default: []].append(.restore(kind, s.id, stored: String(decoding: s.at, as: UTF8.self), refs: refs))
        }
        // upstreams before the routes and streams that need them, routes off an upstream
        // before it goes (sy_apply checks streams after the whole batch)
        var operations: [ApplyOperation] = []
        for kind in [ObjectKind.upstream, .certificate, .route, .stream] { operations += puts[kind] ?? [] }
        for kind in [ObjectKind.stream, .route, .certificate, .upstream] { operations += dels[kind] ?? [] }
        var owned: [(field: String, owner: String)] = []
        if !operations.isEmpty {
            let fields = operations.map { $0.kind.rawValue + ":" + $0.id }
            let reply = try await send(["HMGET", keys.owners] + fields)
            let owners = reply.array ?? []
            for (i, field) in fields.enumerated() {
                if let owner = (i < owners.count ? owners[i].text : nil) ?? ownedAtTarget[field] { owned.append((field, owner)) }
            }
        }
        return (operations, first.digest, owned, oldest)
    }

    // MARK: Dry runs

    /// What `operations` would change (sy_apply has checked them): per object the diff, and
    /// the routing impact of the configuration afterwards.
    func dryRunReport(_ operations: [ApplyOperation], version: Int64) async throws(StoreError) -> JSONValue {
        var created: [JSONValue] = []
        var updated: [JSONValue] = []
        var deleted: [JSONValue] = []
        if !operations.isEmpty {
            let reply = try await send(["MGET"] + operations.map { keys.object($0.kind, $0.id) })
            let stored = reply.array ?? []
            for (i, op) in operations.enumerated() {
                let beforeBytes = i < stored.count ? stored[i].bytes : nil
                let before = beforeBytes.flatMap { try? JSONValue.parse($0) }
                let after: JSONValue?
                switch op.op {
                case .del: after = nil
                case .put, .restore: after = try? JSONValue.parse(op.document)
                }
                let changes = DocumentDiff.fields(
                    HistoryView.redacted(op.kind.rawValue, before, against: after),
                    HistoryView.redacted(op.kind.rawValue, after, against: before))
                let head: [(key: String, value: JSONValue)] = [("kind", .string(op.kind.rawValue)), ("id", .string(op.id))]
                switch (before, after) {
                case (nil, _?): created.append(.object(head + [("fields", HistoryView.changesJSON(changes))]))
                case (_?, nil): deleted.append(.object(head))
                case (_?, _?):
                    // a put identical to what is stored, or only the version differs
                    if !changes.isEmpty { updated.append(.object(head + [("fields", HistoryView.changesJSON(changes))])) }
                case (nil, nil): break
                }
            }
        }
        let impact = try await routingImpact(operations)
        return [
            "dry_run": true, "version": .integer(version),
            "changed": .integer(Int64(created.count + updated.count + deleted.count)),
            "changes": ["created": .array(created), "updated": .array(updated), "deleted": .array(deleted)],
            "impact": impact,
        ]
    }

    /// Shadowed or unreachable routes (before and after: `new` marks those the change
    /// causes), changed upstreams left without endpoints, and routes the change touches
    /// (directly or through an upstream) whose upstream has no endpoint able to take a request.
    func routingImpact(_ operations: [ApplyOperation]) async throws(StoreError) -> JSONValue {
        let routesNow = try await routes().items.map(\.value)
        let upstreamsNow = try await upstreams().items.map(\.value)
        var routes: [String: Route] = Dictionary(routesNow.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var upstreams: [String: Upstream] = Dictionary(upstreamsNow.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var touchedRoutes = Set<String>()
        var touchedUpstreams = Set<String>()
        for op in operations {
            let bytes: [UInt8]? =
                op.op == .del ? nil : Array((op.op == .restore ? op.document : "{\"version\":0," + op.document.dropFirst()).utf8)
            switch op.kind {
            case .route:
                touchedRoutes.insert(op.id)
                routes[op.id] = bytes.flatMap { try? StoredDocument.route($0).value }
            case .upstream:
                touchedUpstreams.insert(op.id)
                upstreams[op.id] = bytes.flatMap { try? StoredDocument.upstream($0).value }
            case .certificate, .stream:
                break
            }
        }
        let before = Set(RoutingImpact.shadowed(routesNow).map(\.route))
        let shadowed = RoutingImpact.shadowed(Array(routes.values)).map { s -> JSONValue in
            [
                "route": .string(s.route), "by": s.by.map { .string($0) } ?? .null, "reason": .string(s.reason),
                "new": .bool(!before.contains(s.route)),
            ]
        }
        let empty = RoutingImpact.upstreamsWithoutEndpoints(upstreams.values.filter { touchedUpstreams.contains($0.name) })
        let affected = routes.values.filter { route in
            touchedRoutes.contains(route.id) || route.upstreams.contains { touchedUpstreams.contains($0) }
        }
        let names = Set(affected.flatMap(\.upstreams)).sorted()
        var down: [String: Set<String>] = [:]
        if !names.isEmpty {
            let replies: [RedisReply]
            do { replies = try await redis.pipeline(names.map { ["HGETALL", keys.health($0)] }) } catch {
                throw StoreError.from(error)
            }
            for (name, reply) in zip(names, replies) {
                down[name] = Set(Self.healthRecords(reply).filter { $0.value.state == .down }.map(\.key))
            }
        }
        let unhealthy = RoutingImpact.routesWithoutHealthyEndpoints(affected, upstreams: upstreams, down: down)
        return [
            "shadowed_routes": .array(shadowed),
            "upstreams_without_endpoints": .array(empty.map { .string($0) }),
            "routes_without_healthy_endpoints": .array(
                unhealthy.map { ["route": .string($0.route), "upstreams": .array($0.upstreams.map { .string($0) })] }),
        ]
    }
}

/// The answers' form of history entries and documents.
enum HistoryView {
    /// A document for an answer: certificates without their key (`key`, `key_enc`) and
    /// chain (`cert`); the metadata (names, dates, fingerprint) stays. `against`: when the
    /// other side's key differs, the redacted value says so, so a diff still shows it.
    /// Routes without their HS256 secrets (`secret_sha256` stays: JWTSecrets.redacted).
    static func redacted(_ kind: String, _ doc: JSONValue?, against other: JSONValue? = nil) -> JSONValue? {
        if kind == ObjectKind.route.rawValue, let doc { return JWTSecrets.redacted(doc) }
        guard kind == ObjectKind.certificate.rawValue, case .object(let members)? = doc else { return doc }
        var out: [(key: String, value: JSONValue)] = []
        var key: JSONValue?
        for member in members {
            switch member.key {
            case "key", "key_enc": key = member.value
            case "cert": continue
            default: out.append(member)
            }
        }
        if let key {
            let otherKey = other?["key_enc"] ?? other?["key"]
            let stored = doc?["key_enc"] != nil ? "encrypted" : "plaintext"
            out.append(("key", .string(otherKey != nil && otherKey != key ? "redacted (\(stored), changed)" : "redacted (\(stored))")))
        }
        return .object(out)
    }

    static func document(_ kind: String, _ bytes: [UInt8]) -> JSONValue {
        if bytes.isEmpty { return .null }
        guard let doc = try? JSONValue.parse(bytes) else { return .string("(not JSON: \(bytes.count) bytes)") }
        return redacted(kind, doc) ?? .null
    }

    static func changesJSON(_ changes: [FieldChange]) -> JSONValue {
        .array(changes.map { ["field": .string($0.field), "before": $0.before ?? .null, "after": $0.after ?? .null] })
    }

    static func json(_ entry: HistoryEntry, objects: Bool = true) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("version", .integer(entry.version)), ("time", .string(iso8601(milliseconds: entry.ts))), ("ts_ms", .integer(entry.ts)),
            ("who", .string(entry.who)), ("note", entry.note.isEmpty ? .null : .string(entry.note)),
            ("digest", .string(entry.digest)),
        ]
        if entry.resync { members.append(("resync", true)) }
        if objects {
            members.append(
                (
                    "objects",
                    .array(
                        entry.objects.map { o in
                            let before = o.before.isEmpty ? nil : try? JSONValue.parse(o.before)
                            let after = o.after.isEmpty ? nil : try? JSONValue.parse(o.after)
                            let op = o.before.isEmpty ? "created" : o.after.isEmpty ? "deleted" : "updated"
                            return [
                                "kind": .string(o.kind), "id": .string(o.id), "op": .string(op),
                                "before": document(o.kind, o.before), "after": document(o.kind, o.after),
                                "fields": changesJSON(
                                    DocumentDiff.fields(redacted(o.kind, before, against: after), redacted(o.kind, after, against: before))),
                            ]
                        })
                ))
        } else {
            members.append(("objects", .integer(Int64(entry.objects.count))))
        }
        return .object(members)
    }
}

enum DryRunReport {
    static func empty(version: Int64) -> JSONValue {
        [
            "dry_run": true, "version": .integer(version), "changed": 0,
            "changes": ["created": .array([]), "updated": .array([]), "deleted": .array([])],
            "impact": [
                "shadowed_routes": .array([]), "upstreams_without_endpoints": .array([]), "routes_without_healthy_endpoints": .array([]),
            ],
        ]
    }
}

extension ConfigStore {
    /// The objects (`<kind>:<id>`) `owner` holds, and the version they were read at (one
    /// MULTI, so both describe the same moment).
    func objects(ownedBy owner: String) async throws(StoreError) -> (fields: Set<String>, version: Int64) {
        let replies: [RedisReply]
        do {
            replies = try await redis.pipeline([["MULTI"], ["GET", keys.version], ["HGETALL", keys.owners], ["EXEC"]])
        } catch {
            throw StoreError.from(error)
        }
        guard let results = replies.last?.array, results.count == 2 else { throw StoreError(.unexpected, "unexpected EXEC reply") }
        let version = results[0].integer ?? 0
        let items = results[1].array ?? []
        var fields = Set<String>()
        var i = 0
        while i + 1 < items.count {
            if items[i + 1].text == owner, let field = items[i].text { fields.insert(field) }
            i += 2
        }
        return (fields, version)
    }
}
