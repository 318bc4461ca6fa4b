// Operator endpoints under /api/v1 beside the object API (AdminAPI wires them in):
//
//   POST /reseed   {"confirm": "<Redis's epoch now, or \"none\">"}: after Redis lost its
//                  data (or went back to an older state), make what it holds now the
//                  configuration under a new epoch that every edge follows
//                  (redis/README.md, "When Redis lost its data")

import Hummingbird
import Logging
import SwitchyardCore

struct OperationsAPI<Context: RequestContext>: APIHandlers {
    let store: ConfigStore
    let maxBodySize: Int
    let logger: Logger

    func addRoutes(to group: RouterGroup<Context>) {
        group.post("reseed", use: reseed)
    }

    @Sendable func reseed(_ request: Request, context: Context) async throws -> Response {
        let body = try await requiredBody(request)
        let confirm = try Self.confirmation(body)
        let (version, epoch, previous) = try await call { () throws(StoreError) in try await store.reseed(confirm: confirm) }
        logger.notice(
            "configuration re-seeded by the admin API",
            metadata: ["config.version": "\(version)", "config.epoch": "\(epoch)", "previous.epoch": "\(previous ?? "none")"])
        return jsonResponse([
            "version": .integer(version), "epoch": .string(epoch), "previous_epoch": previous.map { .string($0) } ?? .null,
        ])
    }

    /// `confirm` from a reseed body: Redis's epoch (32 hex digits) or "none".
    static func confirmation(_ body: JSONValue) throws(APIError) -> String {
        guard case .object(let members) = body else { throw APIError.invalid([]) }
        var problems: [FieldError] = []
        for (key, _) in members where key != "confirm" {
            problems.append(FieldError(field: key, code: .unknownField, message: "unknown field '\(key)' (reseed takes only confirm)"))
        }
        let rule = "Redis's epoch now (32 hex digits, GET /api/v1/status shows it) or \"none\" when it has none"
        var confirm = ""
        switch body["confirm"] {
        case .string(let value)?
        where value == "none"
            || (value.utf8.count == 32 && value.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }):
            confirm = value
        case nil:
            problems.append(FieldError(field: "confirm", code: .required, message: "confirm is required: \(rule)"))
        default:
            problems.append(FieldError(field: "confirm", code: .invalid, message: "confirm must be \(rule)"))
        }
        if !problems.isEmpty { throw APIError.invalid(problems) }
        return confirm
    }
}

extension DocumentCheck {
    /// Problems named in `problems` (the full list is under `documents.differ`).
    static let namedProblems = 20

    /// The status body with `documents` ({checked, recorded, differ: [{key, problem}]}) and
    /// the documents' problems added to `problems`.
    static func json(_ status: JSONValue, _ check: DocumentCheck) -> JSONValue {
        guard case .object(var members) = status else { return status }
        var lines = check.problems.prefix(namedProblems).map(\.description)
        if check.problems.count > namedProblems {
            lines.append("... and \(check.problems.count - namedProblems) more documents (documents.differ)")
        }
        if !check.recorded {
            lines.append("Redis keeps no recorded document hashes yet (written by an older library): the next write records them")
        }
        if let i = members.firstIndex(where: { $0.key == "problems" }), case .array(let existing) = members[i].value {
            members[i].value = .array(existing + lines.map { .string($0) })
        }
        let differ: [JSONValue] = check.problems.map { ["key": .string($0.key), "problem": .string($0.problem)] }
        members.append(
            ("documents", ["checked": .integer(Int64(check.checked)), "recorded": .bool(check.recorded), "differ": .array(differ)]))
        return .object(members)
    }
}
