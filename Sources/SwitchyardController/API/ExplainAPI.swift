// GET /api/v1/explain: which route an edge would choose for a request, and why.
//
//   GET /explain?url=http://bbs.test.com/api/x&method=GET&header=X-Canary:1[&header=...]
//               [&client=10.0.0.1][&edge=<edge id>]
//
// The answer is the edges' own, never a second implementation of their router: the
// controller checks the arguments (422 naming the field), picks a live edge from the
// registry (`switchyard:{cfg}:edges` and the `edge:<id>` hashes: live in-sync edges first,
// late ones last, or the one `edge` names), asks its `/_switchyard/explain` (on its `metrics_listen` address,
// else its `listen` address; wildcard addresses become loopback) and answers the edge's JSON
// with `answered_by` added (which edge, at which version, in sync or not). When no edge
// answers: 503 naming each edge tried and why. The contract with the edge:
// lua/README.md and the edge's explain handler.

import AsyncHTTPClient
import Hummingbird
import Logging
import NIOCore
import SwitchyardCore

struct ExplainAPI<Context: RequestContext>: APIHandlers {
    let store: ConfigStore
    let maxBodySize: Int
    let logger: Logger
    /// How long one edge may take to answer.
    var edgeTimeout: Duration = .seconds(3)
    /// How many edges are asked before the answer is 503.
    var maxEdgesTried = 3
    /// Largest explain answer read from an edge.
    static var maxAnswerBytes: Int { 4 << 20 }

    func addRoutes(to group: RouterGroup<Context>) {
        group.get("explain", use: explain)
    }

    /// The arguments, checked.
    struct Arguments: Sendable, Equatable {
        var url: String
        var method: String = "GET"
        var headers: [String] = []
        var client: String?
        var edge: String?

        /// The query string for the edge: url, method, each header, client (percent-encoded).
        var edgeQuery: String {
            var pairs = [("url", url), ("method", method)] + headers.map { ("header", $0) }
            if let client { pairs.append(("client", client)) }
            return pairs.map { "\($0.0)=\(ExplainAPI.percentEncoded($0.1))" }.joined(separator: "&")
        }
    }

    static var maxURLBytes: Int { 8192 }
    static var maxHeaders: Int { 64 }
    static var maxHeaderBytes: Int { 8192 }

    @Sendable func explain(_ request: Request, context: Context) async throws -> Response {
        let arguments = try Self.arguments(request.uri.queryParameters.map { (String($0.key), String($0.value)) })
        let (state, heartbeats) = try await call { () throws(StoreError) in try await store.heartbeats() }
        let verdicts = Convergence.evaluate(
            state: state, edges: heartbeats, now: ConfigStore.nowMilliseconds(), target: nil, keys: store.keys)
        let targets = try Self.targets(heartbeats, verdicts, named: arguments.edge, limit: maxEdgesTried)
        var tried: [JSONValue] = []
        for target in targets {
            switch await ask(target, arguments) {
            case .answer(let answer):
                return jsonResponse(Self.withAnsweredBy(answer, target, redisVersion: state.version, tried: tried))
            case .refused(let field, let reason):
                throw APIError.invalid([FieldError(field: field, code: .invalid, message: "edge \(target.id): \(reason)")])
            case .failed(let reason):
                logger.warning("explain: edge did not answer", metadata: ["edge.id": "\(target.id)", "error": "\(reason)"])
                tried.append(["id": .string(target.id), "address": .string(target.address), "error": .string(reason)])
            }
        }
        let reasons = tried.compactMap { item -> String? in
            guard case .string(let id)? = item["id"], case .string(let why)? = item["error"] else { return nil }
            return "edge \(id): \(why)"
        }
        throw APIError(
            .serviceUnavailable, "no_edge", "no edge answered the explain request (\(reasons.joined(separator: "; ")))",
            extra: [("tried", .array(tried))])
    }

    // MARK: Arguments

