// Errors from the API: the server's Status (with its HTTP code), transport failures and
// answers that do not decode.

public enum KubeError: Error, CustomStringConvertible, Sendable {
    /// The server answered with an HTTP error and (usually) a Status object.
    case api(code: Int, status: KubeStatus, request: String)
    /// The request did not get an answer (connection, TLS, timeout).
    case transport(request: String, underlying: String)
    /// The answer was not what the API defines.
    case decoding(request: String, underlying: String)

    public var code: Int? { if case .api(let code, _, _) = self { return code }; return nil }
    public var reason: String? { if case .api(_, let status, _) = self { return status.reason }; return nil }
    public var isNotFound: Bool { code == 404 }
    public var isConflict: Bool { code == 409 }
    public var isAlreadyExists: Bool { code == 409 && reason == "AlreadyExists" }
    /// 410 Gone / Expired: the resourceVersion or continue token is too old; list again.
    public var isGone: Bool { code == 410 }

    public var description: String {
        switch self {
        case .api(let code, let status, let request):
            return "\(request): \(code) \(status.reason ?? "")\(status.message.map { ": \($0)" } ?? "")"
        case .transport(let request, let underlying):
            return "\(request): \(underlying)"
        case .decoding(let request, let underlying):
            return "\(request): cannot decode the answer: \(underlying)"
        }
    }
}
