// Who may call what: named bearer tokens with roles (SwitchyardCore/Access/AccessTokens.swift),
// checked by one middleware in front of every /api/v1 route.
//
// The role a call needs (AccessPolicy.requiredRole; README "Tokens and roles" has the table):
//
//   admin   POST /reseed, GET /tokens, POST /tokens/reload  (operator actions)
//   read    every other GET (and HEAD): objects, status, changes, health, explain, history, whoami,
//           openapi.yaml
//   write   every other method: PUT/DELETE of objects and endpoints, POST /apply, POST /revert,
//           also with ?dry_run=true (a dry run is still a planned write; and a server without
//           dry_run support would perform it)
//
// Routes added later fall under the same rule by their method (a new GET is read, a new
// write is write), so none is open by mistake. (A path no route matches answers 404 before
// this middleware runs: Hummingbird applies group middleware to matched routes only.) 401 when the token is missing or unknown,
// 403 naming the role needed and the token's role when it is not enough, or naming the
// groups a token is limited to when this controller serves another. Every call that
// is not a GET is one audit log line naming the token (never the token itself), its role,
// the method, path and status. The token's name is `Principal.name` for the rest of the call.

import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import SwitchyardCore
import Synchronization
import UnixSignals

/// The role each call needs.
public enum AccessPolicy {
    /// Paths under /api/v1 (their first segment) that only admin tokens may call.
    public static let adminSegments: Set<String> = ["reseed", "tokens"]

    /// The role `method path` needs. The path is percent-decoded and split into segments, so
    /// `/api/v1//%72eseed/` is `reseed` too.
    public static func requiredRole(method: HTTPRequest.Method, path: String) -> Role {
        let decoded = percentDecoded(path) ?? path
        let segments = decoded.split(separator: "/", omittingEmptySubsequences: true)
        if segments.count >= 3, segments[0] == "api", segments[1] == "v1", adminSegments.contains(String(segments[2])) {
            return .admin
        }
        return method == .get || method == .head ? .read : .write
    }
}

/// The tokens the controller accepts: the file's (`--tokens-file`) and the single
/// `SWITCHYARD_ADMIN_TOKEN` (an admin token named `admin`). Reloading replaces the set only
/// when the whole file is valid; otherwise the previous set stays.
public final class TokenRegistry: Sendable {
    public struct LoadError: Error, CustomStringConvertible {
        public var file: String
        public var problems: [FieldError]
        public var description: String {
            "tokens file \(file): " + problems.map(\.description).joined(separator: "; ")
        }
    }

    struct State {
        var tokens: AccessTokens
        /// Milliseconds since the epoch of the last successful load.
        var loadedAt: Int64
    }

    public let file: String?
    private let adminToken: String?
    private let state: Mutex<State>

    /// Reads the file (if any). Throws `LoadError` when it cannot be read or is invalid.
    public init(adminToken: String?, file: String?) throws(LoadError) {
        self.adminToken = adminToken
        self.file = file
        let tokens = try Self.load(file: file, adminToken: adminToken).get()
        state = Mutex(State(tokens: tokens, loadedAt: ConfigStore.nowMilliseconds()))
    }

    public var tokens: AccessTokens { state.withLock { $0.tokens } }
    var loadedAt: Int64 { state.withLock { $0.loadedAt } }

    func authenticate(_ presented: some Collection<UInt8>) -> AccessToken? {
        let tokens = state.withLock { $0.tokens }
        return tokens.authenticate(presented)
    }

    /// Reads the file again: the new set when valid (answered), else the old one stays and
    /// the error is answered.
    @discardableResult
    public func reload() -> Result<AccessTokens, LoadError> {
        let result = Self.load(file: file, adminToken: adminToken)
        if case .success(let tokens) = result {
            state.withLock { $0 = State(tokens: tokens, loadedAt: ConfigStore.nowMilliseconds()) }
        }
        return result
    }

