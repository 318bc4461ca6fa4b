// A small Kubernetes API client on AsyncHTTPClient: get, list (paged), create, update, merge
// patch (also on /status), delete and watch, typed through KubeObject models. JSON only.

import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

public struct ListOptions: Sendable {
    public var labelSelector: String?
    public var fieldSelector: String?
    public var limit: Int?
    public var `continue`: String?
    public var resourceVersion: String?
    public var resourceVersionMatch: String?
    public init(
        labelSelector: String? = nil, fieldSelector: String? = nil, limit: Int? = nil,
        continue: String? = nil, resourceVersion: String? = nil, resourceVersionMatch: String? = nil
    ) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.limit = limit
        self.continue = `continue`
        self.resourceVersion = resourceVersion
        self.resourceVersionMatch = resourceVersionMatch
    }
    var query: [(String, String)] {
        var q: [(String, String)] = []
        if let labelSelector { q.append(("labelSelector", labelSelector)) }
        if let fieldSelector { q.append(("fieldSelector", fieldSelector)) }
        if let limit { q.append(("limit", String(limit))) }
        if let c = self.continue { q.append(("continue", c)) }
        if let resourceVersion { q.append(("resourceVersion", resourceVersion)) }
        if let resourceVersionMatch { q.append(("resourceVersionMatch", resourceVersionMatch)) }
        return q
    }
}

/// One page of a list. Items that do not decode as the model are reported in `failures`
/// (with their key when the metadata decodes) instead of failing the page.
public struct ListPage<Object: KubeObject>: Sendable {
    public var items: [Object]
    public var failures: [DecodeFailure]
    public var resourceVersion: String
    public var `continue`: String?
}

public struct DecodeFailure: Sendable, Hashable, CustomStringConvertible {
    public var key: ObjectKey?
    public var resourceVersion: String?
    public var message: String
    public var description: String { "\(key?.description ?? "an object"): \(message)" }
}

public final class KubeClient: Sendable {
    public let connection: KubeConnection
    let http: HTTPClient
    let logger: Logger
    private let token: TokenSource
    public let requestTimeout: Duration

    /// `connectTimeout` bounds connection set-up, TLS included: a refused certificate surfaces
    /// after it (AsyncHTTPClient retries the connection until then).
    public init(
        connection: KubeConnection, logger: Logger = Logger(label: "switchyard.kube"),
        requestTimeout: Duration = .seconds(30), connectTimeout: Duration = .seconds(10)
    ) throws {
        self.connection = connection
        self.logger = logger
        self.requestTimeout = requestTimeout
        self.token = TokenSource(credentials: connection.credentials)
        var tls = TLSConfiguration.makeClientConfiguration()
        if connection.insecureSkipTLSVerify {
            tls.certificateVerification = .none
        } else if let ca = connection.certificateAuthority {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
        }
        if let cert = connection.credentials.clientCertificate, let key = connection.credentials.clientKey {
            tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(cert).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
        }
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow,
            timeout: .init(connect: .milliseconds(Int64(connectTimeout / .milliseconds(1)))))
        configuration.httpVersion = .http1Only
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// Must be called (or use `withKubeClient`) before the client is released.
    public func shutdown() async throws { try await http.shutdown() }

    // MARK: raw requests

    public struct Response: Sendable {
        public var code: Int
        public var body: Data
    }

    /// One request; an HTTP error becomes KubeError.api with the server's Status.
    public func request(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: Data? = nil,
        contentType: String = "application/json"
    ) async throws -> Response {
        let label = "\(method.rawValue) \(path)"
        let request = try makeRequest(method, path, query: query, body: body, contentType: contentType)
        let response: HTTPClientResponse
        let data: Data
        do {
            response = try await http.execute(request, timeout: .nanoseconds(Int64(requestTimeout.components.seconds) * 1_000_000_000))
            let buffer = try await response.body.collect(upTo: 512 << 20)
            data = Data(buffer.readableBytesView)
        } catch let error as CancellationError {
            throw error
        } catch {
            throw KubeError.transport(request: label, underlying: String(describing: error))
        }
        let code = Int(response.status.code)
        guard code < 400 else { throw apiError(code, data, label) }
        return Response(code: code, body: data)
    }

