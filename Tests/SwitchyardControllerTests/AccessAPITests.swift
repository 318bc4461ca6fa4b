import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import SwitchyardCore
import SwitchyardObservability
import SwitchyardRedis
import SwitchyardTestSupport
import Synchronization
import Testing

@testable import SwitchyardController

/// Named tokens with roles against a real Redis: every endpoint answers 401 without a valid
/// token, 403 naming the role when the token's is not enough, and does its work otherwise;
/// the tokens file reloads; writes leave audit lines naming the token, never holding it.
/// Log lines a test's controller wrote.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }

    /// A logger writing JSON lines here.
    var logger: Logger {
        Logger(label: "test") { label in
            var handler = JSONLogHandler(label: label) { line in self.append(line) }
            handler.logLevel = .info
            return handler
        }
    }
}

@Suite("Tokens and roles", .serialized)
struct AccessAPITests {
    static let tokens: [Role: String] = [
        .read: "read-token-0123456789abcdef0123456789", .write: "write-token-0123456789abcdef012345678",
        .admin: "admin-token-0123456789abcdef012345678",
    ]
    static let adminEnvironmentToken = "environment-admin-token-0123456789abcdef"

    static func fileText(_ entries: [(name: String, role: Role, token: String)]) -> String {
        "tokens:\n" + entries.map { AccessTokens.fileLine(name: $0.name, role: $0.role, token: $0.token) + "\n" }.joined()
    }

    static var standardFile: String {
        fileText([("reader", .read, tokens[.read]!), ("writer", .write, tokens[.write]!), ("operator", .admin, tokens[.admin]!)])
    }

