// What the Kubernetes translation reports: each problem names the object (kind and
// namespace/name), the field, and what is wrong. The `switchyard kube` role logs each and
// posts it as a Kubernetes Event on the object; `switchyard apply` prints it with the file
// and document index.

public struct KubeProblem: Error, Sendable, Hashable, CustomStringConvertible, Comparable {
    public enum Severity: String, Sendable, Hashable, Comparable {
        /// The object (or the part of it the field names) is skipped; everything else is
        /// served. `switchyard apply` writes nothing when there is one.
        case error
        /// Served, but not entirely as written (an annotation that is partly honoured or
        /// not at all, a route that lost a conflict).
        case warning

        public static func < (a: Severity, b: Severity) -> Bool { a == .error && b == .warning }
    }

    public var severity: Severity
    public var object: K8sRef
    /// Dotted path in the object (`spec.rules[0].http.paths[1].pathType`,
    /// `metadata.annotations.nginx.ingress.kubernetes.io/limit-rps`); "" for the whole object.
    public var field: String
    public var message: String
    /// A CamelCase word for the Event's `reason` (`InvalidPath`, `MissingService`, ...).
    public var reason: String

    public init(_ severity: Severity, _ object: K8sRef, field: String, _ message: String, reason: String) {
        self.severity = severity
        self.object = object
        self.field = field
        self.message = message
        self.reason = reason
    }

    /// `Ingress default/bbs: spec.rules[0].host: ...`.
    public var description: String {
        field.isEmpty ? "\(object): \(message)" : "\(object): \(field): \(message)"
    }

    public static func < (a: KubeProblem, b: KubeProblem) -> Bool {
        (a.object, a.field, a.severity.rawValue, a.message) < (b.object, b.field, b.severity.rawValue, b.message)
    }
}

/// The field path of an annotation, for problems.
func annotationField(_ name: String) -> String { "metadata.annotations.\(name)" }
