// Stream services under /api/v1/streams (issue 23, docs/stream.md):
//
//   GET    /streams          every stream and the configuration version
//   GET    /streams/:id
//   PUT    /streams/:id      {"listen":5432,"protocol":"tcp","upstream":"pg","balance":"round_robin",
//                             "connect_timeout_ms":5000,"idle_timeout_s":600,"proxy_protocol":false,
//                             "allow":["10.0.0.0/8"],"deny":[]}
//   DELETE /streams/:id
//
// A stream is a kind of configuration object like a route: a PUT is validated
// (SwitchyardCore/Model/StreamService.swift: 422 naming every bad field) and written with one
// sy_apply, which re-checks that the upstream exists (422 missing_upstream) and that no other
// stream holds the port and protocol (409 port_conflict); a refused request writes nothing.
// `?dry_run=true`, `If-Match` and `X-Switchyard-Note` work as for every object
// (ChangeRequest.swift), and every change is in the history (revert) and the digest.
// Streams also travel in POST /apply (ApplyStreams.swift).

import Hummingbird
import Logging
import NIOCore
import SwitchyardCore

struct StreamsAPI<Context: RequestContext>: APIHandlers {
    let store: ConfigStore
    let maxBodySize: Int
    let logger: Logger

    func addRoutes(to group: RouterGroup<Context>) {
        group.get("streams", use: list)
        group.get("streams/:id", use: get)
        group.put("streams/:id", use: put)
        group.delete("streams/:id", use: delete)
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let (items, version) = try await call { () throws(StoreError) in try await store.streams() }
        return jsonResponse(["items": .array(items.map { $0.value.document.adding(version: $0.version) }), "version": .integer(version)])
    }

    @Sendable func get(_ request: Request, context: Context) async throws -> Response {
        let id = try parameter("id", context)
        guard Names.isValid(id), let stored = try await call({ () throws(StoreError) in try await store.stream(id) }) else {
            throw APIError.notFound(.stream, id)
        }
        return jsonResponse(stored.value.document.adding(version: stored.version))
    }

    @Sendable func put(_ request: Request, context: Context) async throws -> Response {
        let id = try parameter("id", context)
        let body = try await requiredBody(request)
        let service: StreamService
        switch StreamService.validate(body, id: id) {
        case .success(let s): service = s
        case .failure(let f): throw APIError.invalid(f.problems)
        }
        let (stored, created) = try await call { () throws(StoreError) in try await store.put(service) }
        logger.info(
            "stream stored",
            metadata: [
                "stream.id": "\(id)", "config.version": "\(stored.version)", "listen": "\(service.listen)", "created": "\(created)",
            ])
        return jsonResponse(stored.value.document.adding(version: stored.version), status: created ? .created : .ok)
    }

    @Sendable func delete(_ request: Request, context: Context) async throws -> Response {
        let id = try parameter("id", context)
        guard Names.isValid(id) else { throw APIError.notFound(.stream, id) }
        let version = try await call { () throws(StoreError) in try await store.delete(.stream, id) }
        logger.info("stream deleted", metadata: ["stream.id": "\(id)", "config.version": "\(version)"])
        return jsonResponse(["id": .string(id), "deleted": true, "version": .integer(version)])
    }
}