    /// Checks the query: `url` (required), `method`, `header` (repeatable), `client`,
    /// `edge`; every problem is named with its field (422).
    static func arguments(_ query: [(String, String)]) throws(APIError) -> Arguments {
        var problems: [FieldError] = []
        var url: String?
        var arguments = Arguments(url: "")
        var seen = Set<String>()
        func once(_ key: String) -> Bool {
            if seen.insert(key).inserted { return true }
            problems.append(FieldError(field: key, code: .duplicate, message: "\(key) may be given once"))
            return false
        }
        for (key, value) in query {
            switch key {
            case "url":
                guard once(key) else { continue }
                if let problem = urlProblem(value) {
                    problems.append(FieldError(field: "url", code: .invalid, message: "url \(problem), not '\(clipped(value))'"))
                } else {
                    url = value
                }
            case "method":
                guard once(key) else { continue }
                if isToken(value, maxBytes: 32) {
                    arguments.method = value
                } else {
                    problems.append(
                        FieldError(
                            field: "method", code: .invalid,
                            message: "method must be an HTTP method token (GET, POST, ...), not '\(clipped(value))'"))
                }
            case "header":
                if let problem = headerProblem(value) {
                    problems.append(FieldError(field: "header", code: .invalid, message: "header \(problem), not '\(clipped(value))'"))
                } else {
                    arguments.headers.append(value)
                }
            case "client":
                guard once(key) else { continue }
                if case .success(let address) = CIDR.parse(value), address.isBareAddress {
                    arguments.client = value
                } else {
                    problems.append(
                        FieldError(
                            field: "client", code: .invalid, message: "client must be an IPv4 or IPv6 address, not '\(clipped(value))'"))
                }
            case "edge":
                guard once(key) else { continue }
                if isEdgeID(value) {
                    arguments.edge = value
                } else {
                    problems.append(
                        FieldError(
                            field: "edge", code: .invalid,
                            message: "edge must be an edge id (1-63 of A-Z a-z 0-9 . _ -), not '\(clipped(value))'"))
                }
            default:
                problems.append(
                    FieldError(
                        field: key, code: .unknownField, message: "unknown parameter '\(key)' (use url, method, header, client and edge)"))
            }
        }
        if arguments.headers.count > maxHeaders {
            problems.append(FieldError(field: "header", code: .invalid, message: "at most \(maxHeaders) headers"))
        }
        if url == nil, !seen.contains("url") {
            problems.append(
                FieldError(
                    field: "url", code: .required, message: "url is required: the request to explain, e.g. http://bbs.test.com/api/x"))
        }
        if !problems.isEmpty { throw APIError.invalid(problems) }
        arguments.url = url ?? ""
        return arguments
    }

