// The admin API under /api/v1: validates requests, calls ConfigStore, answers JSON.
//
//   GET|PUT|DELETE /upstreams/:name        GET /upstreams
//   PUT|DELETE     /upstreams/:name/endpoints/:address   (one machine joins or leaves)
//   GET|PUT|DELETE /routes/:id             GET /routes
//   POST           /apply                  (all or nothing, one FCALL, at most Batch.maxObjects
//                                           objects and Batch.maxBytes; ?atomic=false: in parts)
//   GET            /status                 (version, digest, every edge, converged;
//                                           ?wait_version=N&timeout_ms=M waits for edges;
//                                           ?check=documents: DocumentCheck.swift)
//   POST           /reseed                 (OperationsAPI.swift)

import Hummingbird
import Logging
import NIOCore
import SwitchyardCore

struct AdminAPI<Context: RequestContext>: APIHandlers {
    let store: ConfigStore
    let validator: Validator
    let maxBodySize: Int
    let logger: Logger
    /// Seals certificate keys that travel in /apply and routes' HS256 secrets (nil: stored
    /// in plaintext).
    var cipher: CertificateKeyCipher? = nil

    func addRoutes(to group: RouterGroup<Context>) {
        group.get("upstreams", use: listUpstreams)
        group.get("upstreams/:name", use: getUpstream)
        group.put("upstreams/:name", use: putUpstream)
        group.delete("upstreams/:name", use: deleteUpstream)
        group.put("upstreams/:name/endpoints/:address", use: putEndpoint)
        group.delete("upstreams/:name/endpoints/:address", use: deleteEndpoint)
        group.get("routes", use: listRoutes)
        group.get("routes/:id", use: getRoute)
        group.put("routes/:id", use: putRoute)
        group.delete("routes/:id", use: deleteRoute)
        group.post("apply", use: apply)
        group.get("status", use: status)
        OperationsAPI<Context>(store: store, maxBodySize: maxBodySize, logger: logger).addRoutes(to: group)
    }

    // MARK: Upstreams

    @Sendable func listUpstreams(_ request: Request, context: Context) async throws -> Response {
        let (items, version) = try await call { () throws(StoreError) in try await store.upstreams() }
        return jsonResponse(["items": .array(items.map { $0.value.document.adding(version: $0.version) }), "version": .integer(version)])
    }

    @Sendable func getUpstream(_ request: Request, context: Context) async throws -> Response {
        let name = try parameter("name", context)
        guard Names.isValid(name), let stored = try await call({ () throws(StoreError) in try await store.upstream(name) }) else {
            throw APIError.notFound(.upstream, name)
        }
        guard stored.value.healthCheck != nil else { return jsonResponse(stored.value.document.adding(version: stored.version)) }
        let health = try await call { () throws(StoreError) in try await store.health(of: name) }
        return jsonResponse(UpstreamHealthView.json(stored, records: health.records, proberAlive: health.proberAlive))
    }

    @Sendable func putUpstream(_ request: Request, context: Context) async throws -> Response {
        let name = try parameter("name", context)
        let body = try await requiredBody(request)
        let upstream: Upstream
        switch validator.upstream(body, name: name) {
        case .success(let value): upstream = value
        case .failure(let failure): throw APIError.invalid(failure.problems)
        }
        let (stored, created) = try await call { () throws(StoreError) in try await store.put(upstream) }
        logger.info(
            "upstream stored",
            metadata: [
                "upstream.name": "\(name)", "config.version": "\(stored.version)", "created": "\(created)",
            ])
        return jsonResponse(stored.value.document.adding(version: stored.version), status: created ? .created : .ok)
    }

    @Sendable func deleteUpstream(_ request: Request, context: Context) async throws -> Response {
        let name = try parameter("name", context)
        guard Names.isValid(name) else { throw APIError.notFound(.upstream, name) }
        let version = try await call { () throws(StoreError) in try await store.delete(.upstream, name) }
        logger.info("upstream deleted", metadata: ["upstream.name": "\(name)", "config.version": "\(version)"])
        return jsonResponse(["name": .string(name), "deleted": true, "version": .integer(version)])
    }

    // MARK: Endpoints

