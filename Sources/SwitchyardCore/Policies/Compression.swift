// `gzip`: the edge compresses the route's responses (docs/traffic-policies.md,
// "Compression"): of the listed content types, of at least `min_bytes` when the length is
// known, for clients that accept gzip; responses the upstream already encoded are left
// alone. The stored object carries every effective value.

/// A route's gzip settings. A value has passed validation.
public struct Gzip: Sendable, Hashable {
    public var minBytes: Int
    /// Lowercase `type/subtype` media types (no parameters).
    public var types: [String]

    public init(minBytes: Int = Gzip.defaultMinBytes, types: [String] = Gzip.defaultTypes) {
        self.minBytes = minBytes
        self.types = types
    }

    public static let fields: Set<String> = ["min_bytes", "types"]
    public static let defaultMinBytes = 1024
    public static let minBytesRange = 0...104_857_600
    public static let maxTypes = 32
    public static let defaultTypes = [
        "text/html", "text/css", "text/plain", "text/javascript", "application/javascript", "application/json", "image/svg+xml",
    ]

    public var document: JSONValue {
        ["min_bytes": .integer(Int64(minBytes)), "types": .array(types.map { .string($0) })]
    }

    /// `type/subtype`, lowercase tokens, at most 127 bytes.
    static func isMediaType(_ s: String) -> Bool {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, s.utf8.count <= 127, s == s.lowercased() else { return false }
        return parts.allSatisfy { Tokens.isToken(String($0), maxLength: 127) }
    }
}

extension Gzip {
    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> Gzip? {
        let example = #"{"min_bytes":1024,"types":["text/html","application/json"]}"#
        guard reader.object(json, fields: Gzip.fields, example: example, at: prefix) != nil else { return nil }
        let before = reader.count
        let minBytes = reader.integer(json, "min_bytes", in: minBytesRange, default: defaultMinBytes, at: prefix)
        var types = defaultTypes
        let at = join(prefix, "types")
        switch present(json, "types") {
        case nil: break
        case .array(let items)?:
            if items.isEmpty || items.count > maxTypes {
                reader.add(at, .invalid, "must have 1-\(maxTypes) media types, not \(items.count)")
                break
            }
            types = []
            for (i, item) in items.enumerated() {
                guard case .string(let s) = item, isMediaType(s) else {
                    reader.add("\(at)[\(i)]", .invalid, "must be a lowercase media type such as text/html (no parameters)")
                    continue
                }
                if types.contains(s) {
                    reader.add("\(at)[\(i)]", .duplicate, "'\(s)' appears twice")
                    continue
                }
                types.append(s)
            }
        case let other?:
            reader.add(at, .invalid, "must be an array of media types, such as [\"text/html\"], not \(other.typeName)")
        }
        guard reader.count == before, let minBytes else { return nil }
        return Gzip(minBytes: minBytes, types: types)
    }
}
