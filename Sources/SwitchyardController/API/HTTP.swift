// HTTP plumbing for the admin API: JSON responses, the error body every failure uses, and
// the middleware that turns any error into that body (bearer tokens: Access.swift).
//
// Error body: {"error":{"code":...,"message":...,"field":...,"details":[{field,code,message}]}}

import Hummingbird
import Logging
import SwitchyardCore

/// An error answered to the client. Domain errors become these only here, at the edge.
struct APIError: Error, HTTPResponseError {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var field: String?
    var details: [FieldError] = []
    /// Extra members of the error object (e.g. `routes` for in_use).
    var extra: [(key: String, value: JSONValue)] = []
    /// Answered instead of the error body (a dry run's report, status 200).
    var body: JSONValue?

    init(
        _ status: HTTPResponse.Status, _ code: String, _ message: String, field: String? = nil,
        details: [FieldError] = [], extra: [(key: String, value: JSONValue)] = []
    ) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = details
        self.extra = extra
    }

    var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("code", .string(code)), ("message", .string(message))]
        if let field { members.append(("field", .string(field))) }
        if !details.isEmpty { members.append(("details", .array(details.map(\.json)))) }
        members.append(contentsOf: extra)
        return ["error": .object(members)]
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        if let body {
            var response = jsonResponse(body, status: status)
            response.headers[HTTPFields.Element.Name("X-Switchyard-Dry-Run")!] = "true"
            return response
        }
        var response = jsonResponse(json, status: status)
        if status == .unauthorized { response.headers[.wwwAuthenticate] = #"Bearer realm="switchyard""# }
        // Redis unavailable: the controller reconnects by itself within about a second
        if status == .serviceUnavailable { response.headers[.retryAfter] = "1" }
        return response
    }

    // MARK: Constructors

    /// 422 listing every problem; `field` and `message` summarise the first.
    static func invalid(_ problems: [FieldError]) -> APIError {
        let message = problems.count == 1 ? problems[0].description : "\(problems.count) problems"
        return APIError(.unprocessableContent, "invalid", message, field: problems.first?.field, details: problems)
    }

    static func badJSON(_ error: JSONParseError) -> APIError {
        APIError(.badRequest, "bad_request", "request body is not valid JSON: \(error)")
    }

    static func notFound(_ kind: ObjectKind, _ id: String) -> APIError {
        APIError(.notFound, "not_found", "\(kind.rawValue) '\(id)' does not exist")
    }

    /// The HTTP form of a store error. `upstreamField(route, upstream)` names the field a
    /// missing_upstream refers to (`upstream`, or `routes[3].split[1].upstream` in a batch);
    /// `objectField(kind, id)` the field naming an object (`id`, `name`, or `routes[3]`).
    static func from(
        _ error: StoreError, upstreamField: (String, String) -> String = { _, _ in "upstream" },
        objectField: (ObjectKind, String) -> String = defaultObjectField
    ) -> APIError {
        switch error.code {
        case .unavailable:
            return APIError(.serviceUnavailable, "unavailable", error.message)
        case .notFound:
            return APIError(.notFound, "not_found", error.message)
        case .conflict:
            return APIError(.conflict, "conflict", error.message)
        case .corrupt:
            return APIError(.internalServerError, "corrupt", error.message)
        case .unexpected:
            return APIError(.internalServerError, "internal", error.message)
        case .dataLost:
            return APIError(.conflict, "redis_data_lost", error.message)
        case .dryRun:
            var answer = APIError(.ok, "dry_run", error.message)
            answer.body = error.report ?? .null
            return answer
        case .rejected:
            break
        }
        switch error.apply {
        case .notFound(let kind, let id)?:
            return APIError(.notFound, "not_found", "\(kind?.rawValue ?? "object") '\(id)' does not exist")
        case .inUse(let id, let routes, let streams)?:
            var users: [String] = []
            if !routes.isEmpty { users.append("route\(routes.count == 1 ? "" : "s") \(routes.joined(separator: ", "))") }
            if !streams.isEmpty { users.append("stream\(streams.count == 1 ? "" : "s") \(streams.joined(separator: ", "))") }
            return APIError(
                .conflict, "in_use", "upstream '\(id)' is used by \(users.joined(separator: " and "))",
                extra: [("routes", .array(routes.map { .string($0) })), ("streams", .array(streams.map { .string($0) }))])
        case .missingUpstream(let route, let upstream)?:
            let problem = FieldError(
                field: upstreamField(route, upstream), code: .missingUpstream, message: "upstream '\(upstream)' does not exist")
            return .invalid([problem])
        case .versionMismatch(let kind, let id, let expected, let actual)?:
            return APIError(
                .conflict, "version_mismatch",
                "\(kind?.rawValue ?? "object") '\(id)' is at version \(actual.map(String.init) ?? "?"), not \(expected.map(String.init) ?? "?")"
            )
        case .badRequest(let message)?:
            return APIError(.internalServerError, "internal", "sy_apply rejected the call: \(message)")
        case .other(let code, let raw)?:
            return fromFunction(FunctionRefusal(code: code, raw: raw), objectField: objectField)
                ?? APIError(.internalServerError, "internal", "sy_apply error \(code): \(raw)")
        case nil:
            return APIError(.internalServerError, "internal", error.message)
        }
    }

    /// The field naming an object in a single-object request: routes and certificates
    /// have an `id`, upstreams a `name`.
    static func defaultObjectField(_ kind: ObjectKind, _ id: String) -> String { kind == .upstream ? "name" : "id" }

    /// The codes of the Function library that `ApplyError` keeps as `.other`.
    static func fromFunction(
        _ refusal: FunctionRefusal?, objectField: (ObjectKind, String) -> String = defaultObjectField
    ) -> APIError? {
        guard let refusal else { return nil }
        switch refusal.code {
        case "owned":
            // owned by another writer (the Kubernetes source): the admin API may not change it
            let kind = ObjectKind(rawValue: refusal.string("kind") ?? "") ?? .route
            let id = refusal.string("id") ?? ""
            let owner = refusal.string("owner")
            let source = refusal.string("source")
            let whose = owner.map { "is owned by \($0)" } ?? "is not owned by \(refusal.string("writer") ?? "this writer")"
            let from = source.map { " (source \($0))" } ?? ""
            let advice =
                owner == nil ? "only the admin API may change it" : "change it where it comes from, not through the admin API"
            return APIError(
                .conflict, "owned", "\(kind.rawValue) '\(id)' \(whose)\(from): \(advice); nothing was written",
                field: objectField(kind, id),
                extra: [("owner", owner.map { .string($0) } ?? .null), ("source", source.map { .string($0) } ?? .null)])
        case "port_conflict":
            // one stream per listen port and protocol (docs/stream.md)
            let id = refusal.string("id") ?? ""
            let holder = refusal.string("stream") ?? ""
            let at = objectField(.stream, id)
            return APIError(
                .conflict, "port_conflict",
                "stream '\(id)': \(refusal.string("protocol") ?? "tcp") port \(refusal.integer("listen") ?? 0) is taken by stream "
                    + "'\(holder)'; nothing was written",
                field: at.isEmpty || at == "id" ? "listen" : at + ".listen", extra: [("stream", .string(holder))])
        case "wrong_type":
            let key = refusal.string("key") ?? "?"
            return APIError(
                .internalServerError, "store_corrupt",
                "Redis key \(key) has type \(refusal.string("type") ?? "?"), expected \(refusal.string("want") ?? "?"); "
                    + "nothing was written (repair or delete the key by hand)",
                extra: [("key", .string(key))])
        case "data_lost":
            // the first write of a history, while live edges hold a configuration Redis lacks
            let edges = EdgeHistory.list(refusal.json["edges"])
            return APIError(
                .conflict, "redis_data_lost",
                "Redis holds no configuration history (version \(refusal.integer("version") ?? 0), no epoch) but live edges hold "
                    + "one: \(EdgeHistory.describe(edges)). The edges keep serving it. Restore Redis's data, or re-seed it "
                    + "explicitly: POST /api/v1/reseed {\"confirm\":\"none\"} (switchyard reseed --confirm none)",
                extra: [("edges", refusal.json["edges"] ?? .array([]))])
        case "edge_conflict":
            let epoch = refusal.string("epoch") ?? "none"
            let edges = EdgeHistory.list(refusal.json["edges"])
            return APIError(
                .conflict, "epoch_conflict",
                "live edges hold a configuration Redis's does not continue (Redis: epoch \(epoch), version "
                    + "\(refusal.integer("version") ?? 0); \(EdgeHistory.describe(edges))): they keep it and refuse to follow. "
                    + "Restore Redis's data, or re-seed it explicitly: POST /api/v1/reseed {\"confirm\":\"\(epoch)\"} "
                    + "(switchyard reseed --confirm \(epoch))",
                extra: [("epoch", .string(epoch)), ("edges", refusal.json["edges"] ?? .array([]))])
        case "too_large":
            // only a caller that bypasses the batch bound sees this (the Function's own bound)
            return APIError(
                .contentTooLarge, "too_large",
                "at most \(refusal.integer("max") ?? 0) objects per call, not \(refusal.integer("ops") ?? 0)")
        case "precondition_failed":
            return .preconditionFailed(expected: refusal.integer("expected") ?? -1, version: refusal.integer("version") ?? -1)
        case "confirm_mismatch":
            let epoch = refusal.string("epoch") ?? "none"
            return APIError(
                .conflict, "confirm_mismatch",
                "confirm must be Redis's epoch now, \(epoch) (or \"none\" when it has none), not '\(refusal.string("confirm") ?? "")': "
                    + "Redis changed since you looked; read GET /api/v1/status and repeat",
                field: "confirm", extra: [("epoch", .string(epoch))])
        default:
            return nil
        }
    }
}