    /// The file's tokens plus the admin token.
    static func load(file: String?, adminToken: String?) -> Result<AccessTokens, LoadError> {
        var tokens = AccessTokens()
        if let file {
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                return .failure(
                    LoadError(file: file, problems: [FieldError(field: "", code: .invalid, message: "cannot read it: \(error)")]))
            }
            switch parse(text) {
            case .success(let parsed): tokens = parsed
            case .failure(let failure): return .failure(LoadError(file: file, problems: failure.problems))
            }
        }
        if let adminToken {
            switch tokens.adding(adminToken: adminToken) {
            case .success(let all): tokens = all
            case .failure(let problem): return .failure(LoadError(file: file ?? "-", problems: [problem]))
            }
        }
        return .success(tokens)
    }

    /// The file's text: JSON when it starts with `{`, YAML otherwise.
    static func parse(_ text: String) -> Result<AccessTokens, ValidationFailure> {
        let json: JSONValue
        do {
            if text.drop(while: { $0.isWhitespace }).first == "{" {
                json = try JSONValue.parse(text)
            } else {
                json = try YAMLDocuments.single(text)
            }
        } catch {
            return .failure(ValidationFailure([FieldError(field: "", code: .invalid, message: "neither YAML nor JSON: \(error)")]))
        }
        return AccessTokens.parse(json)
    }
}

/// Requires `Authorization: Bearer <token>` of a token whose role allows the call (nil
/// registry: no token configured, every call is `anonymous` with every right), sets
/// `Principal.name`, and writes the audit line of every call that is not a GET.
struct AccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let registry: TokenRegistry?
    let logger: Logger
    /// The group this controller serves: a token limited to other groups is refused (403).
    var group: String = KeySchema.defaultGroup

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let needed = AccessPolicy.requiredRole(method: request.method, path: request.uri.path)
        let caller: (name: String, role: Role)
        if let registry {
            guard let header = request.headers[.authorization] else {
                throw APIError(.unauthorized, "unauthorized", "missing Authorization: Bearer <token>")
            }
            let scheme = "bearer "
            guard header.utf8.count > scheme.utf8.count, header.prefix(scheme.count).lowercased() == scheme,
                let token = registry.authenticate(header.utf8.dropFirst(scheme.utf8.count))
            else {
                logger.info(
                    "refused a request with an unknown token",
                    metadata: ["http.method": "\(request.method)", "http.path": "\(request.uri.path)"])
                throw APIError(.unauthorized, "unauthorized", "invalid bearer token")
            }
            caller = (token.name, token.role)
            guard token.allows(group: group) else {
                audit(request, caller, status: 403, outcome: "denied")
                let groups = token.groups ?? []
                throw APIError(
                    .forbidden, "forbidden",
                    "token '\(token.name)' is limited to the group(s) \(groups.joined(separator: ", ")); this controller serves the group \(group)",
                    extra: [
                        ("reason", .string("group")), ("group", .string(group)),
                        ("token_groups", .array(groups.map { .string($0) })),
                    ])
            }
            guard token.role.allows(needed) else {
                audit(request, caller, status: 403, outcome: "denied")
                throw APIError(
                    .forbidden, "forbidden",
                    "\(request.method) \(request.uri.path) needs the \(needed.rawValue) role; token '\(token.name)' has the \(token.role.rawValue) role",
                    extra: [("required_role", .string(needed.rawValue)), ("role", .string(token.role.rawValue))])
            }
        } else {
            caller = ("anonymous", .admin)
        }
        let isWrite = !(request.method == .get || request.method == .head)
        return try await Principal.$name.withValue(caller.name) {
            guard isWrite else { return try await next(request, context) }
            do {
                let response = try await next(request, context)
                audit(request, caller, status: Int(response.status.code), outcome: response.status.code < 400 ? "done" : "refused")
                return response
            } catch let error as APIError {
                audit(request, caller, status: Int(error.status.code), outcome: "refused")
                throw error
            } catch let error as HTTPError {
                audit(request, caller, status: Int(error.status.code), outcome: "refused")
                throw error
            } catch {
                audit(request, caller, status: 500, outcome: "failed")
                throw error
            }
        }
    }

    /// One audit line: who (the token's name, never the token), what, and how it ended.
    func audit(_ request: Request, _ caller: (name: String, role: Role), status: Int, outcome: String) {
        var metadata: Logger.Metadata = [
            "audit.principal": "\(caller.name)", "audit.role": "\(caller.role.rawValue)", "audit.outcome": "\(outcome)",
            "http.method": "\(request.method)", "http.path": "\(request.uri.path)", "http.status": "\(status)",
        ]
        if let query = request.uri.query, !query.isEmpty { metadata["http.query"] = "\(query)" }
        logger.notice("audit", metadata: metadata)
    }
}

