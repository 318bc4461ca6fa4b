// How the CLI prints the admin API's answers: `-o table` (columns chosen per kind), `-o json`
// (the server's answer, indented) or `-o yaml` (the same as YAML).

import SwitchyardCore
import Yams

public enum OutputFormat: String, Sendable, CaseIterable {
    case table, json, yaml
}

public enum Output {
    /// The answer in `format`; `table` uses `columns`.
    public static func render(_ value: JSONValue, format: OutputFormat, table: () -> String) -> String {
        switch format {
        case .json: return pretty(value)
        case .yaml: return yaml(value)
        case .table: return table()
        }
    }

    /// Indented JSON (two spaces), members in the server's order.
    public static func pretty(_ value: JSONValue, indent: String = "") -> String {
        let inner = indent + "  "
        switch value {
        case .array(let items):
            if items.isEmpty { return "[]" }
            return "[\n" + items.map { inner + pretty($0, indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
        case .object(let members):
            if members.isEmpty { return "{}" }
            return "{\n"
                + members.map { inner + JSONValue.string($0.key).canonical + ": " + pretty($0.value, indent: inner) }.joined(
                    separator: ",\n")
                + "\n\(indent)}"
        default:
            return value.canonical
        }
    }

    /// YAML (block style) of a JSON value.
    public static func yaml(_ value: JSONValue) -> String {
        let text = (try? Yams.serialize(node: node(value))) ?? pretty(value)
        return text.hasSuffix("\n") ? String(text.dropLast()) : text
    }

    static func node(_ value: JSONValue) -> Node {
        switch value {
        case .null: return Node("null", Tag(.null))
        case .bool(let b): return Node(b ? "true" : "false", Tag(.bool))
        case .integer(let i): return Node(String(i), Tag(.int))
        case .number(let text): return Node(text, Tag(.float))
        case .string(let s): return Node(s, Tag(.str), needsQuotes(s) ? .doubleQuoted : .any)
        case .array(let items): return Node(items.map(node))
        case .object(let members): return Node(members.map { (Node($0.key), node($0.value)) })
        }
    }

    /// Whether a string would read back as something else (a number, a boolean, null) or
    /// is not safe as a plain scalar.
    static func needsQuotes(_ s: String) -> Bool {
        let lowered = s.lowercased()
        if s.isEmpty || Double(s) != nil || ["true", "false", "null", "~", "yes", "no", "on", "off", "y", "n"].contains(lowered) {
            return true
        }
        if s.first == " " || s.last == " " || s.contains(": ") || s.contains(" #") || s.contains("\n") { return true }
        return s.first.map { "-?:,[]{}#&*!|>'\"%@`".contains($0) } ?? false
    }

    /// A plain-text table: a header row and aligned columns.
    public static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            var out = ""
            for (i, cell) in cells.enumerated() {
                out += i == cells.count - 1 ? cell : cell.padding(toLength: widths[i] + 2, withPad: " ", startingAt: 0)
            }
            return out
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    /// A member as table text: strings as they are, `-` for absent, JSON for the rest.
    public static func cell(_ value: JSONValue?) -> String {
        switch value {
        case nil, .null?: return "-"
        case .string(let s)?: return s
        case let other?: return other.canonical
        }
    }

    /// The rows of a list answer (`items`) or of one object.
    public static func items(_ answer: JSONValue) -> [JSONValue] {
        if case .array(let items)? = answer["items"] { return items }
        return [answer]
    }

    /// The table of routes, upstreams, certificates or streams.
    public static func objectsTable(_ kind: ObjectKind, _ answer: JSONValue) -> String {
        let rows = items(answer)
        switch kind {
        case .route:
            return table(
                ["ID", "HOST", "PATH", "MATCH", "UPSTREAM", "PRIORITY", "VERSION"],
                rows.map { r in
                    let upstream: String
                    if case .array(let split)? = r["split"] {
                        upstream = split.map { cell($0["upstream"]) }.joined(separator: ",")
                    } else {
                        upstream = cell(r["upstream"])
                    }
                    return [
                        cell(r["id"]), cell(r["host"]), cell(r["path"]), cell(r["match"]), upstream, cell(r["priority"]),
                        cell(r["version"]),
                    ]
                })
        case .upstream:
            return table(
                ["NAME", "BALANCE", "ENDPOINTS", "VERSION"],
                rows.map { u in
                    var endpoints = "-"
                    if case .array(let items)? = u["endpoints"] { endpoints = items.map { cell($0["address"]) }.joined(separator: ",") }
                    return [cell(u["name"]), cell(u["balance"]), endpoints, cell(u["version"])]
                })
        case .certificate:
            return table(
                ["ID", "NAMES", "NOT_AFTER", "DEFAULT", "VERSION"],
                rows.map { c in
                    var names = "-"
                    if case .array(let items)? = c["names"] { names = items.map { cell($0) }.joined(separator: ",") }
                    return [cell(c["id"]), names, cell(c["not_after"]), cell(c["default"]), cell(c["version"])]
                })
        case .stream:
            return table(
                ["ID", "LISTEN", "PROTOCOL", "UPSTREAM", "BALANCE", "VERSION"],
                rows.map { s in
                    [cell(s["id"]), cell(s["listen"]), cell(s["protocol"]), cell(s["upstream"]), cell(s["balance"]), cell(s["version"])]
                })
        }
    }

    /// The table of GET /api/v1/history's changes.
    public static func historyTable(_ answer: JSONValue) -> String {
        var rows: [[String]] = []
        if case .array(let changes)? = answer["changes"] {
            for change in changes {
                var objects: [String] = []
                if case .array(let items)? = change["objects"] {
                    for item in items {
                        let action: String
                        switch (item["before"], item["after"]) {
                        case (nil, _), (.null?, _): action = "+"
                        case (_, nil), (_, .null?): action = "-"
                        default: action = "~"
                        }
                        objects.append("\(action)\(cell(item["kind"]))/\(cell(item["id"]))")
                    }
                }
                rows.append([
                    cell(change["version"]), cell(change["time"]), cell(change["who"]), cell(change["note"]),
                    objects.joined(separator: " "),
                ])
            }
        }
        return table(["VERSION", "TIME", "WHO", "NOTE", "OBJECTS"], rows)
    }
}
