// `request_headers` and `response_headers`: the headers a route removes and sets
// (docs/traffic-policies.md).

/// One header to set.
public struct HeaderField: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// `request_headers` / `response_headers`: `remove`, then `set`.
public struct HeaderEdits: Sendable, Hashable {
    /// Sorted by name (UTF-8 bytes), like the document.
    public var set: [HeaderField]
    public var remove: [String]

    public init(set: [HeaderField] = [], remove: [String] = []) {
        self.set = set.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        self.remove = remove
    }

    public static let maxNames = 32
    public static let fields: Set<String> = ["set", "remove"]
    /// Lowercased names the edge owns (docs/traffic-policies.md).
    public static let refusedInRequest: Set<String> = [
        "connection", "upgrade", "keep-alive", "te", "transfer-encoding", "content-length", "x-forwarded-for",
        "x-forwarded-proto", "x-forwarded-host", "x-real-ip",
    ]
    public static let refusedInResponse: Set<String> = [
        "connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "trailer",
    ]

    public var document: JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        if !set.isEmpty { members.append(("set", .object(set.map { ($0.name, .string($0.value)) }))) }
        if !remove.isEmpty { members.append(("remove", .array(remove.map { .string($0) }))) }
        return .object(members)
    }
}

extension HeaderEdits {
    /// `refused`: the lowercased names the edge owns in this direction.
    static func parse(_ json: JSONValue, refused: Set<String>, at prefix: String, into reader: inout FieldReader) -> HeaderEdits? {
        guard reader.object(json, fields: HeaderEdits.fields, example: #"{"set":{"X-A":"1"},"remove":["X-B"]}"#, at: prefix) != nil else {
            return nil
        }
        let before = reader.count
        func nameProblem(_ name: String) -> String? {
            if !Tokens.isHeaderName(name) { return "'\(name)' is not a header name (\(Tokens.headerRule))" }
            if refused.contains(name.lowercased()) { return "\(name) is set by the edge itself and cannot be changed here" }
            return nil
        }
        var set: [HeaderField] = []
        var setNames: Set<String> = []
        let setField = join(prefix, "set")
        switch present(json, "set") {
        case nil: break
        case .object(let members)?:
            if members.count > HeaderEdits.maxNames {
                reader.add(setField, .invalid, "must have at most \(HeaderEdits.maxNames) headers, not \(members.count)")
                break
            }
            for member in members {
                let at = join(setField, member.key)
                if let problem = nameProblem(member.key) { reader.add(at, .invalid, problem); continue }
                guard case .string(let value) = member.value else {
                    reader.add(at, .invalid, "must be a string, not \(member.value.typeName)")
                    continue
                }
                if let problem = Tokens.headerValueProblem(value) { reader.add(at, .invalid, problem); continue }
                // the Host sent upstream: a host or host:port (the edge refuses anything else)
                if refused == HeaderEdits.refusedInRequest, member.key.lowercased() == "host",
                    let problem = HostNames.hostHeaderProblem(value)
                {
                    reader.add(at, .invalid, "'\(value)' \(problem)")
                    continue
                }
                guard setNames.insert(member.key.lowercased()).inserted else {
                    reader.add(at, .duplicate, "header \(member.key) appears twice (names are case-insensitive)")
                    continue
                }
                set.append(HeaderField(name: member.key, value: value))
            }
        case let other?:
            reader.add(setField, .invalid, "must be an object of header names to values, such as {\"X-A\":\"1\"}, not \(other.typeName)")
        }
        var remove: [String] = []
        var removeNames: Set<String> = []
        let removeField = join(prefix, "remove")
        switch present(json, "remove") {
        case nil: break
        case .array(let items)?:
            if items.count > HeaderEdits.maxNames {
                reader.add(removeField, .invalid, "must have at most \(HeaderEdits.maxNames) headers, not \(items.count)")
                break
            }
            for (i, item) in items.enumerated() {
                let at = "\(removeField)[\(i)]"
                guard case .string(let name) = item else {
                    reader.add(at, .invalid, "must be a header name, not \(item.typeName)")
                    continue
                }
                if let problem = nameProblem(name) { reader.add(at, .invalid, problem); continue }
                let lower = name.lowercased()
                if setNames.contains(lower) {
                    reader.add(at, .invalid, "\(name) is also in set: a header is either set or removed")
                    continue
                }
                guard removeNames.insert(lower).inserted else {
                    reader.add(at, .duplicate, "header \(name) appears twice (names are case-insensitive)")
                    continue
                }
                remove.append(name)
            }
        case let other?:
            reader.add(removeField, .invalid, "must be an array of header names, such as [\"X-B\"], not \(other.typeName)")
        }
        guard reader.count == before else { return nil }
        if set.isEmpty && remove.isEmpty {
            reader.add(prefix, .invalid, "must set or remove at least one header (omit it otherwise)")
            return nil
        }
        return HeaderEdits(set: set, remove: remove)
    }
}
