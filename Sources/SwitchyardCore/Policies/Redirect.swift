// `redirect`: a route that answers with a redirect instead of proxying
// (docs/traffic-policies.md).

/// The route answers with a redirect instead of proxying.
public struct Redirect: Sendable, Hashable {
    public var to: String
    public var status: Int
    /// Append the request's path and query to `to`.
    public var keepPath: Bool

    public init(to: String, status: Int = 301, keepPath: Bool = false) {
        self.to = to
        self.status = status
        self.keepPath = keepPath
    }

    public static let statuses = [301, 302, 303, 307, 308]
    public static let maxLength = 2048
    public static let fields: Set<String> = ["to", "status", "keep_path"]

    public var document: JSONValue {
        ["to": .string(to), "status": .integer(Int64(status)), "keep_path": .bool(keepPath)]
    }
}

extension Redirect {
    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> Redirect? {
        let example = #"{"to":"https://example.com/new","status":301}"#
        guard reader.object(json, fields: Redirect.fields, example: example, at: prefix) != nil else { return nil }
        let before = reader.count
        let keepPath = reader.bool(json, "keep_path", default: false, at: prefix)
        var to: String?
        let toField = join(prefix, "to")
        if let given = reader.string(json, "to", required: true, at: prefix), let text = given {
            if let problem = Self.targetProblem(text) {
                reader.add(toField, .invalid, "'\(text)' \(problem)")
            } else if keepPath == true, text.contains("?") || text.contains("#") {
                reader.add(
                    toField, .invalid,
                    "'\(text)' must not contain a query or fragment with keep_path (the request's path and query are appended)")
            } else {
                to = text
            }
        }
        var status: Int? = 301
        switch present(json, "status") {
        case nil: break
        case .integer(let v)? where Redirect.statuses.contains(Int(v)): status = Int(v)
        default:
            status = nil
            reader.add(join(prefix, "status"), .invalid, "must be one of \(Redirect.statuses.map(String.init).joined(separator: ", "))")
        }
        guard reader.count == before, let to, let status, let keepPath else { return nil }
        return Redirect(to: to, status: status, keepPath: keepPath)
    }

    static func targetProblem(_ text: String) -> String? {
        if text.isEmpty { return "must not be empty" }
        if text.utf8.count > Redirect.maxLength { return "must be at most \(Redirect.maxLength) bytes" }
        if text.unicodeScalars.contains(where: {
            $0.value <= 0x20 || $0.value == 0x7F || (0x80...0x9F).contains($0.value) || $0.properties.isWhitespace
        }) {
            return "must not contain spaces or control characters"
        }
        let lower = text.lowercased()
        for scheme in ["http://", "https://"] where lower.hasPrefix(scheme) {
            let rest = text.dropFirst(scheme.count)
            let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            if authority.isEmpty { return "has no host after \(scheme)" }
            return nil
        }
        if text.hasPrefix("//") { return "must be an http:// or https:// URL or a path starting with a single /" }
        if text.hasPrefix("/") { return nil }
        return "must be an http:// or https:// URL or a path starting with /"
    }
}
