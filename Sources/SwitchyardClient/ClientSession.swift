// One CLI client invocation: the settings, the HTTP client, and the answers printed as the
// exit codes promise (0 done or no change, 1 error, 2 a diff exists for `diff`).

import Foundation
import NIOHTTP1
import SwitchyardCore
import SwitchyardKubeSource

public struct ClientFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public final class ClientSession: Sendable {
    public let settings: ClientSettings
    let client: AdminAPIClient

    public init(settings: ClientSettings) {
        self.settings = settings
        client = AdminAPIClient(baseURL: settings.url, token: settings.token)
    }

    public func shutdown() async { await client.shutdown() }

    /// One call; a 4xx/5xx becomes a `ClientFailure` whose text is the server's error (code,
    /// message, each field), with a hint for a route this controller does not have.
    public func call(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil, headers: [(String, String)] = []) async throws
        -> JSONValue
    {
        do {
            return try await client.send(method, path, body: body, headers: headers).body
        } catch let error as AdminAPIError {
            throw ClientFailure(Self.describe(error))
        }
    }

    /// Like `call`, but answers the refusal instead of throwing it (transport errors still throw).
    public func attempt(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil, headers: [(String, String)] = []) async throws
        -> Result<JSONValue, AdminAPIError>
    {
        do {
            return .success(try await client.send(method, path, body: body, headers: headers).body)
        } catch let error as AdminAPIError {
            if error.transport != nil { throw ClientFailure(Self.describe(error)) }
            return .failure(error)
        }
    }

    static func describe(_ error: AdminAPIError) -> String {
        var text = error.description
        if error.status == 404, error.body?["error"]?["code"] == .string("not_found"),
            case .string(let message)? = error.body?["error"]?["message"], !message.contains("'")
        {
            text += " (this controller may not have that endpoint yet: is it an older version?)"
        }
        if error.status == 401 { text += " (set SWITCHYARD_TOKEN, or token: in the config file)" }
        return text
    }

    /// Percent-encoding of a query value.
    public static func encoded(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }

    /// `base?k=v&...` with the values percent-encoded; nil values are left out.
    public static func path(_ base: String, _ query: [(String, String?)]) -> String {
        let pairs = query.compactMap { key, value in value.map { "\(key)=\(encoded($0))" } }
        return pairs.isEmpty ? base : base + "?" + pairs.joined(separator: "&")
    }

    /// Whether a refusal is the server not knowing a query parameter (an older controller).
    public static func isUnknownParameter(_ error: AdminAPIError, _ names: [String]) -> Bool {
        guard error.status == 422 || error.status == 400, case .array(let details)? = error.body?["error"]?["details"] else { return false }
        return details.contains { detail in
            guard case .string(let field)? = detail["field"], names.contains(field) else { return false }
            return detail["code"] == .string("unknown_field")
        }
    }
}