/// Token endpoints under /api/v1:
///
///   GET  /whoami         (read)  {"name":..., "role":..., "group":...} of the calling token
///                        (group: this controller's; groups: the token's limit, when it has one)
///   GET  /tokens         (admin) every token's name, role and source (never a hash)
///   POST /tokens/reload  (admin) reads the tokens file again (as SIGHUP does); 422 naming
///                        every problem when it is invalid (the previous set stays)
struct TokensAPI<Context: RequestContext>: APIHandlers {
    let registry: TokenRegistry?
    let maxBodySize: Int
    let logger: Logger
    /// The group this controller serves (answered by whoami).
    var group: String = KeySchema.defaultGroup

    func addRoutes(to group: RouterGroup<Context>) {
        group.get("whoami", use: whoami)
        group.get("tokens", use: list)
        group.post("tokens/reload", use: reload)
    }

    @Sendable func whoami(_ request: Request, context: Context) async throws -> Response {
        let name = Principal.name ?? "anonymous"
        let token = registry?.tokens.tokens.first { $0.name == name }
        var answer: [(key: String, value: JSONValue)] = [
            ("name", .string(name)), ("role", .string((token?.role ?? .admin).rawValue)), ("group", .string(group)),
        ]
        if let groups = token?.groups { answer.append(("groups", .array(groups.map { .string($0) }))) }
        return jsonResponse(.object(answer))
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        guard let registry else {
            return jsonResponse(["items": [], "file": .null, "authentication": false])
        }
        let items: [JSONValue] = registry.tokens.tokens.enumerated().map { _, token in
            let fromEnvironment = token.name == "admin" && registry.isAdminToken(token)
            var item: [(key: String, value: JSONValue)] = [
                ("name", .string(token.name)), ("role", .string(token.role.rawValue)),
                ("source", .string(fromEnvironment ? "SWITCHYARD_ADMIN_TOKEN" : "file")),
            ]
            if let groups = token.groups { item.append(("groups", .array(groups.map { .string($0) }))) }
            return JSONValue.object(item)
        }
        return jsonResponse([
            "items": .array(items), "file": registry.file.map { .string($0) } ?? .null, "authentication": true,
            "loaded_at_ms": .integer(registry.loadedAt),
        ])
    }

    @Sendable func reload(_ request: Request, context: Context) async throws -> Response {
        guard let registry, let file = registry.file else {
            throw APIError(.conflict, "no_tokens_file", "the controller was started without --tokens-file: there is nothing to reload")
        }
        let before = registry.tokens.tokens.count
        switch registry.reload() {
        case .success(let tokens):
            logger.notice("tokens file reloaded", metadata: ["access.file": "\(file)", "access.count": "\(tokens.tokens.count)"])
            return jsonResponse(["file": .string(file), "tokens": .integer(Int64(tokens.tokens.count))])
        case .failure(let error):
            logger.error("tokens file not reloaded: the previous tokens stay", metadata: ["error": "\(error)"])
            var refusal = APIError.invalid(error.problems)
            refusal.message = "tokens file \(file) is invalid (\(refusal.message)); the previous \(before) tokens stay in effect"
            throw refusal
        }
    }
}

extension TokenRegistry {
    /// Whether this entry is the single SWITCHYARD_ADMIN_TOKEN (not a file entry).
    func isAdminToken(_ token: AccessToken) -> Bool {
        guard let adminToken else { return false }
        return token.digest == AccessTokens.digest(adminToken)
    }
}

/// Reloads the tokens file on SIGHUP until the controller shuts down. A bad file keeps the
/// previous tokens and logs an error.
struct TokenReloadService: Service {
    let registry: TokenRegistry
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            switch registry.reload() {
            case .success(let tokens):
                logger.notice(
                    "tokens file reloaded (SIGHUP)",
                    metadata: ["access.file": "\(registry.file ?? "-")", "access.count": "\(tokens.tokens.count)"])
            case .failure(let error):
                logger.error("tokens file not reloaded (SIGHUP): the previous tokens stay", metadata: ["error": "\(error)"])
            }
        }
    }
}