    @Sendable func putEndpoint(_ request: Request, context: Context) async throws -> Response {
        let name = try parameter("name", context)
        let address = try parameter("address", context)
        let body = try await optionalBody(request)
        let endpoint: Endpoint
        switch validator.endpoint(body, address: address) {
        case .success(let value): endpoint = value
        case .failure(let failure): throw APIError.invalid(failure.problems)
        }
        guard Names.isValid(name) else { throw APIError.notFound(.upstream, name) }
        let (stored, added) = try await call { () throws(StoreError) in
            try await store.modifyUpstream(name) { (upstream: Upstream) -> (Upstream, Bool)? in
                var upstream = upstream
                if let i = upstream.endpoints.firstIndex(where: { $0.address == endpoint.address }) {
                    if upstream.endpoints[i] == endpoint { return nil }
                    upstream.endpoints[i] = endpoint
                    return (upstream, false)
                }
                upstream.endpoints.append(endpoint)
                return (upstream, true)
            }
        }
        logger.info(
            "endpoint stored",
            metadata: [
                "upstream.name": "\(name)", "endpoint.address": "\(endpoint.address)", "config.version": "\(stored.version)",
            ])
        return jsonResponse(stored.value.document.adding(version: stored.version), status: added == true ? .created : .ok)
    }

    @Sendable func deleteEndpoint(_ request: Request, context: Context) async throws -> Response {
        let name = try parameter("name", context)
        let text = try parameter("address", context)
        let address: EndpointAddress
        switch EndpointAddress.parse(text) {
        case .success(let value): address = value
        case .failure(let error):
            throw APIError.invalid([FieldError(field: "address", code: .invalid, message: "'\(text)': \(error.message)")])
        }
        guard Names.isValid(name) else { throw APIError.notFound(.upstream, name) }
        let (stored, _) = try await call { () throws(StoreError) in
            try await store.modifyUpstream(name) { (upstream: Upstream) throws(StoreError) -> (Upstream, Bool)? in
                var upstream = upstream
                guard let i = upstream.endpoints.firstIndex(where: { $0.address == address }) else {
                    throw StoreError(.notFound, "upstream '\(name)' has no endpoint \(address)")
                }
                upstream.endpoints.remove(at: i)
                return (upstream, true)
            }
        }
        logger.info(
            "endpoint removed",
            metadata: [
                "upstream.name": "\(name)", "endpoint.address": "\(address)", "config.version": "\(stored.version)",
            ])
        return jsonResponse(stored.value.document.adding(version: stored.version))
    }

    // MARK: Routes

    @Sendable func listRoutes(_ request: Request, context: Context) async throws -> Response {
        let (items, version) = try await call { () throws(StoreError) in try await store.routes() }
        return jsonResponse(["items": .array(items.map { $0.value.document.adding(version: $0.version) }), "version": .integer(version)])
    }

    @Sendable func getRoute(_ request: Request, context: Context) async throws -> Response {
        let id = try parameter("id", context)
        guard Names.isValid(id), let stored = try await call({ () throws(StoreError) in try await store.route(id) }) else {
            throw APIError.notFound(.route, id)
        }
        return jsonResponse(stored.value.document.adding(version: stored.version))
    }

    @Sendable func putRoute(_ request: Request, context: Context) async throws -> Response {
        let id = try parameter("id", context)
        let body = try await requiredBody(request)
        switch validator.route(body, id: id) {
        case .failure(let failure):
            // also say whether the named upstreams exist, so one answer lists every problem
            var problems = failure.problems
            let named = Self.namedUpstreams(body).filter { ref in !problems.contains { $0.field == ref.field } }
            if !named.isEmpty {
                let existing = try await call { () throws(StoreError) in try await store.existingUpstreams(named.map(\.upstream)) }
                for ref in named where !existing.contains(ref.upstream) { problems.append(Self.missingUpstream(ref.field, ref.upstream)) }
            }
            throw APIError.invalid(problems)
        case .success(let valid):
            let route = try await preparingSecrets([valid]) { _ in "" }[0]
            // sy_apply checks the upstreams atomically and names the first one missing; only
            // then is it worth a second look, so the answer lists every missing one (a valid
            // PUT costs one round trip to Redis, not two)
            let references = route.upstreamReferences
            let stored: Stored<Route>
            let created: Bool
            do {
                (stored, created) = try await store.put(route)
            } catch {
                if case .missingUpstream? = error.apply {
                    let existing = try await call { () throws(StoreError) in try await store.existingUpstreams(route.upstreams) }
                    let missing = references.filter { !existing.contains($0.upstream) }
                    if !missing.isEmpty { throw APIError.invalid(missing.map { Self.missingUpstream($0.field, $0.upstream) }) }
                }
                throw APIError.from(error) { _, name in references.first { $0.upstream == name }?.field ?? "upstream" }
            }
            logger.info(
                "route stored",
                metadata: [
                    "route.id": "\(id)", "upstream.name": "\(route.upstreams.joined(separator: ","))",
                    "config.version": "\(stored.version)",
                    "created": "\(created)",
                ])
            return jsonResponse(stored.value.document.adding(version: stored.version), status: created ? .created : .ok)
        }
    }

