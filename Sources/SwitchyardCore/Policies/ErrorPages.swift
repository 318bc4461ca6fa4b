// `error_pages`: what the edge answers instead of its own short text for an error status
// (docs/traffic-policies.md, "Error pages"): per route, and per edge as the default
// (`switchyard edge --error-pages FILE`, the same object, also for requests no route
// matches). Keyed by status ("404", "429", "502", ...); each page is an inline body of at
// most `maxBody` bytes with its content type, or a redirect (302).

/// One page.
public enum ErrorPage: Sendable, Hashable {
    case body(String, contentType: String)
    case redirect(String)

    public static let fields: Set<String> = ["body", "content_type", "redirect"]
    public static let defaultContentType = "text/html; charset=utf-8"

    public var document: JSONValue {
        switch self {
        case .body(let body, let contentType): return ["body": .string(body), "content_type": .string(contentType)]
        case .redirect(let to): return ["redirect": .string(to)]
        }
    }
}

/// Pages by status (400-599).
public struct ErrorPages: Sendable, Hashable {
    /// Sorted by status.
    public var pages: [(status: Int, page: ErrorPage)]

    public init(_ pages: [(status: Int, page: ErrorPage)]) { self.pages = pages.sorted { $0.status < $1.status } }

    public static func == (a: ErrorPages, b: ErrorPages) -> Bool {
        a.pages.count == b.pages.count && zip(a.pages, b.pages).allSatisfy { $0.status == $1.status && $0.page == $1.page }
    }
    public func hash(into h: inout Hasher) {
        for p in pages {
            h.combine(p.status)
            h.combine(p.page)
        }
    }

    public static let maxPages = 16
    /// Bytes of one inline body: pages live in every worker's memory and in the document.
    public static let maxBody = 16_384
    public static let statusRange = 400...599
    public static let maxRedirect = 2048

    public var document: JSONValue { .object(pages.map { (String($0.status), $0.page.document) }) }

    /// The edge's default pages (`switchyard edge --error-pages FILE`): the file's object,
    /// read strictly; every problem with its field path otherwise.
    public static func parseEdgeDefault(_ json: JSONValue) -> Result<ErrorPages, ValidationFailure> {
        var reader = FieldReader(strict: true)
        guard let pages = parse(json, at: "", into: &reader) else { return .failure(ValidationFailure(reader.problems)) }
        return .success(pages)
    }

    /// Parses an `error_pages` object (route member or the edge's file).
    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> ErrorPages? {
        let before = reader.count
        guard case .object(let members) = json else {
            let example = #"{"503":{"body":"<h1>Down</h1>"}}"#
            reader.add(prefix, .invalid, "must be an object of status to page, such as \(example), not \(json.typeName)")
            return nil
        }
        if members.isEmpty {
            reader.add(prefix, .invalid, "must have at least one page (omit it otherwise)")
            return nil
        }
        if members.count > maxPages {
            reader.add(prefix, .invalid, "must have at most \(maxPages) pages, not \(members.count)")
            return nil
        }
        var out: [(status: Int, page: ErrorPage)] = []
        for member in members {
            let at = join(prefix, member.key)
            guard member.key.utf8.count == 3, member.key.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let status = Int(member.key),
                statusRange.contains(status)
            else {
                reader.add(at, .invalid, "'\(member.key)' is not an error status (400-599)")
                continue
            }
            guard reader.object(member.value, fields: ErrorPage.fields, example: #"{"body":"<h1>Down</h1>"}"#, at: at) != nil else {
                continue
            }
            let body = reader.string(member.value, "body", required: false, at: at)
            let redirect = reader.string(member.value, "redirect", required: false, at: at)
            let contentType = reader.string(member.value, "content_type", required: false, at: at)
            guard let body, let redirect, let contentType else { continue }
            switch (body, redirect) {
            case (nil, nil):
                reader.add(at, .required, "needs body (an inline page) or redirect (a URL)")
            case (_?, _?):
                reader.add(join(at, "redirect"), .invalid, "a page is either a body or a redirect, not both")
            case (let text?, nil):
                if text.utf8.count > maxBody {
                    reader.add(join(at, "body"), .invalid, "must be at most \(maxBody) bytes, not \(text.utf8.count)")
                    continue
                }
                let type = contentType ?? ErrorPage.defaultContentType
                if let problem = Tokens.headerValueProblem(type) {
                    reader.add(join(at, "content_type"), .invalid, problem)
                    continue
                }
                if type.isEmpty {
                    reader.add(join(at, "content_type"), .invalid, "must not be empty")
                    continue
                }
                out.append((status, .body(text, contentType: type)))
            case (nil, let to?):
                if contentType != nil {
                    reader.add(join(at, "content_type"), .invalid, "only applies with body")
                    continue
                }
                if let problem = redirectProblem(to) {
                    reader.add(join(at, "redirect"), .invalid, "'\(to)' \(problem)")
                    continue
                }
                out.append((status, .redirect(to)))
            }
        }
        guard reader.count == before else { return nil }
        return ErrorPages(out)
    }

    /// nil when `to` is an `http(s)://host...` URL or a path starting with one `/`.
    static func redirectProblem(_ to: String) -> String? {
        if to.utf8.count > maxRedirect { return "must be at most \(maxRedirect) bytes" }
        if to.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) { return "must not contain spaces or control characters" }
        if to.hasPrefix("//") { return "must not start with // (another host: write https://host/...)" }
        if to.hasPrefix("/") { return nil }
        for scheme in ["https://", "http://"] where to.hasPrefix(scheme) {
            let rest = to.dropFirst(scheme.count)
            if rest.isEmpty || rest.hasPrefix("/") { return "has no host" }
            return nil
        }
        return "must be an http:// or https:// URL or a path starting with /"
    }
}
