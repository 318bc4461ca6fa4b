// The problems validation reports: each names one field of the request and says what is
// wrong with it.

/// One problem with one field of a request.
public struct FieldError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Dotted path of the field, e.g. `routes[2].host`; empty for the body itself.
    public var field: String
    public var code: Code
    public var message: String

    public init(field: String, code: Code, message: String) {
        self.field = field
        self.code = code
        self.message = message
    }

    public enum Code: String, Sendable, Hashable {
        /// A required field is absent.
        case required
        /// The value has the wrong type or breaks a rule.
        case invalid
        /// The field is not part of the object.
        case unknownField = "unknown_field"
        /// The same object or endpoint appears twice.
        case duplicate
        /// The body's id/name differs from the one in the URL.
        case mismatch
        /// A route names an upstream that does not exist.
        case missingUpstream = "missing_upstream"
    }

    public var description: String { field.isEmpty ? message : "\(field): \(message)" }

    public var json: JSONValue {
        ["field": .string(field), "code": .string(code.rawValue), "message": .string(message)]
    }
}

/// Validation failed; `problems` is never empty.
public struct ValidationFailure: Error, Sendable, Equatable {
    public var problems: [FieldError]
    public init(_ problems: [FieldError]) { self.problems = problems }
}