    static func temporaryFile(_ text: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-tokens-\(UUID().uuidString).yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// A controller with the tokens file (and the environment's admin token), its log lines captured.
    static func withTokens<T: Sendable>(
        file text: String, adminToken: String? = adminEnvironmentToken, group: String = KeySchema.defaultGroup,
        _ body: @Sendable @escaping (Harness, URL, LogLines) async throws -> T
    ) async throws -> T {
        let url = try temporaryFile(text)
        defer { try? FileManager.default.removeItem(at: url) }
        let lines = LogLines()
        return try await withTemporaryRedis { server async throws in
            var configuration = testConfiguration(server, token: adminToken)
            configuration.tokensFile = url.path
            configuration.logLevel = .info
            configuration.keys = try KeySchema(group: group)
            let app = try await buildApplication(configuration: configuration, logger: lines.logger)
            let redis = RedisClient(configuration: server.configuration())
            defer { Task { await redis.close() } }
            return try await app.test(.router) { client in
                try await body(Harness(client: client, redis: redis, token: nil), url, lines)
            }
        }
    }

    struct Call: Sendable, CustomStringConvertible {
        var method: HTTPRequest.Method
        var path: String
        var body: String?
        var needs: Role
        /// The status when allowed (nil: anything but 401 and 403).
        var allowed: Set<Int>?
        var description: String { "\(method) \(path)" }
    }

    /// Every endpoint of the admin API, in an order that works from the same start state for
    /// each role allowed (creations are undone later in the list).
    static let calls: [Call] = [
        Call(method: .get, path: "/api/v1/routes", needs: .read, allowed: [200]),
        Call(method: .get, path: "/api/v1/routes/r1", needs: .read, allowed: [200]),
        Call(method: .get, path: "/api/v1/upstreams", needs: .read, allowed: [200]),
        Call(method: .get, path: "/api/v1/upstreams/u1", needs: .read, allowed: [200]),
        Call(method: .get, path: "/api/v1/certificates", needs: .read, allowed: [200]),
        Call(method: .get, path: "/api/v1/certificates/none", needs: .read, allowed: [404]),
        Call(method: .get, path: "/api/v1/status", needs: .read, allowed: [200]),
        Call(method: .get, path: "/api/v1/changes?limit=5", needs: .read, allowed: [200]),
        Call(method: .get, path: "/api/v1/health", needs: .read, allowed: [200]),
        Call(method: .get, path: "/api/v1/explain?url=http://a.test/", needs: .read, allowed: [503]),
        Call(method: .get, path: "/api/v1/whoami", needs: .read, allowed: [200]),
        Call(
            method: .put, path: "/api/v1/upstreams/u2", body: #"{"endpoints":[{"address":"127.0.0.1:9"}]}"#, needs: .write, allowed: [201]),
        Call(method: .put, path: "/api/v1/upstreams/u2/endpoints/127.0.0.1:10", needs: .write, allowed: [201]),
        Call(method: .delete, path: "/api/v1/upstreams/u2/endpoints/127.0.0.1:10", needs: .write, allowed: [200]),
        Call(
            method: .put, path: "/api/v1/routes/r2", body: #"{"host":"b.test","path":"/","match":"prefix","upstream":"u2"}"#,
            needs: .write, allowed: [201]),
        Call(method: .delete, path: "/api/v1/routes/r2", needs: .write, allowed: [200]),
        Call(method: .post, path: "/api/v1/apply", body: #"{"delete":{"upstreams":["u2"]}}"#, needs: .write, allowed: [200]),
        Call(method: .put, path: "/api/v1/certificates/c1", body: #"{"cert":"x","key":"y"}"#, needs: .write, allowed: [422]),
        Call(method: .delete, path: "/api/v1/certificates/none", needs: .write, allowed: [404]),
        Call(method: .get, path: "/api/v1/tokens", needs: .admin, allowed: [200]),
        Call(method: .post, path: "/api/v1/tokens/reload", needs: .admin, allowed: [200]),
        Call(
            method: .post, path: "/api/v1/reseed", body: #"{"confirm":"0123456789abcdef0123456789abcdef"}"#, needs: .admin, allowed: [409]),
    ]

    @Test func everyEndpointAnswers401Then403ThenItsWork() async throws {
        try await Self.withTokens(file: Self.standardFile) { h, _, _ async throws in
            let admin = Self.tokens[.admin]!
            #expect(
                try await h.request(.put, "/api/v1/upstreams/u1", #"{"endpoints":[{"address":"127.0.0.1:9"}]}"#, token: admin).status == 201
            )
            #expect(
                try await h.request(
                    .put, "/api/v1/routes/r1", #"{"host":"a.test","path":"/","match":"prefix","upstream":"u1"}"#, token: admin
                )
                .status == 201)
            for call in Self.calls {
                let missing = try await h.request(call.method, call.path, call.body, token: .some(nil))
                #expect(missing.status == 401, "\(call) without a token")
                #expect(missing.errorCode == "unauthorized")
                #expect(missing.headers[.wwwAuthenticate] == #"Bearer realm="switchyard""#)
                let wrong = try await h.request(call.method, call.path, call.body, token: "not-a-token")
                #expect(wrong.status == 401, "\(call) with an unknown token")
            }
            for role in [Role.read, .write, .admin] {
                for call in Self.calls {
                    let before = try await h.storedVersion()
                    let answer = try await h.request(call.method, call.path, call.body, token: Self.tokens[role]!)
                    if role.allows(call.needs) {
                        #expect(answer.status != 401 && answer.status != 403, "\(call) as \(role): \(answer.json.canonical)")
                        if let allowed = call.allowed {
                            #expect(allowed.contains(answer.status), "\(call) as \(role): \(answer.json.canonical)")
                        }
                    } else {
                        #expect(answer.status == 403, "\(call) as \(role)")
                        #expect(answer.errorCode == "forbidden")
                        #expect(answer.json["error"]?["required_role"] == .string(call.needs.rawValue))
                        #expect(answer.json["error"]?["role"] == .string(role.rawValue))
                        if case .string(let message)? = answer.json["error"]?["message"] {
                            #expect(message.contains("needs the \(call.needs.rawValue) role"), "\(message)")
                        }
                        #expect(try await h.storedVersion() == before, "a refused \(call) wrote")
                    }
                }
            }
            // the environment's token is the admin token named admin; file tokens are named
            let me = try await h.request(.get, "/api/v1/whoami", token: Self.adminEnvironmentToken)
            #expect(me.json == ["group": "cfg", "name": "admin", "role": "admin"])
            #expect(
                try await h.request(.get, "/api/v1/whoami", token: Self.tokens[.write]!).json == [
                    "group": "cfg", "name": "writer", "role": "write",
                ])
            let list = try await h.request(.get, "/api/v1/tokens", token: Self.adminEnvironmentToken)
            #expect(list.json["items"]?.count == 4)
            #expect(list.json["items"]?[0]?["source"] == "SWITCHYARD_ADMIN_TOKEN")
            #expect(!list.json.canonical.contains("sha256"))
        }
    }

    @Test func dryRunWritesStillNeedTheWriteRole() async throws {
        try await Self.withTokens(file: Self.standardFile) { h, _, _ async throws in
            let answer = try await h.request(.post, "/api/v1/apply?dry_run=true", #"{"upstreams":[]}"#, token: Self.tokens[.read]!)
            #expect(answer.status == 403)
            #expect(AccessPolicy.requiredRole(method: .put, path: "/api/v1/routes/x?dry_run=true") == .write)
        }
    }

    /// A token limited to group a is refused by group b's controller (403 naming the reason,
    /// nothing written); a token without groups works there, in group b's keys only.
    @Test func aTokenLimitedToAnotherGroupIsRefused() async throws {
        let tenant = "tenant-a-token-0123456789abcdef0123456"
        let file =
            Self.standardFile + "  - {name: tenant-a, role: write, hash: \"\(AccessTokens.hash(tenant))\", groups: [a]}\n"
        try await Self.withTokens(file: file, group: "b") { h, _, lines async throws in
            let keys = try KeySchema(group: "b")
            let upstream = #"{"endpoints":[{"address":"127.0.0.1:9001"}]}"#
            for (method, body) in [(HTTPRequest.Method.get, nil), (.put, upstream)] as [(HTTPRequest.Method, String?)] {
                let refused = try await h.request(method, "/api/v1/upstreams/u", body, token: tenant)
                #expect(refused.status == 403)
                #expect(refused.errorCode == "forbidden")
                #expect(refused.json["error"]?["reason"] == .string("group"))
                #expect(refused.json["error"]?["group"] == .string("b"))
                #expect(refused.json["error"]?["token_groups"] == .array([.string("a")]))
            }
            #expect(try await h.redis.send("EXISTS", keys.upstream("u"), KeySchema.default.upstream("u")).integer == 0)
            #expect(lines.all.contains { $0.contains("\"audit.principal\":\"tenant-a\"") && $0.contains("denied") })

            let written = try await h.request(.put, "/api/v1/upstreams/u", upstream, token: Self.tokens[.write]!)
            #expect(written.status == 201)
            #expect(try await h.redis.send("EXISTS", keys.upstream("u")).integer == 1)
            #expect(try await h.redis.send("EXISTS", KeySchema.default.upstream("u")).integer == 0)
            #expect(try await h.redis.send("GET", keys.version).text == "1")

            let whoami = try await h.request(.get, "/api/v1/whoami", token: Self.tokens[.read]!)
            #expect(whoami.json["group"] == .string("b") && whoami.json["groups"] == nil)
            let status = try await h.request(.get, "/api/v1/status", token: Self.tokens[.read]!)
            #expect(status.json["group"] == .string("b"))
            let listed = try await h.request(.get, "/api/v1/tokens", token: Self.tokens[.admin]!)
            guard case .array(let items)? = listed.json["items"] else {
                Issue.record("no items: \(listed.json)")
                return
            }
            #expect(items.first { $0["name"] == .string("tenant-a") }?["groups"] == .array([.string("a")]))
        }
    }

    @Test func theRoleTableCoversUnknownAndDisguisedPaths() {
        #expect(AccessPolicy.requiredRole(method: .get, path: "/api/v1/history") == .read)
        #expect(AccessPolicy.requiredRole(method: .get, path: "/api/v1/history/7") == .read)
        #expect(AccessPolicy.requiredRole(method: .post, path: "/api/v1/revert") == .write)
        #expect(AccessPolicy.requiredRole(method: .post, path: "/api/v1/something-new") == .write)
        #expect(AccessPolicy.requiredRole(method: .patch, path: "/api/v1/routes/x") == .write)
        #expect(AccessPolicy.requiredRole(method: .post, path: "/api/v1/reseed") == .admin)
        #expect(AccessPolicy.requiredRole(method: .post, path: "/api/v1//%72eseed/") == .admin)
        #expect(AccessPolicy.requiredRole(method: .get, path: "/api/v1/tokens") == .admin)
        #expect(AccessPolicy.requiredRole(method: .get, path: "/api/v1/routes/reseed") == .read)
    }

    @Test func reloadPicksUpANewFileAndKeepsTheOldOneWhenBad() async throws {
        try await Self.withTokens(file: Self.standardFile) { h, url, lines async throws in
            let newToken = "new-token-0123456789abcdef0123456789ab"
            try Self.fileText([("newcomer", .read, newToken), ("operator", .admin, Self.tokens[.admin]!)])
                .write(to: url, atomically: true, encoding: .utf8)
            #expect(try await h.request(.get, "/api/v1/routes", token: newToken).status == 401, "read before the reload")
            let reload = try await h.request(.post, "/api/v1/tokens/reload", token: Self.tokens[.admin]!)
            #expect(reload.status == 200)
            #expect(reload.json["tokens"] == .integer(3))
            #expect(try await h.request(.get, "/api/v1/routes", token: newToken).status == 200)
            #expect(try await h.request(.get, "/api/v1/routes", token: Self.tokens[.read]!).status == 401, "removed token still works")

            // a bad file: 422 naming the field, the previous set stays
            try "tokens:\n  - {name: x, role: root, hash: \"sha256:00\"}\n".write(to: url, atomically: true, encoding: .utf8)
            let bad = try await h.request(.post, "/api/v1/tokens/reload", token: Self.tokens[.admin]!)
            #expect(bad.status == 422)
            #expect(Set(bad.errorFields) == ["tokens[0].role", "tokens[0].hash"])
            #expect(try await h.request(.get, "/api/v1/routes", token: newToken).status == 200)
            // a file that went away: the same
            try FileManager.default.removeItem(at: url)
            #expect(try await h.request(.post, "/api/v1/tokens/reload", token: Self.tokens[.admin]!).status == 422)
            #expect(try await h.request(.get, "/api/v1/routes", token: newToken).status == 200)
            #expect(lines.all.contains { $0.contains("tokens file not reloaded") })
        }
    }

    @Test func theReloadFunctionIsWhatSIGHUPCalls() throws {
        let url = try Self.temporaryFile(Self.standardFile)
        defer { try? FileManager.default.removeItem(at: url) }
        let registry = try TokenRegistry(adminToken: nil, file: url.path)
        #expect(registry.tokens.tokens.map(\.name) == ["reader", "writer", "operator"])
        try #"{"tokens":[{"name":"json-token","role":"write","hash":"\#(AccessTokens.hash("j"))"}]}"#.write(
            to: url, atomically: true, encoding: .utf8)
        guard case .success = registry.reload() else {
            Issue.record("a valid JSON file was not reloaded")
            return
        }
        #expect(registry.authenticate(Array("j".utf8))?.name == "json-token")
        try "tokens: [".write(to: url, atomically: true, encoding: .utf8)
        guard case .failure = registry.reload() else {
            Issue.record("broken YAML was accepted")
            return
        }
        #expect(registry.authenticate(Array("j".utf8))?.role == .write)
    }

    @Test func aBadFileAtStartIsAConfigurationError() async throws {
        try await withTemporaryRedis { server async throws in
            var configuration = testConfiguration(server, token: nil)
            configuration.tokensFile = "/nonexistent/tokens.yaml"
            await #expect(throws: ConfigurationError.self) { _ = try await buildApplication(configuration: configuration) }
            // a public bind is allowed with a tokens file and no admin token
            let url = try Self.temporaryFile(Self.standardFile)
            defer { try? FileManager.default.removeItem(at: url) }
            configuration.tokensFile = url.path
            configuration.host = "0.0.0.0"
            _ = try await buildApplication(configuration: configuration)
        }
    }

    @Test func writesAreAuditedByNameWithoutTheToken() async throws {
        try await Self.withTokens(file: Self.standardFile) { h, _, lines async throws in
            let writer = Self.tokens[.write]!
            #expect(
                try await h.request(.put, "/api/v1/upstreams/u9", #"{"endpoints":[{"address":"127.0.0.1:9"}]}"#, token: writer).status
                    == 201)
            #expect(try await h.request(.put, "/api/v1/routes/bad", #"{"host":""}"#, token: writer).status == 422)
            #expect(try await h.request(.delete, "/api/v1/upstreams/u9", token: Self.tokens[.read]!).status == 403)
            #expect(try await h.request(.get, "/api/v1/upstreams/u9", token: writer).status == 200)
            let all = lines.all
            let audit = all.filter { $0.contains(#""message":"audit""#) }
            #expect(audit.count == 3, "\(audit)")
            #expect(
                audit.contains {
                    $0.contains(#""audit.principal":"writer""#) && $0.contains(#""http.path":"/api/v1/upstreams/u9""#)
                        && $0.contains(#""http.status":"201""#)
                })
            #expect(
                audit.contains {
                    $0.contains(#""audit.principal":"writer""#) && $0.contains(#""audit.outcome":"refused""#)
                        && $0.contains(#""http.status":"422""#)
                })
            #expect(audit.contains { $0.contains(#""audit.principal":"reader""#) && $0.contains(#""audit.outcome":"denied""#) })
            for token in Self.tokens.values { #expect(!all.contains { $0.contains(token) }, "a token reached the log") }
        }
    }

    @Test func withoutTokensCallsAreAnonymousAndStillAudited() async throws {
        let lines = LogLines()
        try await withTemporaryRedis { server async throws in
            var configuration = testConfiguration(server, token: nil)
            configuration.logLevel = .info
            let app = try await buildApplication(configuration: configuration, logger: lines.logger)
            try await app.test(.router) { client async throws in
                let redis = RedisClient(configuration: server.configuration())
                defer { Task { await redis.close() } }
                let h = Harness(client: client, redis: redis, token: nil)
                #expect(try await h.request(.get, "/api/v1/whoami").json == ["group": "cfg", "name": "anonymous", "role": "admin"])
                #expect(try await h.request(.put, "/api/v1/upstreams/u1", #"{"endpoints":[{"address":"127.0.0.1:9"}]}"#).status == 201)
            }
        }
        #expect(lines.all.contains { $0.contains(#""audit.principal":"anonymous""#) })
    }
}