    func makeRequest(
        _ method: HTTPMethod, _ path: String, query: [(String, String)], body: Data?,
        contentType: String, accept: String = "application/json"
    ) throws -> HTTPClientRequest {
        var url = connection.server + path
        if !query.isEmpty {
            url += "?" + query.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
        }
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Accept", value: accept)
        request.headers.add(name: "User-Agent", value: "switchyard-kube")
        if let bearer = try token.current() {
            request.headers.add(name: "Authorization", value: "Bearer \(bearer)")
        }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        return request
    }

    func apiError(_ code: Int, _ data: Data, _ label: String) -> KubeError {
        let status =
            (try? JSONDecoder().decode(KubeStatus.self, from: data))
            ?? KubeStatus(status: "Failure", message: String(decoding: data.prefix(200), as: UTF8.self), code: code)
        return .api(code: code, status: status, request: label)
    }

    // MARK: typed verbs

    public func get<T: KubeObject>(_ type: T.Type, namespace: String?, name: String, resource: ResourceType = T.resource) async throws -> T
    {
        let path = resource.objectPath(namespace: namespace, name: name)
        return try decode(T.self, try await request(.GET, path).body, "GET \(path)")
    }

    /// One page.
    public func list<T: KubeObject>(
        _ type: T.Type, namespace: String? = nil, options: ListOptions = ListOptions(),
        resource: ResourceType = T.resource
    ) async throws -> ListPage<T> {
        let path = resource.collectionPath(namespace: namespace)
        let data = try await request(.GET, path, query: options.query).body
        let list = try decode(LenientList<T>.self, data, "GET \(path)")
        var page = ListPage<T>(
            items: [], failures: [], resourceVersion: list.metadata?.resourceVersion ?? "",
            continue: list.metadata?.continue.flatMap { $0.isEmpty ? nil : $0 })
        for item in list.items ?? [] {
            switch item.result {
            case .success(let object): page.items.append(object)
            case .failure(let error): page.failures.append(item.failure(error))
            }
        }
        return page
    }

    /// Every page (`pageSize` items a request), at one consistent resourceVersion. When a
    /// continue token expires (410) the list starts over once without paging.
    public func listAll<T: KubeObject>(
        _ type: T.Type, namespace: String? = nil, labelSelector: String? = nil,
        fieldSelector: String? = nil, pageSize: Int? = 500,
        resource: ResourceType = T.resource
    ) async throws -> ListPage<T> {
        var options = ListOptions(labelSelector: labelSelector, fieldSelector: fieldSelector, limit: pageSize)
        var all = ListPage<T>(items: [], failures: [], resourceVersion: "", continue: nil)
        var restarted = false
        while true {
            let page: ListPage<T>
            do {
                page = try await list(T.self, namespace: namespace, options: options, resource: resource)
            } catch let error as KubeError where error.isGone && options.continue != nil && !restarted {
                restarted = true
                options = ListOptions(labelSelector: labelSelector, fieldSelector: fieldSelector)
                all = ListPage(items: [], failures: [], resourceVersion: "", continue: nil)
                continue
            }
            all.items += page.items
            all.failures += page.failures
            all.resourceVersion = page.resourceVersion
            guard let next = page.continue else { return all }
            options.continue = next
        }
    }

    public func create<T: KubeObject>(_ object: T, namespace: String? = nil, resource: ResourceType = T.resource) async throws -> T {
        let ns = namespace ?? object.metadata.namespace
        let path = resource.collectionPath(namespace: resource.namespaced ? (ns ?? connection.namespace) : nil)
        let body = try encodeObject(object, resource)
        return try decode(T.self, try await request(.POST, path, body: body).body, "POST \(path)")
    }

    /// PUT: optimistic concurrency through metadata.resourceVersion (409 Conflict when stale).
    /// The model is the whole body: only for kinds whose model has every field (Lease).
    public func update<T: KubeObject>(_ object: T, subresource: String? = nil, resource: ResourceType = T.resource) async throws -> T {
        let path = resource.objectPath(namespace: object.metadata.namespace, name: object.metadata.name ?? "", subresource: subresource)
        let body = try encodeObject(object, resource)
        return try decode(T.self, try await request(.PUT, path, body: body).body, "PUT \(path)")
    }

    /// A JSON merge patch (RFC 7386), e.g. `["status": ...]` with subresource "status".
    /// A metadata.resourceVersion in the patch makes it conditional (409 when stale).
    public func patch<T: KubeObject>(
        _ type: T.Type, namespace: String?, name: String, merge patch: JSONValue,
        subresource: String? = nil, resource: ResourceType = T.resource
    ) async throws -> T {
        let path = resource.objectPath(namespace: namespace, name: name, subresource: subresource)
        let data = try await request(.PATCH, path, body: try patch.jsonData(), contentType: "application/merge-patch+json").body
        return try decode(T.self, data, "PATCH \(path)")
    }

