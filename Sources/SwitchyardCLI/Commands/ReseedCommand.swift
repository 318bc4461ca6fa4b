// `switchyard reseed`: the operator's explicit step after Redis lost its data (or went back
// to an older state): a thin wrapper of POST /api/v1/reseed (redis/README.md, "When Redis
// lost its data"). Without --confirm it only shows what Redis and the edges hold and the
// command to run; with it, it re-seeds.

import ArgumentParser
import SwitchyardCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct ReseedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reseed",
        abstract: "Make what Redis holds now the configuration every edge follows (after Redis lost its data).",
        discussion: """
            Edges keep serving their configuration when Redis lost its data or went back to an older \
            state, and the controller refuses writes meanwhile. Restore Redis's data if you can; \
            otherwise re-seed: Redis's content (restored or empty) becomes the configuration under a \
            new epoch, and every edge reloads it. Without --confirm this shows the state and the \
            command to run.
            """
    )

    @Option(help: "The controller's admin API (http://host:port).")
    var controller: String = "http://127.0.0.1:9180"

    @Option(help: "Redis's epoch now (or \"none\" when it has none), as the status shows it.")
    var confirm: String?

    @Option(help: "An admin token of the admin API (prefer $SWITCHYARD_TOKEN or $SWITCHYARD_ADMIN_TOKEN: flags are visible in ps).")
    var adminToken: String?

    func run() throws {
        let api = try AdminEndpoint(controller)
        // an admin token: the flag, then SWITCHYARD_TOKEN (the CLI client's), then SWITCHYARD_ADMIN_TOKEN
        let variables: [String] = ["SWITCHYARD_TOKEN", "SWITCHYARD_ADMIN_TOKEN"]
        let fromEnvironment: [String?] = variables.map { name in getenv(name).map { String(cString: $0) } }
        let token: String? = ([adminToken] + fromEnvironment).compactMap { $0 }.first { !$0.isEmpty }
        guard let confirm else {
            let (status, body) = try api.request("GET", "/api/v1/status", token: token)
            guard status == 200, let json = try? JSONValue.parse(body) else {
                throw ValidationError("GET /api/v1/status answered \(status): \(body)")
            }
            let epoch: String = {
                if case .string(let e)? = json["epoch"] { return e }
                return "none"
            }()
            var version = "?"
            if case .integer(let v)? = json["version"] { version = String(v) }
            print("Redis holds version \(version) of epoch \(epoch).")
            if case .array(let problems)? = json["problems"] {
                for case .string(let problem) in problems { print("  \(problem)") }
            }
            print("Re-seeding makes what Redis holds now the configuration of every edge. If that is what you want:")
            print("  switchyard reseed --controller \(controller) --confirm \(epoch)")
            throw ExitCode(1)
        }
        let body = String(decoding: JSONValue.object([("confirm", .string(confirm))]).canonicalBytes, as: UTF8.self)
        let (status, answer) = try api.request("POST", "/api/v1/reseed", body: body, token: token)
        print(answer)
        if status != 200 { throw ExitCode(1) }
    }
}

/// The admin API at http://host:port: one request per connection, HTTP/1.1, no TLS (the
/// admin API serves plain HTTP; put a proxy in front of it for anything else).
struct AdminEndpoint {
    var host: String
    var port: Int

    init(_ url: String) throws {
        guard url.hasPrefix("http://") else { throw ValidationError("--controller must be http://host:port, not \(url)") }
        var rest = url.dropFirst("http://".count)
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        do {
            (host, port) = try HostPort.parse(String(rest), defaultHost: "127.0.0.1")
        } catch {
            throw ValidationError("--controller \(error)")
        }
    }

    /// Sends one request and reads the whole answer: (status, body).
    func request(_ method: String, _ path: String, body: String? = nil, token: String?) throws -> (Int, String) {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw ValidationError("cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { throw ValidationError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            throw ValidationError("cannot connect to \(host):\(port): \(String(cString: strerror(errno)))")
        }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\nAccept: application/json\r\n"
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        let payload = Array((body ?? "").utf8)
        if body != nil { head += "Content-Type: application/json\r\nContent-Length: \(payload.count)\r\n" }
        let bytes = Array((head + "\r\n").utf8) + payload
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw ValidationError("send: \(String(cString: strerror(errno)))") }
            sent += n
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while answer.count < 16 << 20 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            answer += buffer[0..<n]
        }
        let text = String(decoding: answer, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n"), let statusLine = text.split(separator: "\r\n").first,
            let status = statusLine.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else {
            throw ValidationError("no HTTP answer from \(host):\(port)")
        }
        var content = String(text[split.upperBound...])
        if text[..<split.lowerBound].lowercased().contains("transfer-encoding: chunked") { content = Self.unchunked(content) }
        while let last = content.last, last.isWhitespace { content.removeLast() }
        return (status, content)
    }

    /// The body of a chunked answer.
    static func unchunked(_ text: String) -> String {
        var out = ""
        var rest = Substring(text)
        while let lineEnd = rest.range(of: "\r\n"), let size = Int(rest[..<lineEnd.lowerBound], radix: 16), size > 0 {
            let start = lineEnd.upperBound
            let bytes = Array(rest[start...].utf8)
            out += String(decoding: bytes.prefix(size), as: UTF8.self)
            rest = Substring(String(decoding: bytes.dropFirst(size + 2), as: UTF8.self))
        }
        return out
    }
}
