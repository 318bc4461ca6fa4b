// Reading the members of a JSON object into typed values, collecting EVERY problem with
// the field path an operator wrote (`routes[2].host`, `endpoints[0].address`).
//
// One reader serves one request body or one stored document. Request bodies are read
// strictly: unknown members are problems (code `unknown_field`: a misspelt optional field
// such as `priorty` would otherwise be silently ignored and the default used). Stored
// documents are read leniently: unknown members are ignored, so a newer controller's
// additions do not break an older reader. `Validator` and the policy, health and TLS
// parsers all read through this type, so each rule ("must be an integer between ...") is
// written once and no parser calls back into another.

/// Reads typed members out of JSON objects and collects the problems it finds.
struct FieldReader: Sendable {
    /// Strict (request bodies): unknown members are problems. Lenient (stored documents):
    /// they are ignored.
    let strict: Bool
    /// Every problem found so far, in the order found.
    private(set) var problems: [FieldError] = []

    init(strict: Bool) { self.strict = strict }

    /// How many problems were found so far; parsers compare it before and after a value.
    var count: Int { problems.count }
    var isEmpty: Bool { problems.isEmpty }

    mutating func add(_ field: String, _ code: FieldError.Code, _ message: String) {
        problems.append(FieldError(field: field, code: code, message: message))
    }

    /// Reports every member whose key is not in `allowed` (strict readers only).
    mutating func rejectUnknown(_ members: [(key: String, value: JSONValue)], allowed: Set<String>, at prefix: String) {
        guard strict else { return }
        for member in members where !allowed.contains(member.key) {
            add(
                join(prefix, member.key), .unknownField,
                "unknown field '\(member.key)' (known: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    /// The members of `json`; nil, with a problem (showing `example` when given), when it is
    /// not an object. Members not in `fields` are reported (strict readers only).
    mutating func object(_ json: JSONValue, fields: Set<String>, example: String? = nil, at prefix: String)
        -> [(key: String, value: JSONValue)]?
    {
        guard case .object(let members) = json else {
            add(prefix, .invalid, "must be a JSON object\(example.map { " such as \($0)" } ?? ""), not \(json.typeName)")
            return nil
        }
        rejectUnknown(members, allowed: fields, at: prefix)
        return members
    }

    /// Member `key` as a string: `.some(nil)` when absent or null and not `required`; nil
    /// when it is a problem (required and absent, or not a string).
    mutating func string(_ json: JSONValue, _ key: String, required: Bool, at prefix: String) -> String?? {
        switch present(json, key) {
        case nil:
            if required {
                add(join(prefix, key), .required, "is required")
                return nil
            }
            return .some(nil)
        case .string(let s)?:
            return .some(s)
        case let other?:
            add(join(prefix, key), .invalid, "must be a string, not \(other.typeName)")
            return nil
        }
    }

    /// Member `key` as a string; absent or null is a problem (`required`).
    mutating func requiredString(_ json: JSONValue, _ key: String, at prefix: String) -> String? {
        string(json, key, required: true, at: prefix) ?? nil
    }

    /// Member `key` as true or false; `defaultValue` when absent or null.
    mutating func bool(_ json: JSONValue, _ key: String, default defaultValue: Bool, at prefix: String) -> Bool? {
        switch present(json, key) {
        case nil: return defaultValue
        case .bool(let b)?: return b
        case let other?:
            add(join(prefix, key), .invalid, "must be true or false, not \(other.typeName)")
            return nil
        }
    }

    /// Member `key` as an integer within `range`; `defaultValue` when absent (null is a
    /// problem: an integer member has no "unset" value).
    mutating func integer(_ json: JSONValue, _ key: String, in range: ClosedRange<Int>, default defaultValue: Int, at prefix: String)
        -> Int?
    {
        switch json[key] {
        case nil:
            return defaultValue
        case .integer(let v)? where v >= Int64(range.lowerBound) && v <= Int64(range.upperBound):
            return Int(v)
        case .integer?:
            add(join(prefix, key), .invalid, "must be between \(range.lowerBound) and \(range.upperBound)")
            return nil
        case let other?:
            add(join(prefix, key), .invalid, "must be an integer, not \(other.typeName == "number" ? "a fraction" : other.typeName)")
            return nil
        }
    }

    /// Member `key` as an array; empty when absent.
    mutating func array(_ json: JSONValue, _ key: String, at prefix: String) -> [JSONValue] {
        switch json[key] {
        case nil: return []
        case .array(let items)?: return items
        case let other?:
            add(join(prefix, key), .invalid, "must be an array, not \(other.typeName)")
            return []
        }
    }
}

/// Joins a field path: `join("routes[1]", "host")` is `routes[1].host`.
@inline(__always)
func join(_ prefix: String, _ name: String) -> String { prefix.isEmpty ? name : "\(prefix).\(name)" }

/// The member `key` unless absent or null (null means "not given", as for other optional members).
func present(_ json: JSONValue, _ key: String) -> JSONValue? {
    guard let value = json[key], value != .null else { return nil }
    return value
}
