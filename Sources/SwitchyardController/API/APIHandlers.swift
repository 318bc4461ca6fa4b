// Request helpers shared by the admin API's handler groups (AdminAPI, CertificatesAPI):
// store errors become HTTP errors here, at the outer edge, and bodies are read once, bounded.

import Hummingbird
import NIOCore
import SwitchyardCore

protocol APIHandlers: Sendable {
    associatedtype Context: RequestContext
    /// Largest request body accepted (413 above it).
    var maxBodySize: Int { get }
}

extension APIHandlers {
    /// Runs a store call, mapping its errors to HTTP.
    func call<T>(_ body: () async throws(StoreError) -> T) async throws(APIError) -> T {
        do { return try await body() } catch { throw APIError.from(error) }
    }

    /// A URL path parameter, percent-decoded (`%5B%3A%3A1%5D%3A8080` is `[::1]:8080`).
    func parameter(_ name: String, _ context: Context) throws(APIError) -> String {
        guard let raw = context.parameters.get(name), let decoded = percentDecoded(raw) else {
            throw APIError(.badRequest, "bad_request", "malformed \(name) in the URL")
        }
        return decoded
    }

    func requiredBody(_ request: Request) async throws -> JSONValue {
        guard let body = try await optionalBody(request) else {
            throw APIError(.badRequest, "bad_request", "a JSON body is required")
        }
        return body
    }

    /// The parsed body, nil when empty. 400 when it is not JSON or not a JSON object.
    func optionalBody(_ request: Request) async throws -> JSONValue? {
        try await sizedBody(request).body
    }

    /// The parsed body (nil when empty) and its size in bytes.
    func sizedBody(_ request: Request) async throws -> (body: JSONValue?, size: Int) {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBodySize)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "too_large", "request body is larger than \(maxBodySize) bytes")
        }
        let bytes = Array(buffer.readableBytesView)
        return (try Self.parseObject(bytes), bytes.count)
    }

    static func parseObject(_ bytes: [UInt8]) throws -> JSONValue? {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return nil }
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes)
        } catch {
            throw APIError.badJSON(error)
        }
        guard case .object = value else {
            throw APIError(.badRequest, "bad_request", "request body must be a JSON object, not \(value.typeName)")
        }
        return value
    }
}

/// Percent-decoding of one URL path segment (`%5B%3A%3A1%5D%3A8080` -> `[::1]:8080`).
/// nil for malformed escapes or invalid UTF-8. `+` stays `+` (that is a query-string rule).
func percentDecoded(_ text: some StringProtocol) -> String? {
    let bytes = Array(text.utf8)
    guard bytes.contains(UInt8(ascii: "%")) else { return String(text) }
    var out: [UInt8] = []
    var i = 0
    func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }
    while i < bytes.count {
        if bytes[i] == UInt8(ascii: "%") {
            guard i + 2 < bytes.count, let hi = hex(bytes[i + 1]), let lo = hex(bytes[i + 2]) else { return nil }
            out.append(hi << 4 | lo)
            i += 3
        } else {
            out.append(bytes[i])
            i += 1
        }
    }
    return String(validating: out, as: UTF8.self)
}
