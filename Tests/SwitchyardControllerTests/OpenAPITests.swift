import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import SwitchyardCore
import SwitchyardRedis
import SwitchyardTestSupport
import Testing

@testable import SwitchyardController

/// docs/openapi.yaml against the router the controller really builds: every route the router
/// registers is documented, every documented operation is routed (it reaches the token check,
/// so it is no 404/405), the binary serves the same bytes as the file, with a read token.
@Suite("OpenAPI document", .serialized)
struct OpenAPITests {
    /// Registered routes that are not the admin API: the status page's static files (/ui:
    /// HTML, script, style sheet, icon; docs/ui.md). Everything else must be documented.
    static let undocumentedPrefixes = ["/ui"]

    static var fileText: String {
        get throws { try String(contentsOf: repositoryRoot().appendingPathComponent("docs/openapi.yaml"), encoding: .utf8) }
    }

    static var document: JSONValue {
        get throws { try YAMLDocuments.single(try fileText) }
    }

    /// `GET /api/v1/routes/{id}`, ... as the document names them.
    static func documentedOperations(_ document: JSONValue) -> Set<String> {
        guard case .object(let paths)? = document["paths"] else { return [] }
        var out = Set<String>()
        for (path, item) in paths {
            guard case .object(let members) = item else { continue }
            for (key, _) in members where ["get", "put", "post", "delete", "patch", "head", "options"].contains(key) {
                out.insert("\(key.uppercased()) \(path)")
            }
        }
        return out
    }

    /// The routes of the router `buildApplication` serves (built the same way; building it
    /// does not connect to Redis).
    static func registeredOperations() -> Set<String> {
        let logger = Logger(label: "test")
        let redis = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: 1))
        let store = ConfigStore(redis: redis, library: "", logger: logger)
        let registry = try? TokenRegistry(adminToken: "t", file: nil)
        let router = buildRouter(store: store, configuration: Configuration(adminToken: "t"), registry: registry, logger: logger)
        return Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" })
    }

    static func isDocumentable(_ operation: String) -> Bool {
        let path = operation.split(separator: " ", maxSplits: 1).last.map(String.init) ?? ""
        return !undocumentedPrefixes.contains { path == $0 || path.hasPrefix($0 + "/") }
    }

    @Test func theBinaryServesTheFileByteForByte() throws {
        #expect(OpenAPIDocument.yaml == (try Self.fileText), "run `make openapi` after editing docs/openapi.yaml")
    }

    @Test func everyRegisteredRouteIsDocumentedAndEveryDocumentedOneIsRegistered() throws {
        let registered = Self.registeredOperations().filter(Self.isDocumentable)
        let documented = Self.documentedOperations(try Self.document)
        // the router holds what the test expects it to (so an empty list cannot pass)
        #expect(registered.contains("GET /api/v1/routes/{id}"))
        #expect(registered.contains("POST /api/v1/apply"))
        #expect(registered.contains("GET /api/v1/openapi.yaml"))
        #expect(registered.contains("GET /healthz"))
        #expect(registered.allSatisfy { $0.contains(" /api/v1/") || $0 == "GET /healthz" }, "\(registered.sorted())")
        let undocumented = registered.subtracting(documented).sorted()
        let unrouted = documented.subtracting(registered).sorted()
        #expect(undocumented.isEmpty, "registered, not in docs/openapi.yaml: \(undocumented)")
        #expect(unrouted.isEmpty, "in docs/openapi.yaml, not registered: \(unrouted)")
    }

    /// Per operation: /api/v1 ones are bearer-protected (document-wide security, not turned
    /// off) and document 401 and 403; every one documents a JSON or YAML 200/201 and names
    /// an operationId once.
    @Test func everyOperationDocumentsItsAnswersAndItsSecurity() throws {
        let document = try Self.document
        #expect(document["components"]?["securitySchemes"]?["bearer"]?["scheme"] == "bearer")
        #expect(document["security"]?[0]?["bearer"] != nil)
        guard case .object(let paths)? = document["paths"] else {
            Issue.record("no paths")
            return
        }
        var ids = Set<String>()
        for (path, item) in paths {
            guard case .object(let members) = item else { continue }
            for (method, operation) in members where method != "parameters" {
                let name = "\(method.uppercased()) \(path)"
                if case .string(let id)? = operation["operationId"] {
                    #expect(ids.insert(id).inserted, "\(name): operationId \(id) twice")
                } else {
                    Issue.record("\(name): no operationId")
                }
                let responses = operation["responses"]
                #expect(responses?["200"] != nil || responses?["201"] != nil, "\(name): no 200/201")
                if path.hasPrefix("/api/v1/") {
                    #expect(operation["security"] == nil, "\(name): /api/v1 needs the token")
                    #expect(responses?["401"] != nil && responses?["403"] != nil, "\(name): 401 and 403 undocumented")
                } else {
                    #expect(operation["security"] == .array([]), "\(name): outside /api/v1, no token")
                }
                if method != "get" {
                    #expect(responses?["422"] != nil || path.hasSuffix("/reload"), "\(name): 422 undocumented")
                }
            }
        }
    }

    /// Every documented operation reaches a handler: without a token, /api/v1 ones answer
    /// 401 (the access middleware runs only on routes the router matched; an unrouted path
    /// answers 404, a wrong method 405) and /healthz answers 200.
    @Test func everyDocumentedOperationIsAnswered() async throws {
        let operations = Self.documentedOperations(try Self.document)
        #expect(operations.count >= 25)
        try await withController { h async throws in
            // an unrouted path and an unrouted method are told apart from routed ones
            #expect(try await h.request(.get, "/api/v1/no-such-thing", token: .some(nil)).status == 404)
            #expect(try await h.request(.patch, "/api/v1/routes/x", token: .some(nil)).status != 401)
            for operation in operations.sorted() {
                let parts = operation.split(separator: " ", maxSplits: 1).map(String.init)
                let path = parts[1].replacingOccurrences(of: "{name}", with: "n").replacingOccurrences(of: "{id}", with: "x")
                    .replacingOccurrences(of: "{address}", with: "127.0.0.1:1").replacingOccurrences(of: "{version}", with: "1")
                let answer = try await h.request(HTTPRequest.Method(parts[0])!, path, parts[0] == "GET" ? nil : "{}", token: .some(nil))
                #expect(answer.status == (path.hasPrefix("/api/v1/") ? 401 : 200), "\(operation)")
            }
        }
    }

    @Test func theDocumentIsServedToReadTokens() async throws {
        let read = AccessTokens.fileLine(name: "reader", role: .read, token: AccessAPITests.tokens[.read]!)
        try await AccessAPITests.withTokens(file: "tokens:\n\(read)\n") { h, _, _ async throws in
            #expect(try await h.request(.get, "/api/v1/openapi.yaml", token: .some(nil)).status == 401)
            let answer = try await h.request(.get, "/api/v1/openapi.yaml", token: AccessAPITests.tokens[.read]!)
            #expect(answer.status == 200)
            #expect(answer.headers[.contentType] == "application/yaml; charset=utf-8")
            #expect(answer.json == .string(try Self.fileText))
        }
    }
}
