// What a write request asks of the change it makes (docs/change-management.md): a note for
// the history (`X-Switchyard-Note`), a precondition on the configuration version
// (`If-Match: "<version>"`, checked atomically inside sy_apply) and `?dry_run=true`. The
// middleware below reads them once, answers 400 for malformed ones, and hands them to
// ConfigStore.apply as a task local, so every write path honours them without each handler
// passing them along. GETs get `ETag: "<version>"`.

import Hummingbird
import SwitchyardCore

/// The change-related parts of the request being handled.
public struct ChangeRequest: Sendable {
    /// Recorded with the change in the history; nil for none.
    public var note: String?
    /// `If-Match`: the write happens only while the configuration is at this version.
    public var ifVersion: Int64?
    /// `?dry_run=true`: validate and describe the change, write nothing.
    public var dryRun: Bool

    public init(note: String? = nil, ifVersion: Int64? = nil, dryRun: Bool = false) {
        self.note = note
        self.ifVersion = ifVersion
        self.dryRun = dryRun
    }

    @TaskLocal public static var current: ChangeRequest?

    /// Longest note accepted, in bytes.
    public static let maxNoteBytes = 500

    /// The note header's value: printable text (no control characters), 1-500 bytes.
    static func note(_ value: String?) throws(APIError) -> String? {
        guard let value else { return nil }
        let trimmed = value.trimmedOfBlanks
        if trimmed.isEmpty { return nil }
        guard trimmed.utf8.count <= maxNoteBytes else {
            throw APIError(
                .badRequest, "bad_request", "X-Switchyard-Note is longer than \(maxNoteBytes) bytes", field: "X-Switchyard-Note")
        }
        guard !trimmed.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw APIError(.badRequest, "bad_request", "X-Switchyard-Note must not contain control characters", field: "X-Switchyard-Note")
        }
        return trimmed
    }

    /// `If-Match: "42"` (or `42`, or `W/"42"`) -> 42; `*` -> nil (any version).
    static func ifMatch(_ value: String?) throws(APIError) -> Int64? {
        guard let raw = value?.trimmedOfBlanks, !raw.isEmpty, raw != "*" else { return nil }
        var text = Substring(raw)
        if text.hasPrefix("W/") { text = text.dropFirst(2) }
        if text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") { text = text.dropFirst().dropLast() }
        guard let version = Int64(text), version >= 0 else {
            throw APIError(
                .badRequest, "bad_request", "If-Match must be a configuration version in quotes, as the ETag of a GET: \"42\"",
                field: "If-Match")
        }
        return version
    }

    static func dryRun(_ value: String?) throws(APIError) -> Bool {
        switch value {
        case nil, "false"?: return false
        case "true"?: return true
        case let other?:
            throw APIError.invalid([FieldError(field: "dry_run", code: .invalid, message: "dry_run must be true or false, not '\(other)'")])
        }
    }
}

extension String {
    var trimmedOfBlanks: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return String(s)
    }
}

/// Reads note, If-Match and dry_run of writes into `ChangeRequest.current`; adds the ETag to
/// GET answers.
struct ChangeRequestMiddleware<Context: RequestContext>: RouterMiddleware {
    let store: ConfigStore

    static var noteHeader: HTTPFields.Element.Name { HTTPFields.Element.Name("X-Switchyard-Note")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.method == .get || request.method == .head {
            // read first: what the handler answers is at least as new, so a client that
            // writes with this ETag as If-Match never overwrites a change it did not see
            let version = try? await store.version()
            var response = try await next(request, context)
            if let version, (200..<300).contains(response.status.code) { response.headers[.eTag] = "\"\(version)\"" }
            return response
        }
        let note = try ChangeRequest.note(request.headers[Self.noteHeader])
        let ifVersion = try ChangeRequest.ifMatch(request.headers[.ifMatch])
        let dryRun = try ChangeRequest.dryRun(request.uri.queryParameters.get("dry_run"))
        if dryRun, request.uri.path.hasSuffix("/reseed") {
            throw APIError.invalid([
                FieldError(
                    field: "dry_run", code: .invalid, message: "reseed has no dry run (GET /api/v1/status shows what it would adopt)")
            ])
        }
        if let ifVersion {
            // early answer for writes that end up changing nothing (and so never reach
            // sy_apply, which checks the version atomically for every write that does)
            let version: Int64
            do { version = try await store.version() } catch { throw APIError.from(error) }
            if version != ifVersion { throw APIError.preconditionFailed(expected: ifVersion, version: version) }
        }
        let change = ChangeRequest(note: note, ifVersion: ifVersion, dryRun: dryRun)
        let response = try await ChangeRequest.$current.withValue(change) { try await next(request, context) }
        if dryRun, (200..<300).contains(response.status.code), response.headers[Self.dryRunHeader] == nil {
            // the handler found nothing to write (an identical PUT): the empty report
            let version: Int64
            do { version = try await store.version() } catch { throw APIError.from(error) }
            return jsonResponse(DryRunReport.empty(version: version))
        }
        return response
    }

    static var dryRunHeader: HTTPFields.Element.Name { HTTPFields.Element.Name("X-Switchyard-Dry-Run")! }
}

extension APIError {
    static func preconditionFailed(expected: Int64, version: Int64) -> APIError {
        APIError(
            .preconditionFailed, "precondition_failed",
            "the configuration is at version \(version), not \(expected) (If-Match): read it again and decide; nothing was written",
            field: "If-Match", extra: [("version", .integer(version)), ("expected", .integer(expected))])
    }
}