    @Sendable func deleteRoute(_ request: Request, context: Context) async throws -> Response {
        let id = try parameter("id", context)
        guard Names.isValid(id) else { throw APIError.notFound(.route, id) }
        let version = try await call { () throws(StoreError) in try await store.delete(.route, id) }
        logger.info("route deleted", metadata: ["route.id": "\(id)", "config.version": "\(version)"])
        return jsonResponse(["id": .string(id), "deleted": true, "version": .integer(version)])
    }

    // MARK: Batch

    @Sendable func apply(_ request: Request, context: Context) async throws -> Response {
        let parameters = try Self.applyParameters(request.uri.queryParameters.map { (String($0.key), String($0.value)) })
        let atomic = parameters.atomic
        let (parsed, size) = try await sizedBody(request)
        guard let fullBody = parsed else { throw APIError(.badRequest, "bad_request", "a JSON body is required") }
        let (withoutCertificates, certificates, certificateProblems) = CertificateBatch.split(
            fullBody, now: CertificatesAPI<Context>.now())
        let (body, streams, streamProblems) = StreamBatch.split(withoutCertificates)
        let objects = Batch.objectCount(body) + certificates.count + streams.count
        if atomic, objects > Batch.maxObjects || size > Batch.maxBytes {
            throw APIError(
                .contentTooLarge, "too_large",
                "an atomic batch holds at most \(Batch.maxObjects) objects and \(Batch.maxBytes) bytes (one call that keeps "
                    + "Redis busy for all of them); this one has \(objects) objects in \(size) bytes: split it, or send it with "
                    + "POST /api/v1/apply?atomic=false (applied in parts of at most \(Batch.maxObjects), each its own version)",
                extra: [("max_objects", .integer(Int64(Batch.maxObjects))), ("max_bytes", .integer(Int64(Batch.maxBytes)))])
        }
        var (batch, validationProblems) = validator.batchCollectingProblems(body, maxObjects: atomic ? Batch.maxObjects : nil)
        var problems = validationProblems + certificateProblems + streamProblems
        if !atomic, !certificates.isEmpty {
            problems.append(
                FieldError(
                    field: "certificates", code: .invalid, message: "certificates travel only in atomic batches (not with atomic=false)"))
        }
        if !atomic, !streams.isEmpty {
            problems.append(
                FieldError(field: "streams", code: .invalid, message: "streams travel only in atomic batches (not with atomic=false)"))
        }
        let references = batch.externalReferences + streams.references(besides: batch)
        if !references.isEmpty {
            let existing = try await call { () throws(StoreError) in try await store.existingUpstreams(references.map(\.upstream)) }
            for (field, name) in references where !existing.contains(name) {
                problems.append(Self.missingUpstream(field, name))
            }
        }
        if !problems.isEmpty { throw APIError.invalid(problems) }
        batch.routes = try await preparingSecrets(batch.routes) { "routes[\($0)]" }
        if let owner = parameters.owner {
            return try await applyAsOwner(batch, certificates: certificates, streams: streams, owner: owner, prune: parameters.prune)
        }
        if batch.isEmpty, certificates.isEmpty, streams.isEmpty {
            let version = try await call { () throws(StoreError) in try await store.version() }
            return jsonResponse(["version": .integer(version), "changed": 0])
        }
        if !atomic {
            if ChangeRequest.current?.dryRun == true {
                throw APIError.invalid([
                    FieldError(field: "dry_run", code: .invalid, message: "a dry run describes one atomic change: not with atomic=false")
                ])
            }
            return try await applyInParts(batch)
        }
        let result: ApplyResult
        do {
            let operations = batch.operations() + (try await certificateOperations(certificates)) + streams.operations
            result = try await store.apply(operations)
        } catch {
            throw APIError.from(
                error,
                upstreamField: { streams.field($0).map { $0 + ".upstream" } ?? batch.upstreamField(ofRoute: $0, upstream: $1) },
                objectField: { Self.field(of: $0, $1, in: batch, certificates: certificates, streams: streams) })
        }
        logger.info(
            "batch applied",
            metadata: [
                "config.version": "\(result.version)", "changed": "\(result.changed)",
                "batch.routes": "\(batch.routes.count)", "batch.upstreams": "\(batch.upstreams.count)",
                "batch.deletes": "\(batch.deleteRoutes.count + batch.deleteUpstreams.count)",
                "batch.certificates": "\(certificates.count)", "batch.streams": "\(streams.count)",
            ])
        return jsonResponse(["version": .integer(result.version), "changed": .integer(result.changed)])
    }

