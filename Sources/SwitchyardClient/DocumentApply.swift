// `switchyard apply` and `switchyard diff` of Switchyard documents: one POST /api/v1/apply
// (?prune=true&owner=NAME, ?dry_run=true), and the diff without the server's dry run.

import Foundation
import SwitchyardCore
import SwitchyardKubeSource

public struct DocumentApply: Sendable {
    public var body: JSONValue
    public var prune = false
    public var owner: String?
    /// `X-Switchyard-Note`, recorded in the history.
    public var note: String?

    public init(body: JSONValue, prune: Bool = false, owner: String? = nil, note: String? = nil) {
        self.body = body
        self.prune = prune
        self.owner = owner
        self.note = note
    }

    /// The path of the apply call.
    public func path(dryRun: Bool) -> String {
        ClientSession.path(
            "/api/v1/apply", [("prune", prune ? "true" : nil), ("owner", owner), ("dry_run", dryRun ? "true" : nil)])
    }

    var headers: [(String, String)] { note.map { [("X-Switchyard-Note", $0)] } ?? [] }

    /// What a dry run found.
    public enum Preview: Sendable {
        /// The server's own answer ({dry_run, version, changed, changes, impact}).
        case server(JSONValue)
        /// Computed here from GETs; `why` says why the server's was not used.
        case local(ClientDiff, why: String)

        public var hasChanges: Bool {
            switch self {
            case .server(let answer): return ClientDiff.serverAnswerHasChanges(answer)
            case .local(let diff, _): return !diff.isEmpty
            }
        }
    }

    /// The server's dry run, or the diff computed here when the server has none (it refuses
    /// the parameter) or the token may not write (403).
    public func preview(_ session: ClientSession) async throws -> Preview {
        switch try await session.attempt(.POST, path(dryRun: true), body: body, headers: headers) {
        case .success(let answer) where answer["dry_run"] == .bool(true):
            return .server(answer)
        case .success(let answer):
            // never expected: a server that ignored dry_run would have written
            throw ClientFailure("the controller did not answer a dry run (it answered \(answer.canonical)); check what it applied")
        case .failure(let error) where ClientSession.isUnknownParameter(error, ["dry_run", "prune", "owner"]) || error.status == 403:
            let why =
                error.status == 403
                ? "the token may not write, so the controller's dry run is not available"
                : "the controller has no dry run (an older version)"
            if prune { throw ClientFailure("\(why); --prune needs it (which objects an owner holds is the controller's to say)") }
            async let routes = session.call(.GET, "/api/v1/routes")
            async let upstreams = session.call(.GET, "/api/v1/upstreams")
            async let certificates = session.call(.GET, "/api/v1/certificates")
            async let streams = session.call(.GET, "/api/v1/streams")
            let diff = try ClientDiff.compute(
                body: body, routes: try await routes, upstreams: try await upstreams, certificates: try await certificates,
                streams: try await streams, now: Int64(Date().timeIntervalSince1970))
            return .local(diff, why: why + ": computed here from GET answers, without routing impact")
        case .failure(let error):
            throw ClientFailure(ClientSession.describe(error))
        }
    }

    /// The real apply: its answer.
    public func apply(_ session: ClientSession) async throws -> JSONValue {
        try await session.call(.POST, path(dryRun: false), body: body, headers: headers)
    }

    /// A preview as text.
    public static func describe(_ preview: Preview, format: OutputFormat) -> String {
        switch preview {
        case .server(let answer):
            switch format {
            case .yaml: return Output.yaml(answer)
            default: return Output.pretty(answer)
            }
        case .local(let diff, _):
            if format != .table {
                let changes: [JSONValue] = diff.changes.map {
                    [
                        "action": .string($0.action.rawValue), "kind": .string($0.kind.rawValue), "id": .string($0.id),
                        "fields": .array($0.fields.map { .string($0) }),
                    ]
                }
                let json: JSONValue = ["dry_run": true, "computed_by": "client", "changes": .array(changes)]
                return format == .yaml ? Output.yaml(json) : Output.pretty(json)
            }
            return diff.isEmpty ? "no changes" : diff.changes.map(\.description).joined(separator: "\n")
        }
    }
}
