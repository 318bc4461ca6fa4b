// `POST /api/v1/apply`: a batch of puts and deletes, validated item by item, each object at
// most once, all or nothing.

/// A batch for `POST /api/v1/apply`: objects to put and names to delete, all or nothing.
public struct Batch: Sendable, Equatable {
    /// Objects (puts and deletes) in one atomic batch: sy_apply's MAX_OPS. One call keeps
    /// Redis busy for all of them (about 50 ms for 1,000 objects of 1.9 KB: README, "Batches").
    public static let maxObjects = 1000
    /// Bytes of an atomic batch's request body.
    public static let maxBytes = 2 << 20

    /// How many objects a batch request names (before validating them), from its arrays.
    public static func objectCount(_ json: JSONValue) -> Int {
        func count(_ value: JSONValue?) -> Int {
            if case .array(let items)? = value { return items.count }
            return 0
        }
        return count(json["upstreams"]) + count(json["routes"]) + count(json["delete"]?["routes"])
            + count(json["delete"]?["upstreams"])
    }

    public var upstreams: [Upstream] = []
    public var routes: [Route] = []
    public var deleteRoutes: [String] = []
    public var deleteUpstreams: [String] = []

    public init(upstreams: [Upstream] = [], routes: [Route] = [], deleteRoutes: [String] = [], deleteUpstreams: [String] = []) {
        self.upstreams = upstreams
        self.routes = routes
        self.deleteRoutes = deleteRoutes
        self.deleteUpstreams = deleteUpstreams
    }

    /// Names of upstreams in the request that failed validation: their problems are
    /// reported already, so routes naming them are not also reported as missing.
    var namedInvalidUpstreams: Set<String> = []

    public static func == (lhs: Batch, rhs: Batch) -> Bool {
        lhs.upstreams == rhs.upstreams && lhs.routes == rhs.routes && lhs.deleteRoutes == rhs.deleteRoutes
            && lhs.deleteUpstreams == rhs.deleteUpstreams
    }

    public var isEmpty: Bool { upstreams.isEmpty && routes.isEmpty && deleteRoutes.isEmpty && deleteUpstreams.isEmpty }

    /// Upstreams the batch's routes use that the batch itself does not put, with the field
    /// naming each use (`routes[3].upstream`, `routes[3].split[1].upstream`,
    /// `routes[3].canary.upstream`). The caller checks these against Redis.
    public var externalReferences: [(field: String, upstream: String)] {
        let put = Set(upstreams.map(\.name)).union(namedInvalidUpstreams).union(deleteUpstreams)
        return routes.flatMap { route in
            route.upstreamReferences.compactMap { ref in
                put.contains(ref.upstream) ? nil : (join(routeField(route.id), ref.field), ref.upstream)
            }
        }
    }

    /// Position of each route in the request; `routes` leaves invalid ones out, so its
    /// own indexes may differ.
    var requestIndexes: [String: Int] = [:]

    /// The request field of route `id`, e.g. `routes[3]`.
    func routeField(_ id: String) -> String {
        guard let i = requestIndexes[id] ?? routes.firstIndex(where: { $0.id == id }) else { return "" }
        return "routes[\(i)]"
    }

    /// The request field naming route `id`'s use of `upstream`, e.g. `routes[3].upstream`
    /// or `routes[3].split[1].upstream`.
    public func upstreamField(ofRoute id: String, upstream: String? = nil) -> String {
        let route = routes.first { $0.id == id }
        let field = route.flatMap { r in r.upstreamReferences.first { $0.upstream == upstream }?.field } ?? "upstream"
        return join(routeField(id), field)
    }

    /// The Function calls, ordered so its in-batch checks see the batch's own upstreams
    /// before the routes that use them, and route changes before upstream deletions.
    public func operations() -> [ApplyOperation] {
        upstreams.map { ApplyOperation.put($0) }
            + routes.map { ApplyOperation.put($0) }
            + deleteRoutes.map { ApplyOperation.delete(.route, $0) }
            + deleteUpstreams.map { ApplyOperation.delete(.upstream, $0) }
    }
}