    /// `?atomic=false`: the batch in consecutive parts of at most `Batch.maxObjects`, each
    /// one sy_apply call and its own version (edges may serve the versions in between). In
    /// the order of `Batch.operations()`, so every part is valid on top of the ones before.
    /// A refused part stops there: the error says which parts were applied.
    func applyInParts(_ batch: Batch) async throws -> Response {
        let operations = batch.operations()
        var versions: [JSONValue] = []
        var changed: Int64 = 0
        var version: Int64 = 0
        var start = 0
        while start < operations.count {
            let part = Array(operations[start..<min(start + Batch.maxObjects, operations.count)])
            do {
                let result = try await store.apply(part)
                versions.append(.integer(result.version))
                changed += result.changed
                version = result.version
            } catch {
                var refusal = APIError.from(
                    error, upstreamField: { batch.upstreamField(ofRoute: $0, upstream: $1) },
                    objectField: { Self.field(of: $0, $1, in: batch) })
                if !versions.isEmpty {
                    refusal.message += " (objects 1-\(start) of \(operations.count) were applied before: versions in applied_versions)"
                }
                refusal.extra.append(("applied_versions", .array(versions)))
                throw refusal
            }
            start += part.count
        }
        if versions.isEmpty { version = try await call { () throws(StoreError) in try await store.version() } }
        logger.info(
            "batch applied in parts",
            metadata: ["config.version": "\(version)", "changed": "\(changed)", "parts": "\(versions.count)"])
        return jsonResponse(["version": .integer(version), "changed": .integer(changed), "versions": .array(versions), "atomic": false])
    }