/// One edge as the Function names it in data_lost and edge_conflict.
enum EdgeHistory {
    static func list(_ value: JSONValue?) -> [(id: String, applied: Int64, epoch: String?)] {
        guard case .array(let items)? = value else { return [] }
        return items.compactMap { item in
            guard case .string(let id)? = item["id"] else { return nil }
            var applied: Int64 = 0
            switch item["applied_version"] {
            case .integer(let v)?: applied = v
            case .number(let text)?: applied = Double(text).map { Int64($0) } ?? 0
            default: break
            }
            if case .string(let epoch)? = item["epoch"] { return (id, applied, epoch) }
            return (id, applied, nil)
        }
    }

    static func describe(_ edges: [(id: String, applied: Int64, epoch: String?)]) -> String {
        edges.map { "edge \($0.id) applied version \($0.applied) of \($0.epoch.map { "epoch \($0)" } ?? "no epoch")" }
            .joined(separator: ", ")
    }
}

func jsonResponse(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json; charset=utf-8"
    headers[.cacheControl] = "no-store"
    var bytes = value.canonicalBytes
    bytes.append(0x0A)
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}

/// Turns every error into the JSON error body, so clients never see HTML or an empty 500.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            if error.status.code >= 500 {
                logger.error("request failed", metadata: ["http.path": "\(request.uri.path)", "error": "\(error.message)"])
            }
            return try error.response(from: request, context: context)
        } catch let error as HTTPError {
            let code: String
            switch error.status {
            case .notFound: code = "not_found"
            case .methodNotAllowed: code = "method_not_allowed"
            case .contentTooLarge: code = "too_large"
            case .badRequest: code = "bad_request"
            default: code = error.status.code >= 500 ? "internal" : "bad_request"
            }
            let message = error.body ?? error.status.reasonPhrase.lowercased()
            return jsonResponse(APIError(error.status, code, message).json, status: error.status)
        } catch {
            logger.error("unhandled error", metadata: ["http.path": "\(request.uri.path)", "error": "\(error)"])
            return jsonResponse(APIError(.internalServerError, "internal", "internal error").json, status: .internalServerError)
        }
    }
}
