import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import SwitchyardController
import SwitchyardCore
import SwitchyardRedis
import SwitchyardTestSupport
import Testing

/// A controller built by `buildApplication` against a temporary Redis, driven in-process.
struct Harness: Sendable {
    let client: any TestClientProtocol
    let redis: RedisClient
    let token: String?

    struct Answer: Sendable {
        var status: Int
        var json: JSONValue
        var headers: HTTPFields

        var errorCode: String? { if case .string(let s)? = json["error"]?["code"] { return s } else { return nil } }
        var errorFields: [String] {
            guard case .array(let details)? = json["error"]?["details"] else { return [] }
            return details.compactMap { if case .string(let f)? = $0["field"] { return f } else { return nil } }
        }
        var version: Int64? { if case .integer(let v)? = json["version"] { return v } else { return nil } }
    }

    @discardableResult
    func request(_ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil, token: String?? = .none) async throws -> Answer {
        var headers = HTTPFields()
        let bearer = token ?? self.token
        if let bearer { headers[.authorization] = "Bearer \(bearer)" }
        if body != nil { headers[.contentType] = "application/json" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            let text = String(buffer: response.body)
            let json = (try? JSONValue.parse(text)) ?? .string(text)
            return Answer(status: Int(response.status.code), json: json, headers: response.headers)
        }
    }

    /// The configuration version straight from Redis.
    func storedVersion() async throws -> Int64 {
        try await redis.send("GET", KeySchema.default.version).integer ?? 0
    }

    /// Every key in the temporary Redis (tests only: production code never uses KEYS).
    func allKeys() async throws -> Set<String> {
        Set(try await redis.send("KEYS", "*").array?.compactMap(\.text) ?? [])
    }
}

/// The test's Redis and a configuration that points the controller at it.
func testConfiguration(_ server: TemporaryRedis, token: String?) -> Configuration {
    Configuration(
        redisPort: server.port, redisPassword: server.password, adminToken: token,
        requestTimeout: .seconds(10), redisTimeout: .seconds(2),
        functionsPath: repositoryRoot().appendingPathComponent("redis/switchyard.lua").path, logLevel: .warning)
}

func withController<T: Sendable>(
    token: String? = "test-token", password: String? = nil, configure: (inout Configuration) -> Void = { _ in },
    _ body: @Sendable @escaping (Harness) async throws -> T
) async throws -> T {
    try await withTemporaryRedis(password: password) { server async throws in
        var configuration = testConfiguration(server, token: token)
        configure(&configuration)
        let app = try await buildApplication(configuration: configuration)
        let redis = RedisClient(configuration: server.configuration())
        defer { Task { await redis.close() } }
        return try await app.test(.router) { client in
            try await body(Harness(client: client, redis: redis, token: token))
        }
    }
}

extension JSONValue {
    subscript(index: Int) -> JSONValue? {
        guard case .array(let items) = self, items.indices.contains(index) else { return nil }
        return items[index]
    }

    var count: Int {
        switch self {
        case .array(let items): return items.count
        case .object(let members): return members.count
        default: return 0
        }
    }
}
