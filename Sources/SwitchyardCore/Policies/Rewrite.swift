// `rewrite`: how a route changes the request path before it goes upstream (strip or
// replace the route's prefix, or a regex substitution), docs/traffic-policies.md.

/// How the request path is changed before it goes upstream.
public enum Rewrite: Sendable, Hashable {
    /// Remove the route's path from the front of the request path.
    case stripPrefix
    /// Replace the route's path at the front of the request path with this.
    case replacePrefix(String)
    /// `ngx.re.sub` of the path: `$0`-`$N`, `${N}` and `$$` in the replacement.
    case regex(pattern: String, replacement: String)

    public static let fields: Set<String> = ["strip_prefix", "replace_prefix", "regex", "replacement"]
}

extension Rewrite {
    /// `regex` compiles a regex rewrite's pattern (nil: not checked).
    static func parse(_ json: JSONValue, match: MatchKind?, regex: (any RegexChecker)?, at prefix: String, into reader: inout FieldReader)
        -> Rewrite?
    {
        let example = #"{"strip_prefix":true}, {"replace_prefix":"/v2"} or {"regex":"^/old/(.*)","replacement":"/new/$1"}"#
        guard reader.object(json, fields: Rewrite.fields, example: example, at: prefix) != nil else { return nil }
        let forms = ["strip_prefix", "replace_prefix", "regex"].filter { present(json, $0) != nil }
        guard forms.count == 1, let form = forms.first else {
            reader.add(
                prefix, .invalid, "must have exactly one of strip_prefix, replace_prefix or regex (with replacement), e.g. \(example)")
            return nil
        }
        let field = join(prefix, form)
        if form != "regex", present(json, "replacement") != nil {
            reader.add(join(prefix, "replacement"), .invalid, "only applies with regex")
            return nil
        }
        if form != "regex", let match, match == .regex {
            reader.add(field, .invalid, "only applies to exact and prefix routes (use regex and replacement on a regex route)")
            return nil
        }
        switch form {
        case "strip_prefix":
            guard present(json, form) == .bool(true) else {
                reader.add(field, .invalid, "must be true (omit rewrite to keep the path)")
                return nil
            }
            return .stripPrefix
        case "replace_prefix":
            guard let given = reader.string(json, form, required: true, at: prefix), let text = given else { return nil }
            if let problem = Paths.problem(text, match: .prefix) {
                reader.add(field, .invalid, "'\(text)' \(problem)")
                return nil
            }
            return .replacePrefix(text)
        default:
            let before = reader.count
            var pattern: String?
            var captures: Int?
            if let given = reader.string(json, "regex", required: true, at: prefix), let text = given {
                if let problem = Paths.problem(text, match: .regex) {
                    reader.add(field, .invalid, problem)
                } else if let problem = regex?.problem(in: text) {
                    reader.add(field, .invalid, problem)
                } else {
                    pattern = text
                    captures = regex?.captureCount(in: text)
                }
            }
            var replacement: String?
            let replacementField = join(prefix, "replacement")
            if let given = reader.string(json, "replacement", required: true, at: prefix), let text = given {
                if let problem = Paths.problem(text, match: .prefix) {
                    reader.add(replacementField, .invalid, "'\(text)' \(problem)")
                } else if let problem = Self.templateProblem(text, captures: captures) {
                    reader.add(replacementField, .invalid, "'\(text)': \(problem)")
                } else {
                    replacement = text
                }
            }
            guard reader.count == before, let pattern, let replacement else { return nil }
            return .regex(pattern: pattern, replacement: replacement)
        }
    }

    /// nil when `text` is a valid `ngx.re.sub` template: every `$` is followed by a group
    /// number, `{number}` or another `$`; numbers no larger than `captures` (when known).
    static func templateProblem(_ text: String, captures: Int?) -> String? {
        let bytes = Array(text.utf8)
        var i = 0
        func isDigit(_ j: Int) -> Bool { j < bytes.count && bytes[j] >= 0x30 && bytes[j] <= 0x39 }
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "$") else { i += 1; continue }
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "$") { i += 1; continue }
            let braced = i < bytes.count && bytes[i] == UInt8(ascii: "{")
            if braced { i += 1 }
            let start = i
            while isDigit(i) { i += 1 }
            guard i > start, i - start <= 3, !braced || (i < bytes.count && bytes[i] == UInt8(ascii: "}")) else {
                return "'$' must be followed by a group number ($1 or ${1}), or be written $$"
            }
            let number = Int(String(decoding: bytes[start..<i], as: UTF8.self)) ?? 0
            if braced { i += 1 }
            if let captures, number > captures {
                return
                    "refers to group \(number), but the regex has \(captures == 0 ? "no groups" : "only \(captures) group\(captures == 1 ? "" : "s")")"
            }
        }
        return nil
    }
}