    /// `?prune=true&owner=NAME` (or `owner` alone): the batch written as that owner, in one
    /// atomic change; with prune, every route and upstream the owner holds that the document
    /// does not name is deleted in the same change. Objects of other owners, and unowned
    /// ones, are never touched: sy_apply refuses the whole change (409 owned) when the
    /// document names one. The set the owner holds is read with the version and the write
    /// is conditional on that version (retried when another change came first).
    func applyAsOwner(
        _ batch: Batch, certificates: CertificateBatch, streams: StreamBatch, owner: String, prune: Bool
    ) async throws -> Response {
        let requested = ChangeRequest.current?.ifVersion
        var attempt = 0
        while true {
            attempt += 1
            var full = batch
            var fullCertificates = certificates
            var fullStreams = streams
            var version: Int64?
            var pruned: [JSONValue] = []
            if prune {
                let (held, at) = try await call { () throws(StoreError) in try await store.objects(ownedBy: owner) }
                version = at
                let named = Set(batch.routes.map { "route:" + $0.id } + batch.upstreams.map { "upstream:" + $0.name })
                    .union(batch.deleteRoutes.map { "route:" + $0 }).union(batch.deleteUpstreams.map { "upstream:" + $0 })
                    .union(certificates.puts.map { "certificate:" + $0.id }).union(certificates.deletes.map { "certificate:" + $0 })
                    .union(streams.puts.map { "stream:" + $0.id }).union(streams.deletes.map { "stream:" + $0 })
                for field in held.sorted() where !named.contains(field) {
                    if field.hasPrefix("route:") {
                        full.deleteRoutes.append(String(field.dropFirst("route:".count)))
                    } else if field.hasPrefix("upstream:") {
                        full.deleteUpstreams.append(String(field.dropFirst("upstream:".count)))
                    } else if field.hasPrefix("certificate:") {
                        fullCertificates.deletes.append(String(field.dropFirst("certificate:".count)))
                    } else if field.hasPrefix("stream:") {
                        fullStreams.deletes.append(String(field.dropFirst("stream:".count)))
                    } else {
                        continue
                    }
                    pruned.append(.string(field))
                }
            }
            let certificateOps = try await call { () throws(StoreError) in try await certificateOperations(fullCertificates) }
            let operations = full.operations() + certificateOps + fullStreams.operations
            if operations.count > Batch.maxObjects {
                throw APIError(
                    .contentTooLarge, "too_large",
                    "with the pruned objects this change holds \(operations.count) objects, more than one atomic change (\(Batch.maxObjects))"
                )
            }
            if operations.isEmpty {
                let now = try await call { () throws(StoreError) in try await store.version() }
                if ChangeRequest.current?.dryRun == true { return jsonResponse(DryRunReport.empty(version: now)) }
                return jsonResponse(["version": .integer(now), "changed": 0, "owner": .string(owner), "pruned": .array([])])
            }
            let result: ApplyResult
            do {
                result = try await store.apply(operations, owner: owner, ifVersion: requested ?? version)
            } catch {
                if requested == nil, version != nil, attempt < 5, FunctionRefusal(error.apply)?.code == "precondition_failed" { continue }
                throw APIError.from(
                    error,
                    upstreamField: { fullStreams.field($0).map { $0 + ".upstream" } ?? full.upstreamField(ofRoute: $0, upstream: $1) },
                    objectField: { Self.field(of: $0, $1, in: full, certificates: fullCertificates, streams: fullStreams) })
            }
            logger.info(
                "batch applied as owner",
                metadata: [
                    "config.version": "\(result.version)", "changed": "\(result.changed)", "owner": "\(owner)", "pruned": "\(pruned.count)",
                ])
            return jsonResponse([
                "version": .integer(result.version), "changed": .integer(result.changed), "owner": .string(owner), "pruned": .array(pruned),
            ])
        }
    }

    struct ApplyParameters: Equatable {
        var atomic = true
        var prune = false
        var owner: String?
    }

