// Stream services (issue 23): a TCP (or UDP) listen port whose connections go to the endpoints
// of an existing upstream. Pure model, validation, encoding and the balancing choice; the
// engine that runs them is SwitchyardStream. A stream is a kind of configuration object
// (ObjectKind.stream) written by sy_apply like routes and upstreams: KeySchema.streams,
// KeySchema.stream(id), the one version, change stream, history and digest (docs/stream.md).

public enum StreamProtocol: String, Sendable, Hashable, CaseIterable {
    case tcp, udp
}

public enum StreamBalance: String, Sendable, Hashable, CaseIterable {
    case roundRobin = "round_robin"
    /// Fewest open connections on this engine (TCP only).
    case leastConn = "least_conn"
    /// The client's address picks the endpoint (same client, same endpoint while the set holds).
    case hash
}

public struct StreamService: Sendable, Hashable {
    public var id: String
    public var listen: Int
    public var proto: StreamProtocol
    /// Name of an upstream object (its endpoints, weights and health verdicts).
    public var upstream: String
    public var balance: StreamBalance
    public var connectTimeoutMs: Int
    public var idleTimeoutS: Int
    /// Send a PROXY protocol v1 line to the endpoint before the client's bytes (TCP only).
    public var proxyProtocol: Bool
    public var allow: [CIDR]
    public var deny: [CIDR]

    public init(
        id: String, listen: Int, proto: StreamProtocol = .tcp, upstream: String, balance: StreamBalance = .roundRobin,
        connectTimeoutMs: Int = StreamService.defaultConnectTimeoutMs, idleTimeoutS: Int = StreamService.defaultIdleTimeoutS,
        proxyProtocol: Bool = false, allow: [CIDR] = [], deny: [CIDR] = []
    ) {
        self.id = id
        self.listen = listen
        self.proto = proto
        self.upstream = upstream
        self.balance = balance
        self.connectTimeoutMs = connectTimeoutMs
        self.idleTimeoutS = idleTimeoutS
        self.proxyProtocol = proxyProtocol
        self.allow = allow
        self.deny = deny
    }

    public static let defaultConnectTimeoutMs = 5000
    public static let defaultIdleTimeoutS = 600
    public static let connectTimeoutRange = 1...60_000
    public static let idleTimeoutRange = 1...86_400
    public static let listenRange = 1...65535
    public static let fields: Set<String> = [
        "id", "listen", "protocol", "upstream", "balance", "connect_timeout_ms", "idle_timeout_s", "proxy_protocol",
        "allow", "deny", "version",
    ]