    public func delete(_ resource: ResourceType, namespace: String?, name: String, preconditionUID: String? = nil) async throws {
        let path = resource.objectPath(namespace: namespace, name: name)
        var options: JSONValue = ["apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"]
        if let preconditionUID { options = options.setting("preconditions", to: ["uid": .string(preconditionUID)]) }
        _ = try await request(.DELETE, path, body: try options.jsonData())
    }

    // MARK: encoding

    func encodeObject<T: KubeObject>(_ object: T, _ resource: ResourceType) throws -> Data {
        var json = try JSONValue(encoding: object)
        json = json.setting("apiVersion", to: .string(resource.apiVersion)).setting("kind", to: .string(resource.kind))
        return try json.jsonData()
    }

    func decode<T: Decodable>(_ type: T.Type, _ data: Data, _ label: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw KubeError.decoding(request: label, underlying: String(describing: error))
        }
    }
}

/// Starts a client, runs body, shuts the client down whatever happens.
public func withKubeClient<R: Sendable>(
    _ connection: KubeConnection, logger: Logger = Logger(label: "switchyard.kube"),
    connectTimeout: Duration = .seconds(10),
    _ body: (KubeClient) async throws -> R
) async throws -> R {
    let client = try KubeClient(connection: connection, logger: logger, connectTimeout: connectTimeout)
    do {
        let result = try await body(client)
        try await client.shutdown()
        return result
    } catch {
        try? await client.shutdown()
        throw error
    }
}

private func escape(_ s: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
}

/// The bearer token: inline, or read from a file and re-read every minute.
final class TokenSource: Sendable {
    private let credentials: Credentials
    private let cache = Mutex<(token: String, read: ContinuousClock.Instant)?>(nil)
    init(credentials: Credentials) { self.credentials = credentials }

    func current() throws -> String? {
        if let token = credentials.token { return token }
        guard let file = credentials.tokenFile else { return nil }
        let now = ContinuousClock.now
        if let cached = cache.withLock({ $0 }), now - cached.read < .seconds(60) { return cached.token }
        guard let data = FileManager.default.contents(atPath: file),
            let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines)
        else {
            throw KubeConfigError(file: file, field: "", "cannot read the token file")
        }
        cache.withLock { $0 = (text, now) }
        return text
    }
}

/// Decodes T, or keeps the error and whatever metadata decodes.
struct Lenient<T: Decodable & Sendable>: Decodable, Sendable {
    var result: Result<T, any Error>
    var metadata: ObjectMeta?
    /// Coding-path depth of the object itself: error paths are reported from the object down.
    var depth = 0
    enum Keys: String, CodingKey { case metadata }
    init(from decoder: any Decoder) throws {
        depth = decoder.codingPath.count
        metadata = try? decoder.container(keyedBy: Keys.self).decodeIfPresent(ObjectMeta.self, forKey: .metadata)
        do { result = .success(try T(from: decoder)) } catch { result = .failure(error) }
    }
    func failure(_ error: any Error) -> DecodeFailure {
        DecodeFailure(
            key: metadata.map { $0.key }, resourceVersion: metadata?.resourceVersion, message: describeDecoding(error, dropping: depth))
    }
}

struct LenientList<T: Decodable & Sendable>: Decodable, Sendable {
    var metadata: ListMeta?
    var items: [Lenient<T>]?
}

func describeDecoding(_ error: any Error, dropping depth: Int = 0) -> String {
    guard let error = error as? DecodingError else { return String(describing: error) }
    let path: [any CodingKey]
    let what: String
    switch error {
    case .typeMismatch(let t, let c): path = c.codingPath; what = "expected \(t)"
    case .valueNotFound(let t, let c): path = c.codingPath; what = "missing \(t)"
    case .keyNotFound(let k, let c): path = c.codingPath + [k]; what = "required"
    case .dataCorrupted(let c): path = c.codingPath; what = c.debugDescription
    @unknown default: return String(describing: error)
    }
    let field = path.dropFirst(depth).map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    return "\(field.hasPrefix(".") ? String(field.dropFirst()) : field): \(what)"
}