    /// The parameters of POST /apply: `atomic` (true, the default, or false), `prune` (needs
    /// `owner`), `owner` (a writer name: printable ASCII, 1-253 bytes), `dry_run` (read by
    /// ChangeRequestMiddleware); anything else is refused.
    static func applyParameters(_ query: [(String, String)]) throws(APIError) -> ApplyParameters {
        var parameters = ApplyParameters()
        var problems: [FieldError] = []
        for (key, value) in query {
            switch (key, value) {
            case ("atomic", "true"): parameters.atomic = true
            case ("atomic", "false"): parameters.atomic = false
            case ("atomic", _):
                problems.append(FieldError(field: "atomic", code: .invalid, message: "atomic must be true or false, not '\(value)'"))
            case ("prune", "true"): parameters.prune = true
            case ("prune", "false"): parameters.prune = false
            case ("prune", _):
                problems.append(FieldError(field: "prune", code: .invalid, message: "prune must be true or false, not '\(value)'"))
            case ("owner", _):
                if (1...253).contains(value.utf8.count), value.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) {
                    parameters.owner = value
                } else {
                    problems.append(
                        FieldError(field: "owner", code: .invalid, message: "owner must be 1-253 printable ASCII characters without spaces")
                    )
                }
            case ("dry_run", _): break
            default:
                problems.append(
                    FieldError(field: key, code: .unknownField, message: "unknown parameter '\(key)' (use atomic, prune, owner, dry_run)"))
            }
        }
        if parameters.prune, parameters.owner == nil {
            problems.append(
                FieldError(field: "owner", code: .required, message: "prune needs owner: the writer whose objects the document replaces"))
        }
        if parameters.owner != nil, !parameters.atomic {
            problems.append(
                FieldError(
                    field: "atomic", code: .invalid,
                    message: "owner and prune apply one atomic change: atomic=false is not possible with them"))
        }
        if !problems.isEmpty { throw APIError.invalid(problems) }
        return parameters
    }

    /// `atomic` of POST /apply (the other parameters: `applyParameters`).
    static func atomicParameter(_ query: [(String, String)]) throws(APIError) -> Bool {
        try applyParameters(query).atomic
    }

    // MARK: Status

    @Sendable func status(_ request: Request, context: Context) async throws -> Response {
        let query = request.uri.queryParameters.map { (String($0.key), String($0.value)) }
        let (target, timeout, problems, checkDocuments) = Convergence.waitParameters(query)
        if !problems.isEmpty { throw APIError.invalid(problems) }
        let report = try await call { () throws(StoreError) in try await store.convergence(waitFor: target, timeout: timeout) }
        let body = Convergence.json(report, group: store.keys.group)
        guard checkDocuments else { return jsonResponse(body) }
        let check = try await call { () throws(StoreError) in try await store.checkDocuments() }
        return jsonResponse(DocumentCheck.json(body, check))
    }

    // MARK: Helpers

    /// `routes` with their HS256 secrets ready to store (JWTSecrets.prepare against the
    /// stored version of each route that has some; the others untouched). `field(i)`: the
    /// request field of routes[i]. Throws a 422 naming every reference that matches nothing.
    func preparingSecrets(_ routes: [Route], field: (Int) -> String) async throws -> [Route] {
        var out = routes
        var problems: [FieldError] = []
        for (i, route) in routes.enumerated() where JWTSecrets.needed(route) {
            let previous = try await call { () throws(StoreError) in try await store.route(route.id) }
            switch JWTSecrets.prepare(route, previous: previous?.value, cipher: cipher, at: field(i)) {
            case .success(let prepared): out[i] = prepared
            case .failure(let failure): problems += failure.problems
            }
        }
        if !problems.isEmpty { throw APIError.invalid(problems) }
        return out
    }

    /// The upstream names a (perhaps invalid) route body gives, with their fields:
    /// `upstream`, `split[i].upstream`, `canary.upstream` (valid names only).
    static func namedUpstreams(_ body: JSONValue) -> [(field: String, upstream: String)] {
        var out: [(field: String, upstream: String)] = []
        if case .string(let name)? = body["upstream"] { out.append(("upstream", name)) }
        if case .array(let items)? = body["split"] {
            for (i, item) in items.enumerated() {
                if case .string(let name)? = item["upstream"] { out.append(("split[\(i)].upstream", name)) }
            }
        }
        if case .string(let name)? = body["canary"]?["upstream"] { out.append(("canary.upstream", name)) }
        return out.filter { Names.isValid($0.upstream) }
    }

    /// The request field of an object in a (valid) batch: `upstreams[2]`, `routes[0]`,
    /// `delete.routes[1]`, `certificates[0]`, `streams[1]`.
    static func field(
        of kind: ObjectKind, _ id: String, in batch: Batch, certificates: CertificateBatch = CertificateBatch(),
        streams: StreamBatch = StreamBatch()
    ) -> String {
        switch kind {
        case .route:
            if let i = batch.routes.firstIndex(where: { $0.id == id }) { return "routes[\(i)]" }
            if let i = batch.deleteRoutes.firstIndex(of: id) { return "delete.routes[\(i)]" }
        case .upstream:
            if let i = batch.upstreams.firstIndex(where: { $0.name == id }) { return "upstreams[\(i)]" }
            if let i = batch.deleteUpstreams.firstIndex(of: id) { return "delete.upstreams[\(i)]" }
        case .certificate:
            if let field = certificates.field(id) { return field }
        case .stream:
            if let field = streams.field(id) { return field }
        }
        return "\(kind.rawValue):\(id)"
    }

    static func missingUpstream(_ field: String, _ name: String) -> FieldError {
        FieldError(field: field, code: .missingUpstream, message: "upstream '\(name)' does not exist")
    }
}