    /// nil when `text` is an absolute http(s) URL the edge can route: a host name or IP
    /// address (no wildcard, no user information), an optional port, a path starting with
    /// `/` (or none), an optional query; no fragment, spaces or control characters.
    static func urlProblem(_ text: String) -> String? {
        let rule = "must be an absolute http:// or https:// URL such as http://bbs.test.com/api/x"
        if text.isEmpty { return rule }
        if text.utf8.count > maxURLBytes { return "must be at most \(maxURLBytes) bytes" }
        if text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) { return "must not contain spaces or control characters" }
        let lower = text.lowercased()
        let rest: Substring
        if lower.hasPrefix("http://") {
            rest = text.dropFirst(7)
        } else if lower.hasPrefix("https://") {
            rest = text.dropFirst(8)
        } else {
            return rule
        }
        if rest.contains("#") { return "must not have a fragment (#...): clients never send it" }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        var authority = String(rest[..<authorityEnd])
        if authority.isEmpty { return "needs a host: \(rule)" }
        if authority.contains("@") { return "must not carry user information (user@host)" }
        if rest[authorityEnd...].hasPrefix("?") { return "needs a path before the query (http://host/?q)" }
        // the edge drops a trailing dot of the host (bbs.test.com. is bbs.test.com)
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]"), authority[..<colon].hasSuffix(".") {
            authority.remove(at: authority.index(before: colon))
        } else if authority.hasSuffix(".") {
            authority.removeLast()
        }
        if let problem = HostNames.hostHeaderProblem(authority) { return "has a bad host: '\(authority)' \(problem)" }
        return nil
    }

    /// nil when `text` is `Name:value`: an HTTP field name, then a value without control
    /// characters (tabs allowed).
    static func headerProblem(_ text: String) -> String? {
        guard let colon = text.firstIndex(of: ":") else { return "must be Name:value (X-Canary:1)" }
        let name = String(text[..<colon])
        let value = text[text.index(after: colon)...]
        if !isToken(name, maxBytes: 256) { return "must be Name:value with an HTTP field name (letters, digits, -)" }
        if text.utf8.count > maxHeaderBytes { return "must be at most \(maxHeaderBytes) bytes" }
        if value.utf8.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) { return "value must not contain control characters" }
        return nil
    }

    /// An HTTP token (RFC 9110 tchar), 1 to `maxBytes` bytes.
    static func isToken(_ text: String, maxBytes: Int) -> Bool {
        let special: Set<UInt8> = Set("!#$%&'*+-.^_`|~".utf8)
        return (1...maxBytes).contains(text.utf8.count)
            && text.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || special.contains(b)
            }
    }

    /// An edge id as `switchyard edge --id` accepts it.
    static func isEdgeID(_ id: String) -> Bool {
        (1...63).contains(id.utf8.count)
            && id.utf8.allSatisfy { b in
                (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x5F || b == 0x2D
            }
    }

    /// At most 100 characters of a rejected value, for the error message.
    static func clipped(_ text: String) -> String { text.count > 100 ? String(text.prefix(100)) + "..." : text }

    /// RFC 3986 percent-encoding of a query value (unreserved characters stay).
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for b in text.utf8 {
            switch b {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D, 0x2E, 0x5F, 0x7E: out.unicodeScalars.append(UnicodeScalar(b))
            default:
                let hex = Array("0123456789ABCDEF")
                out += "%\(hex[Int(b >> 4)])\(hex[Int(b & 0x0F)])"
            }
        }
        return out
    }

    // MARK: Edges

    /// One edge to ask.
    struct Target: Sendable, Equatable {
        var id: String
        /// `host:port` of its explain handler.
        var address: String
        var appliedVersion: Int64?
        var inSync: Bool
        /// Its heartbeat is recent (`Convergence.liveMilliseconds`).
        var live: Bool = true
    }

    /// The address of an edge's explain handler from its registration: `metrics_listen`
    /// when set, else `listen` (`8080`, `127.0.0.1:8080`, `[::1]:8080`); a wildcard address
    /// becomes loopback (`0.0.0.0`, `*` -> `127.0.0.1`, `[::]` -> `[::1]`). nil when neither
    /// is usable.
    static func explainAddress(listen: String?, metricsListen: String?) -> String? {
        for candidate in [metricsListen, listen] {
            guard let text = candidate?.trimmingSpaces, !text.isEmpty, text != "off" else { continue }
            if let address = loopbackAddress(text) { return address }
        }
        return nil
    }

    static func loopbackAddress(_ text: String) -> String? {
        func port(_ digits: Substring) -> String? {
            guard !digits.isEmpty, digits.count <= 5, digits.allSatisfy(\.isASCII), let n = Int(digits), (1...65535).contains(n) else {
                return nil
            }
            return String(n)
        }
        if let p = port(Substring(text)) { return "127.0.0.1:\(p)" }
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            let host = String(text[text.index(after: text.startIndex)..<close])
            guard let p = port(text[text.index(close, offsetBy: 2)...]), (try? CIDR.parse(host).get())?.isIPv6 == true else { return nil }
            return host == "::" ? "[::1]:\(p)" : "[\(host)]:\(p)"
        }
        guard let colon = text.lastIndex(of: ":"), let p = port(text[text.index(after: colon)...]) else { return nil }
        let host = String(text[..<colon])
        if host == "0.0.0.0" || host == "*" { return "127.0.0.1:\(p)" }
        guard HostNames.hostHeaderProblem(host) == nil else { return nil }
        return "\(host):\(p)"
    }

    /// The edges to ask, in order: the named one, else the live edges that agree with
    /// Redis, the other live ones, then registered edges whose heartbeat is late (still
    /// within the registration's TTL: an edge under load may beat late and answer well); at
    /// most `limit`. 503 when none is registered (or the named one is not).
    static func targets(_ edges: [EdgeHeartbeat], _ verdicts: [EdgeVerdict], named: String?, limit: Int) throws(APIError) -> [Target] {
        var registered: [Target] = []
        var unaddressed: [String] = []
        for (edge, verdict) in zip(edges, verdicts) {
            guard let address = explainAddress(listen: edge.field("listen"), metricsListen: edge.field("metrics_listen")) else {
                unaddressed.append(edge.id)
                continue
            }
            registered.append(
                Target(id: edge.id, address: address, appliedVersion: edge.appliedVersion, inSync: verdict.inSync, live: verdict.live))
        }
        let names = registered.isEmpty ? "none" : registered.map(\.id).joined(separator: ", ")
        if let named {
            if let target = registered.first(where: { $0.id == named }) { return [target] }
            let why = unaddressed.contains(named) ? "registers no usable listen address" : "is not registered (no heartbeat)"
            throw APIError(.serviceUnavailable, "no_edge", "edge '\(named)' \(why) (registered edges: \(names))", field: "edge")
        }
        if registered.isEmpty {
            let more = unaddressed.isEmpty ? "" : " (\(unaddressed.joined(separator: ", ")) register no usable listen address)"
            throw APIError(
                .serviceUnavailable, "no_edge", "no edge to ask: explain asks an edge's router, and none is registered\(more)")
        }
        let ordered =
            registered.filter { $0.live && $0.inSync } + registered.filter { $0.live && !$0.inSync } + registered.filter { !$0.live }
        return Array(ordered.prefix(limit))
    }

    /// The client that asks edges: a refused connection fails at once (no retries until the
    /// deadline: the next edge is asked instead), no redirects. Lives as long as the process.
    static var client: HTTPClient { explainClient }

    enum EdgeAnswer: Sendable {
        case answer(JSONValue)
        /// The edge refused the arguments (400 naming a field).
        case refused(field: String, reason: String)
        case failed(String)
    }

    func ask(_ target: Target, _ arguments: Arguments) async -> EdgeAnswer {
        var request = HTTPClientRequest(url: "http://\(target.address)/_switchyard/explain?\(arguments.edgeQuery)")
        request.method = .GET
        request.headers.add(name: "Accept", value: "application/json")
        let status: UInt
        let bytes: [UInt8]
        do {
            let timeout = TimeAmount.milliseconds(Convergence.milliseconds(edgeTimeout))
            let response = try await Self.client.execute(request, timeout: timeout)
            status = response.status.code
            bytes = Array(try await response.body.collect(upTo: Self.maxAnswerBytes).readableBytesView)
        } catch {
            return .failed("\(error)")
        }
        return Self.interpret(status: status, bytes, edge: target.id)
    }

    /// What an edge's answer means: 200 with a JSON object naming the edge (`edge_id`) is
    /// the explanation (an edge without an explain handler may route the path to a backend,
    /// which must not pass for one); 400 with `{"error", "field"}` refuses the arguments;
    /// anything else is a failure.
    static func interpret(status: UInt, _ bytes: [UInt8], edge: String) -> EdgeAnswer {
        let json = try? JSONValue.parse(bytes)
        switch status {
        case 200:
            guard let json, case .object = json else { return .failed("answered 200 without a JSON object") }
            guard json["edge_id"] == .string(edge) else {
                return .failed("answered 200 but not with its explain (edge_id is not '\(edge)'): an edge without explain?")
            }
            return .answer(json)
        case 400:
            if case .string(let reason)? = json?["error"] {
                if case .string(let field)? = json?["field"] { return .refused(field: field, reason: reason) }
                return .refused(field: "url", reason: reason)
            }
            return .failed("answered 400: \(clipped(String(decoding: bytes, as: UTF8.self)))")
        case 403:
            return .failed(
                "answered 403: its main listener answers explain to loopback clients only; give the edge a --metrics-listen "
                    + "address the controller reaches")
        case 404:
            return .failed("answered 404: it has no explain handler (an edge older than explain?)")
        default:
            return .failed("answered \(status): \(clipped(String(decoding: bytes, as: UTF8.self)))")
        }
    }

    /// The edge's answer with `answered_by` (and `tried`, the edges that failed before).
    static func withAnsweredBy(_ answer: JSONValue, _ target: Target, redisVersion: Int64, tried: [JSONValue]) -> JSONValue {
        guard case .object(var members) = answer else { return answer }
        members.removeAll { $0.key == "answered_by" || $0.key == "tried" }
        members.append(
            (
                "answered_by",
                [
                    "id": .string(target.id), "address": .string(target.address),
                    "applied_version": target.appliedVersion.map { .integer($0) } ?? .null,
                    "redis_version": .integer(redisVersion), "in_sync": .bool(target.inSync), "live": .bool(target.live),
                ]
            ))
        if !tried.isEmpty { members.append(("tried", .array(tried))) }
        return .object(members)
    }
}

private let explainClient: HTTPClient = {
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool.retryConnectionEstablishment = false
    configuration.timeout = .init(connect: .seconds(1), read: .seconds(3))
    configuration.redirectConfiguration = .disallow
    return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
}()

extension String {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
