// Stream services under /api/v1/streams (issue 23, docs/stream.md):
//
//   GET    /streams          every stream and the stream version
//   GET    /streams/:id
//   PUT    /streams/:id      {"listen":5432,"protocol":"tcp","upstream":"pg","balance":"round_robin",
//                             "connect_timeout_ms":5000,"idle_timeout_s":600,"proxy_protocol":false,
//                             "allow":["10.0.0.0/8"],"deny":[]}
//   DELETE /streams/:id
//
// A PUT is validated (SwitchyardCore/Model/StreamService.swift: 422 naming every bad field)
// and written with one FCALL sy_stream, which re-checks that the upstream exists (422
// missing_upstream) and that no other stream holds the port (409 port_conflict); a refused
// request writes nothing. `?dry_run=true` makes the same checks in sy_stream and writes
// nothing; `If-Match` is refused (400): it names the configuration's version, and streams
// have their own. Streams are kept apart from sy_apply's documents (their own
// version, change stream and channel), so they are not in /apply, the history or the digest.

import Hummingbird
import Logging
import NIOCore
import SwitchyardCore
import SwitchyardRedis

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

    private func redis(_ args: [String]) async throws(APIError) -> RedisReply {
        do { return try await store.redis.send(args) } catch {
            throw APIError(.serviceUnavailable, "unavailable", "redis is unavailable: \(error.code.rawValue)")
        }
    }

    private static func notFound(_ id: String) -> APIError { APIError(.notFound, "not_found", "stream '\(id)' does not exist") }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let ids = (try await redis(["SMEMBERS", StreamKeys.index]).array ?? []).compactMap(\.text).sorted()
        var items: [JSONValue] = []
        for id in ids {
            if let text = try await redis(["GET", StreamKeys.stream(id)]).bytes, let doc = try? JSONValue.parse(text) {
                items.append(doc)
            }
        }
        let version = try await redis(["GET", StreamKeys.version]).integer ?? 0
        return jsonResponse(["items": .array(items), "version": .integer(version)])
    }

    @Sendable func get(_ request: Request, context: Context) async throws -> Response {
        let id = try parameter("id", context)
        guard Names.isValid(id), let bytes = try await redis(["GET", StreamKeys.stream(id)]).bytes,
            let doc = try? JSONValue.parse(bytes)
        else { throw Self.notFound(id) }
        return jsonResponse(doc)
    }

    @Sendable func put(_ request: Request, context: Context) async throws -> Response {
        let id = try parameter("id", context)
        let body = try await requiredBody(request)
        let service: StreamService
        switch StreamService.validate(body, id: id) {
        case .success(let s): service = s
        case .failure(let f): throw APIError.invalid(f.problems)
        }
        let change = try Self.changeRequest()
        let existed = try await redis(["EXISTS", StreamKeys.stream(id)]).integer == 1
        var args = ["FCALL", "sy_stream", "1", StreamKeys.version, "put", id, service.document.canonical]
        if change.dryRun {
            args.append("dry_run")
            let reply = try await redis(args)
            let version = try Self.version(of: reply, stream: service)
            let op = reply.array?.last?.text ?? ""
            return Self.dryRun([
                "dry_run": true, "stream_version": .integer(version), "changed": .integer(op == "unchanged" ? 0 : 1),
                "action": .string(op == "unchanged" ? "unchanged" : existed ? "update" : "create"), "stream": service.document,
            ])
        }
        let reply = try await redis(args)
        let version = try Self.version(of: reply, stream: service)
        logger.info("stream stored", metadata: ["stream.id": "\(id)", "stream.version": "\(version)", "listen": "\(service.listen)"])
        guard let bytes = try await redis(["GET", StreamKeys.stream(id)]).bytes, let doc = try? JSONValue.parse(bytes) else {
            throw Self.notFound(id)
        }
        return jsonResponse(doc, status: existed ? .ok : .created)
    }

    @Sendable func delete(_ request: Request, context: Context) async throws -> Response {
        let id = try parameter("id", context)
        guard Names.isValid(id) else { throw Self.notFound(id) }
        let change = try Self.changeRequest()
        if change.dryRun {
            let reply = try await redis(["FCALL", "sy_stream", "1", StreamKeys.version, "del", id, "dry_run"])
            if case .array(let items) = reply, items.count == 2, items[1].text == "absent" { throw Self.notFound(id) }
            let version = try Self.version(of: reply, stream: nil)
            return Self.dryRun(["dry_run": true, "stream_version": .integer(version), "changed": 1, "action": "delete", "id": .string(id)])
        }
        let reply = try await redis(["FCALL", "sy_stream", "1", StreamKeys.version, "del", id])
        if case .array(let items) = reply, items.count == 2, items[1].text == "absent" { throw Self.notFound(id) }
        let version = try Self.version(of: reply, stream: nil)
        logger.info("stream deleted", metadata: ["stream.id": "\(id)", "stream.version": "\(version)"])
        return jsonResponse(["id": .string(id), "deleted": true, "version": .integer(version)])
    }

    /// A stream's dry-run answer, marked as one so ChangeRequestMiddleware passes it on.
    static func dryRun(_ report: JSONValue) -> Response {
        var response = jsonResponse(report)
        response.headers[ChangeRequestMiddleware<BasicRequestContext>.dryRunHeader] = "stream"
        return response
    }

    /// The write's dry_run and If-Match (ChangeRequestMiddleware); If-Match is refused here.
    static func changeRequest() throws(APIError) -> ChangeRequest {
        let change = ChangeRequest.current ?? ChangeRequest()
        if change.ifVersion != nil {
            throw APIError(
                .badRequest, "bad_request",
                "If-Match names the configuration's version; streams have their own version and take no If-Match",
                field: "If-Match")
        }
        return change
    }

    /// The version sy_stream answered, or its refusal as an HTTP error.
    static func version(of reply: RedisReply, stream: StreamService?) throws(APIError) -> Int64 {
        if case .array(let items) = reply, let v = items.first?.integer { return v }
        guard case .error(let message) = reply else {
            throw APIError(.internalServerError, "unexpected", "unexpected reply to FCALL sy_stream")
        }
        let detail = message.hasPrefix("SYERR ") ? (try? JSONValue.parse(String(message.dropFirst(6)))) : nil
        guard case .string(let code)? = detail?["code"] else {
            throw APIError(.internalServerError, "unexpected", "sy_stream failed: \(message)")
        }
        switch code {
        case "missing_upstream":
            let name = stream?.upstream ?? ""
            throw APIError.invalid([FieldError(field: "upstream", code: .missingUpstream, message: "upstream '\(name)' does not exist")])
        case "port_conflict":
            var holder = ""
            if case .string(let s)? = detail?["stream"] { holder = s }
            throw APIError(
                .conflict, "port_conflict", "listen: port \(stream?.listen ?? 0) is taken by stream '\(holder)'", field: "listen",
                extra: [("stream", .string(holder))])
        default:
            throw APIError(.internalServerError, code, "sy_stream refused the change: \(message)")
        }
    }
}
