// Who is making this API call: the name of the token that authenticated it. AccessMiddleware
// (Access.swift) sets it for the rest of the request (a task local, so handlers and the store read
// it without every handler passing it along); writes record it in history and the audit log.

/// The authenticated caller of the request being handled.
public enum Principal {
    /// The token's name: a tokens file entry's name, `admin` for the single
    /// `SWITCHYARD_ADMIN_TOKEN`, `anonymous` when the controller runs without tokens (loopback
    /// only); nil outside a request.
    @TaskLocal public static var name: String?
}