extension Validator {
    /// A batch: `{"upstreams":[...],"routes":[...],"delete":{"routes":[...],"upstreams":[...]}}`.
    /// Every item is checked; each object may appear once (put or delete).
    /// At most `maxObjects` objects (nil: no bound, for a batch the caller splits).
    public func batch(_ json: JSONValue, maxObjects: Int? = Batch.maxObjects) -> Result<Batch, ValidationFailure> {
        let (batch, problems) = batchParts(json, maxObjects: maxObjects)
        if problems.isEmpty { return .success(batch) }
        return .failure(ValidationFailure(problems))
    }

    func batchParts(_ json: JSONValue, maxObjects: Int? = Batch.maxObjects) -> (Batch, [FieldError]) {
        var reader = FieldReader(strict: true)
        guard case .object(let members) = json else {
            return (Batch(), [FieldError(field: "", code: .invalid, message: "must be a JSON object, not \(json.typeName)")])
        }
        if let maxObjects, Batch.objectCount(json) > maxObjects {
            // one problem naming the bound, not one per object
            let message =
                "a batch holds at most \(maxObjects) objects; this one has \(Batch.objectCount(json)): split it, "
                + "or POST /api/v1/apply?atomic=false"
            return (Batch(), [FieldError(field: "", code: .invalid, message: message)])
        }
        reader.rejectUnknown(members, allowed: ["upstreams", "routes", "delete"], at: "")
        var batch = Batch()
        var seenUpstreams: [String: String] = [:]  // name -> field of first appearance
        var seenRoutes: [String: String] = [:]

        for (i, item) in reader.array(json, "upstreams", at: "").enumerated() {
            let at = "upstreams[\(i)]"
            guard let upstream = upstream(item, name: nil, at: at, into: &reader) else {
                if case .string(let name)? = item["name"] { batch.namedInvalidUpstreams.insert(name) }
                continue
            }
            if let first = seenUpstreams[upstream.name] {
                reader.add(join(at, "name"), .duplicate, "upstream '\(upstream.name)' appears twice (also \(first))")
            } else {
                seenUpstreams[upstream.name] = at
                batch.upstreams.append(upstream)
            }
        }
        for (i, item) in reader.array(json, "routes", at: "").enumerated() {
            let at = "routes[\(i)]"
            guard let route = route(item, id: nil, at: at, into: &reader) else { continue }
            if let first = seenRoutes[route.id] {
                reader.add(join(at, "id"), .duplicate, "route '\(route.id)' appears twice (also \(first))")
            } else {
                seenRoutes[route.id] = at
                batch.requestIndexes[route.id] = i
                batch.routes.append(route)
            }
        }
        if let delete = json["delete"], reader.object(delete, fields: ["routes", "upstreams"], at: "delete") != nil {
            batch.deleteRoutes = names(delete, "routes", kind: "route", at: "delete", seen: &seenRoutes, into: &reader)
            batch.deleteUpstreams = names(delete, "upstreams", kind: "upstream", at: "delete", seen: &seenUpstreams, into: &reader)
        }
        let deleted = Set(batch.deleteUpstreams)
        for route in batch.routes {
            for ref in route.upstreamReferences where deleted.contains(ref.upstream) {
                reader.add(
                    join(batch.routeField(route.id), ref.field), .missingUpstream, "upstream '\(ref.upstream)' is deleted in this batch")
            }
        }
        return (batch, reader.problems)
    }

    func names(
        _ json: JSONValue, _ key: String, kind: String, at prefix: String, seen: inout [String: String], into reader: inout FieldReader
    ) -> [String] {
        var out: [String] = []
        for (i, item) in reader.array(json, key, at: prefix).enumerated() {
            let field = join(prefix, "\(key)[\(i)]")
            guard case .string(let name) = item, Names.isValid(name) else {
                reader.add(field, .invalid, "must be a \(kind) name (\(Names.rule))")
                continue
            }
            if let first = seen[name] {
                reader.add(field, .duplicate, "\(kind) '\(name)' appears twice (also \(first))")
            } else {
                seen[name] = field
                out.append(name)
            }
        }
        return out
    }
}

extension Validator {
    /// Like `batch(_:)`, but also returns the valid part of an invalid batch, so the caller
    /// can check the valid routes' upstream references and report those problems too.
    public func batchCollectingProblems(_ json: JSONValue, maxObjects: Int? = Batch.maxObjects) -> (batch: Batch, problems: [FieldError]) {
        batchParts(json, maxObjects: maxObjects)
    }
}