    /// The stored document (keys sorted; `version` is added by `sy_apply`).
    public var document: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("allow", .array(allow.map { .string($0.description) })),
            ("balance", .string(balance.rawValue)),
            ("connect_timeout_ms", .integer(Int64(connectTimeoutMs))),
            ("deny", .array(deny.map { .string($0.description) })),
            ("id", .string(id)),
            ("idle_timeout_s", .integer(Int64(idleTimeoutS))),
            ("listen", .integer(Int64(listen))),
            ("protocol", .string(proto.rawValue)),
        ]
        if proxyProtocol { members.append(("proxy_protocol", .bool(true))) }
        members.append(("upstream", .string(upstream)))
        return .object(members)
    }

    /// Whether a client address (4 or 16 bytes) may connect: a matching `deny` refuses; a
    /// non-empty `allow` admits only its ranges.
    public func admits(_ address: [UInt8]) -> Bool {
        if deny.contains(where: { $0.contains(address) }) { return false }
        return allow.isEmpty || allow.contains(where: { $0.contains(address) })
    }

    /// Validates a request body (or a stored document: `version` is accepted and ignored).
    /// `pathID` is the id from the URL; every problem names its field.
    public static func validate(_ json: JSONValue, id pathID: String) -> Result<StreamService, ValidationFailure> {
        var problems: [FieldError] = []
        func bad(_ field: String, _ message: String, _ code: FieldError.Code = .invalid) {
            problems.append(FieldError(field: field, code: code, message: message))
        }
        guard case .object(let members) = json else {
            return .failure(
                ValidationFailure([FieldError(field: "", code: .invalid, message: "must be a JSON object, not \(json.typeName)")]))
        }
        for m in members where !fields.contains(m.key) {
            bad(
                m.key, "is not a field of a stream (fields: \(fields.subtracting(["version"]).sorted().joined(separator: ", ")))",
                .unknownField)
        }
        if !Names.isValid(pathID) { bad("id", Names.rule) }
        if let v = json["id"] {
            if case .string(let s) = v, s == pathID {} else { bad("id", "must equal the id in the URL (\(pathID))", .mismatch) }
        }
        func integer(_ key: String, _ range: ClosedRange<Int>, _ fallback: Int?) -> Int? {
            guard let v = json[key] else {
                if fallback == nil { bad(key, "is required", .required) }
                return fallback
            }
            guard case .integer(let i) = v, range.contains(Int(i)) else {
                bad(key, "must be an integer in \(range.lowerBound)-\(range.upperBound)")
                return nil
            }
            return Int(i)
        }
        let listen = integer("listen", listenRange, nil)
        let connect = integer("connect_timeout_ms", connectTimeoutRange, defaultConnectTimeoutMs)
        let idle = integer("idle_timeout_s", idleTimeoutRange, defaultIdleTimeoutS)

        var proto: StreamProtocol? = .tcp
        if let v = json["protocol"] {
            if case .string(let s) = v, let p = StreamProtocol(rawValue: s) {
                proto = p
            } else {
                proto = nil
                bad("protocol", "must be one of tcp, udp")
            }
        }
        var balance: StreamBalance? = .roundRobin
        if let v = json["balance"] {
            if case .string(let s) = v, let b = StreamBalance(rawValue: s) {
                balance = b
            } else {
                balance = nil
                bad("balance", "must be one of \(StreamBalance.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        if balance == .leastConn, proto == .udp { bad("balance", "least_conn is for tcp only (udp has no connections)") }

        var upstream: String?
        switch json["upstream"] {
        case nil: bad("upstream", "is required", .required)
        case .string(let s)?:
            if !Names.isValid(s) { bad("upstream", Names.rule) } else { upstream = s }
        case let other?: bad("upstream", "must be a string, not \(other.typeName)")
        }

        var proxyProtocol = false
        if let v = json["proxy_protocol"] {
            if case .bool(let b) = v { proxyProtocol = b } else { bad("proxy_protocol", "must be true or false") }
        }
        if proxyProtocol, proto == .udp { bad("proxy_protocol", "is for tcp only") }

        func ranges(_ key: String) -> [CIDR] {
            guard let v = json[key] else { return [] }
            guard case .array(let items) = v else {
                bad(key, "must be an array of addresses or CIDR ranges, not \(v.typeName)")
                return []
            }
            var out: [CIDR] = []
            for (i, item) in items.enumerated() {
                guard case .string(let s) = item else { bad("\(key)[\(i)]", "must be a string"); continue }
                switch CIDR.parse(s) {
                case .success(let c): out.append(c)
                case .failure(let e): bad("\(key)[\(i)]", e.message)
                }
            }
            return out
        }
        let allow = ranges("allow")
        let deny = ranges("deny")

        guard problems.isEmpty, let listen, let connect, let idle, let proto, let balance, let upstream else {
            return .failure(ValidationFailure(problems))
        }
        return .success(
            StreamService(
                id: pathID, listen: listen, proto: proto, upstream: upstream, balance: balance, connectTimeoutMs: connect,
                idleTimeoutS: idle, proxyProtocol: proxyProtocol, allow: allow, deny: deny))
    }
}

extension StoredDocument {
    /// A stored stream document (`{"version":N,...}`, its `id` inside) and its version.
    public static func stream(_ bytes: [UInt8]) throws(DocumentError) -> Stored<StreamService> {
        let (version, json) = try parse(bytes)
        guard case .string(let id)? = json["id"] else { throw DocumentError("id") }
        switch StreamService.validate(json, id: id) {
        case .success(let service): return Stored(value: service, version: version)
        case .failure(let failure): throw DocumentError(failure.problems.first?.field ?? "json")
        }
    }
}

extension ApplyOperation {
    /// The sy_apply put of a stream (sy_apply reads the upstream and port from the document).
    public static func put(_ stream: StreamService, expect: Int64? = nil) -> ApplyOperation {
        ApplyOperation(op: .put, kind: .stream, id: stream.id, document: stream.document.canonical, expect: expect)
    }
}

/// One endpoint as the balancer sees it.
public struct StreamTarget: Sendable, Hashable {
    public var address: EndpointAddress
    public var weight: Int
    public init(address: EndpointAddress, weight: Int) {
        self.address = address
        self.weight = weight
    }
}

/// Which endpoints are in rotation and which one a new connection goes to. Pure: the engine
/// keeps the cursor and the open-connection counts.
public enum StreamBalancer {
    /// The endpoints in rotation: those not marked `down` (health verdicts apply only to
    /// endpoints the upstream's check covers). When every endpoint is down, all of them stay
    /// (fail open, as the HTTP edges do by default): refusing everything helps no one.
    public static func rotation(_ upstream: Upstream, down: Set<String>) -> [StreamTarget] {
        let all = upstream.endpoints.map { StreamTarget(address: $0.address, weight: $0.weight) }
        let up = upstream.endpoints.filter { !($0.activeCheck && upstream.healthCheck != nil && down.contains($0.address.description)) }
            .map { StreamTarget(address: $0.address, weight: $0.weight) }
        return up.isEmpty ? all : up
    }

    /// The index of the endpoint for the next connection. `counter` is a per-service
    /// sequence number (round robin walks the weights), `client` the client's address bytes
    /// (hash), `open` the open connections per endpoint (least_conn; ties to the first).
    public static func pick(
        _ targets: [StreamTarget], balance: StreamBalance, counter: UInt64, client: [UInt8], open: (EndpointAddress) -> Int
    ) -> Int? {
        guard !targets.isEmpty else { return nil }
        switch balance {
        case .roundRobin:
            return weighted(targets, slot: counter)
        case .hash:
            // FNV-1a over the client address: stable across engines and restarts
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for b in client {
                h ^= UInt64(b)
                h = h &* 0x100_0000_01b3
            }
            return weighted(targets, slot: h)
        case .leastConn:
            var best = 0
            var bestScore = Double.infinity
            for (i, t) in targets.enumerated() {
                let score = Double(open(t.address)) / Double(max(t.weight, 1))
                if score < bestScore {
                    best = i
                    bestScore = score
                }
            }
            return best
        }
    }

    static func weighted(_ targets: [StreamTarget], slot: UInt64) -> Int {
        let total = UInt64(targets.reduce(0) { $0 + max($1.weight, 1) })
        var s = slot % total
        for (i, t) in targets.enumerated() {
            let w = UInt64(max(t.weight, 1))
            if s < w { return i }
            s -= w
        }
        return targets.count - 1
    }
}
