// A small client of the controller's admin API (JSON over HTTP, bearer token), for
// `switchyard apply`.

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SwitchyardCore

public struct AdminAPIError: Error, CustomStringConvertible {
    public var status: Int
    public var body: JSONValue?
    public var request: String
    public var transport: String?

    public var description: String {
        if let transport { return "\(request): \(transport)" }
        var text = "\(request): HTTP \(status)"
        if case .object? = body?["error"], let error = body?["error"] {
            if case .string(let message)? = error["message"] { text += ": \(message)" }
            if case .array(let details)? = error["details"] {
                for detail in details {
                    let field = detail["field"].flatMap { if case .string(let s) = $0 { return s } else { return nil } } ?? ""
                    let message = detail["message"].flatMap { if case .string(let s) = $0 { return s } else { return nil } } ?? ""
                    text += "\n  \(field): \(message)"
                }
            }
            if case .string(let owner)? = error["owner"] { text += " (owned by \(owner))" }
        }
        return text
    }
}

public final class AdminAPIClient: Sendable {
    public let baseURL: String
    let token: String?
    let http: HTTPClient
    let timeout: TimeAmount

    public init(baseURL: String, token: String?, timeout: Duration = .seconds(30)) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.token = token
        self.timeout = .seconds(Int64(timeout.components.seconds))
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5)))
        configuration.httpVersion = .http1Only
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    public func shutdown() async { try? await http.shutdown() }

    /// One request; answers the status and the JSON body. 4xx/5xx throw AdminAPIError.
    @discardableResult
    public func send(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil, headers: [(String, String)] = []) async throws -> (
        status: Int, body: JSONValue
    ) {
        let label = "\(method.rawValue) \(path)"
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body.canonical))
        }
        let status: Int
        let bytes: [UInt8]
        do {
            let response = try await http.execute(request, timeout: timeout)
            status = Int(response.status.code)
            let buffer = try await response.body.collect(upTo: 256 << 20)
            bytes = Array(buffer.readableBytesView)
        } catch {
            throw AdminAPIError(status: 0, body: nil, request: label, transport: String(describing: error))
        }
        let json = (try? JSONValue.parse(bytes)) ?? .null
        guard status < 400 else { throw AdminAPIError(status: status, body: json, request: label) }
        return (status, json)
    }
}
