// The change history and reverts (docs/change-management.md; storage: Store/ChangeHistory.swift).
//
//   GET  /history?since=V&limit=N   the changes after version V (default: from the oldest
//                                    kept), oldest first, at most N (default 50, max 500)
//   GET  /history/:version           one change, every object before and after
//   POST /revert {"to_version": N, "include_owned": false}
//                                    routes, upstreams and certificates back to version N in
//                                    one atomic change; the digest is then N's

import Hummingbird
import Logging
import SwitchyardCore

struct HistoryAPI<Context: RequestContext>: APIHandlers {
    let store: ConfigStore
    let maxBodySize: Int
    let logger: Logger

    static var maxLimit: Int { 500 }

    func addRoutes(to group: RouterGroup<Context>) {
        group.get("history", use: list)
        group.get("history/:version", use: get)
        group.post("revert", use: revert)
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        var since: Int64 = 0
        var limit = 50
        var problems: [FieldError] = []
        for (key, value) in request.uri.queryParameters.map({ (String($0.key), String($0.value)) }) {
            switch key {
            case "since":
                if let v = Int64(value), v >= 0 {
                    since = v
                } else {
                    problems.append(FieldError(field: "since", code: .invalid, message: "since must be a version (an integer >= 0)"))
                }
            case "limit":
                if let v = Int(value), (1...Self.maxLimit).contains(v) {
                    limit = v
                } else {
                    problems.append(FieldError(field: "limit", code: .invalid, message: "limit must be 1-\(Self.maxLimit)"))
                }
            default:
                problems.append(FieldError(field: key, code: .unknownField, message: "unknown parameter '\(key)' (use since, limit)"))
            }
        }
        if !problems.isEmpty { throw APIError.invalid(problems) }
        let (entries, bounds, version) = try await call { () throws(StoreError) in
            (try await store.historyEntries(from: since + 1, count: limit), try await store.historyBounds(), try await store.version())
        }
        return jsonResponse([
            "items": .array(entries.map { HistoryView.json($0) }), "version": .integer(version),
            "oldest": bounds.oldest.map { .integer($0) } ?? .null,
            "next_since": entries.count == limit ? entries.last.map { .integer($0.version) } ?? .null : .null,
        ])
    }

    @Sendable func get(_ request: Request, context: Context) async throws -> Response {
        let text = try parameter("version", context)
        guard let version = Int64(text), version > 0 else {
            throw APIError.invalid([FieldError(field: "version", code: .invalid, message: "'\(text)' is not a version")])
        }
        let entries = try await call { () throws(StoreError) in try await store.historyEntries(from: version, to: version, count: 1) }
        guard let entry = entries.first, entry.version == version else {
            let oldest = try await call { () throws(StoreError) in try await store.historyBounds().oldest }
            throw APIError(
                .notFound, "not_found",
                "version \(version) is not in the history (oldest kept: \(oldest.map(String.init) ?? "none"))",
                extra: [("oldest_version", oldest.map { .integer($0) } ?? .null)])
        }
        return jsonResponse(HistoryView.json(entry))
    }

    @Sendable func revert(_ request: Request, context: Context) async throws -> Response {
        let body = try await requiredBody(request)
        var problems: [FieldError] = []
        var target: Int64 = 0
        var includeOwned = false
        guard case .object(let members) = body else { throw APIError(.badRequest, "bad_request", "a JSON object is required") }
        for (key, value) in members {
            switch (key, value) {
            case ("to_version", .integer(let v)) where v >= 1: target = v
            case ("to_version", _):
                problems.append(FieldError(field: "to_version", code: .invalid, message: "to_version must be a version >= 1"))
            case ("include_owned", .bool(let b)): includeOwned = b
            case ("include_owned", _):
                problems.append(FieldError(field: "include_owned", code: .invalid, message: "include_owned must be true or false"))
            default:
                problems.append(
                    FieldError(field: key, code: .unknownField, message: "unknown field '\(key)' (use to_version, include_owned)"))
            }
        }
        if target == 0, !problems.contains(where: { $0.field == "to_version" }) {
            problems.append(FieldError(field: "to_version", code: .required, message: "to_version is required"))
        }
        if !problems.isEmpty { throw APIError.invalid(problems) }
        let requested = ChangeRequest.current?.ifVersion
        var attempt = 0
        while true {
            attempt += 1
            let current = try await call { () throws(StoreError) in try await store.version() }
            if target > current {
                throw APIError.invalid([
                    FieldError(
                        field: "to_version", code: .invalid, message: "version \(target) is newer than the configuration (\(current))")
                ])
            }
            let plan: (operations: [ApplyOperation], digest: String, owned: [(field: String, owner: String)], oldest: Int64?)
            do {
                plan = try await store.revertPlan(to: target, current: current)
            } catch {
                if error.code == .conflict, let report = error.report {
                    throw APIError(
                        .conflict, "beyond_retention", error.message, field: "to_version",
                        extra: [("oldest_version", report["oldest_version"] ?? .null)])
                }
                throw APIError.from(error)
            }
            if !plan.owned.isEmpty, !includeOwned {
                let list = plan.owned.map { "\($0.field) (\($0.owner))" }.joined(separator: ", ")
                throw APIError(
                    .conflict, "owned",
                    "the revert would change objects another writer owns: \(list); their owner would change them back. "
                        + "Send \"include_owned\": true to revert them too; nothing was written",
                    field: "include_owned",
                    extra: [("objects", .array(plan.owned.map { ["object": .string($0.field), "owner": .string($0.owner)] }))])
            }
            if plan.operations.count > Batch.maxObjects {
                throw APIError(
                    .contentTooLarge, "too_large",
                    "reverting to \(target) changes \(plan.operations.count) objects, more than one atomic change holds (\(Batch.maxObjects))"
                )
            }
            let note = ChangeRequest.current?.note ?? "revert to version \(target)"
            let result: ApplyResult
            if plan.operations.isEmpty {
                if ChangeRequest.current?.dryRun == true { return jsonResponse(DryRunReport.empty(version: current)) }
                result = ApplyResult(version: current, changed: 0)
            } else {
                do {
                    result = try await store.apply(plan.operations, ifVersion: requested ?? current, force: includeOwned, note: note)
                } catch {
                    // another change came first: plan again (the client's own If-Match: 412)
                    if requested == nil, attempt < 5, FunctionRefusal(error.apply)?.code == "precondition_failed" { continue }
                    throw APIError.from(error)
                }
            }
            let digest = try await call { () throws(StoreError) in try await store.digest() }
            logger.info(
                "configuration reverted",
                metadata: [
                    "config.version": "\(result.version)", "reverted_to": "\(target)", "changed": "\(result.changed)",
                    "who": "\(Principal.name ?? "-")",
                ])
            return jsonResponse([
                "version": .integer(result.version), "changed": .integer(result.changed), "reverted_to": .integer(target),
                "digest": digest.map { .string($0) } ?? .null, "digest_at_version": .string(plan.digest),
            ])
        }
    }
}

extension ConfigStore {
    /// The configuration digest now (nil before the first write).
    func digest() async throws(StoreError) -> String? {
        try await send(["GET", keys.digest]).text
    }
}
