// Documents: the JSON form of routes and upstreams, as stored in Redis and answered by the API.
//
// The controller encodes canonically (sorted keys, see JSONValue.canonical) WITHOUT the
// version; sy_apply splices `{"version":N,` in front when it stores the document. Reading
// back, `StoredDocument` splits the version off again. Stored documents are decoded
// leniently (unknown fields ignored, so a newer controller's fields do not break an older
// one), unlike request bodies. Members added later (`health_check` of an endpoint,
// `wildcard`, `owner`, `source`) are written only when set, so documents that do not use
// them stay byte-identical to those written before they existed.

extension Endpoint {
    public var document: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("address", .string(address.description)), ("weight", .integer(Int64(weight)))]
        if !activeCheck { members.append(("health_check", false)) }
        return .object(members)
    }
}

/// `owner` and `source` of a stored document, read leniently: a value that is not a valid
/// one is ignored (edges ignore both members anyway).
func storedOwnership(_ json: JSONValue) -> (owner: String?, source: String?) {
    func value(_ key: String) -> String? {
        guard case .string(let text)? = json[key], Ownership.problem(text) == nil else { return nil }
        return text
    }
    return (value("owner"), value("source"))
}

/// The `owner` and `source` members to write (none when unset).
func ownershipMembers(owner: String?, source: String?) -> [(key: String, value: JSONValue)] {
    var out: [(key: String, value: JSONValue)] = []
    if let owner { out.append(("owner", .string(owner))) }
    if let source { out.append(("source", .string(source))) }
    return out
}

extension Upstream {
    /// The canonical JSON object (without version).
    public var document: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("balance", .string(balance.rawValue)), ("endpoints", .array(endpoints.map(\.document))), ("name", .string(name)),
            ("on_all_down", .string(onAllDown.rawValue)), ("passive", passive.document), ("retries", .integer(Int64(retries))),
        ]
        if let healthCheck { members.append(("health_check", healthCheck.document)) }
        if balance == .hash, let hashOn { members.append(("hash_on", .string(hashOn.description))) }
        if balance == .sticky { members.append(("sticky", (sticky ?? StickyCookie()).document)) }
        // grpcs is TLS without a "scheme" member (its tls.scheme is https: UpstreamProtocol.swift)
        members += proto == .grpcs ? tls.members.filter { $0.key != "scheme" } : tls.members
        members += proto.members
        members += ownershipMembers(owner: owner, source: source)
        return .object(members)
    }

    /// The `doc` argument of sy_apply.
    public var canonicalDocument: String { document.canonical }

    /// Decodes a stored upstream document (version already removed or ignored).
    public init(document json: JSONValue) throws(DocumentError) {
        guard case .string(let name)? = json["name"], Names.isValid(name) else { throw DocumentError("name") }
        var balance = Balance.roundRobin
        if let value = json["balance"] {
            guard case .string(let s) = value, let b = Balance(rawValue: s) else { throw DocumentError("balance") }
            balance = b
        }
        var endpoints: [Endpoint] = []
        if let value = json["endpoints"] {
            guard case .array(let items) = value else { throw DocumentError("endpoints") }
            for (i, item) in items.enumerated() {
                guard case .string(let text)? = item["address"], case .success(let address) = EndpointAddress.parse(text) else {
                    throw DocumentError("endpoints[\(i)].address")
                }
                var weight = Endpoint.defaultWeight
                if let w = item["weight"] {
                    guard case .integer(let v) = w, v >= 1, v <= 1000 else { throw DocumentError("endpoints[\(i)].weight") }
                    weight = Int(v)
                }
                var activeCheck = true
                if let value = present(item, "health_check") {
                    guard case .bool(let b) = value else { throw DocumentError("endpoints[\(i)].health_check") }
                    activeCheck = b
                }
                endpoints.append(Endpoint(address: address, weight: weight, activeCheck: activeCheck))
            }
        }
        // documents written before these fields existed get the defaults
        var reader = FieldReader(strict: false)
        guard let policy = UpstreamPolicyFields.parse(json, at: "", into: &reader) else {
            throw DocumentError(reader.problems.first?.field ?? "health_check")
        }
        self.init(
            name: name, balance: balance, endpoints: endpoints, healthCheck: policy.healthCheck, passive: policy.passive,
            retries: policy.retries, onAllDown: policy.onAllDown)
        guard let proto = UpstreamProtocol.parse(json, at: "", into: &reader) else { throw DocumentError("protocol") }
        guard let tls = UpstreamTLS.parse(json, at: "", into: &reader, protocol: proto) else {
            throw DocumentError(reader.problems.first?.field ?? "scheme")
        }
        self.tls = tls
        self.proto = proto
        guard let balancing = UpstreamBalanceFields.parse(json, balance: balance, at: "", into: &reader) else {
            throw DocumentError(reader.problems.first?.field ?? "balance")
        }
        self.hashOn = balancing.hashOn
        self.sticky = balancing.sticky
        (self.owner, self.source) = storedOwnership(json)
    }
}

extension Route {
    /// The canonical JSON object (without version) as answers show it: HS256 secrets only
    /// as their `secret_sha256` (the stored form: `canonicalDocument`).
    public var document: JSONValue { document(storage: false) }

    /// `storage`: with HS256 secrets sealed (`secret_enc`) or, without SWITCHYARD_CERT_KEY,
    /// in plaintext (`secret`): what sy_apply stores. Never for an answer or a log.
    public func document(storage: Bool) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("host", .string(host)), ("id", .string(id)), ("match", .string(match.rawValue)), ("path", .string(path)),
            ("priority", .integer(Int64(priority))),
        ]
        if let upstream { members.append(("upstream", .string(upstream))) }
        if let wildcard { members.append(("wildcard", .string(wildcard.rawValue))) }
        return .object(members + tls.members + policies.members(storage: storage) + ownershipMembers(owner: owner, source: source))
    }

    /// The `doc` argument of sy_apply (the stored form: see `document(storage:)`).
    public var canonicalDocument: String { document(storage: true).canonical }

    /// Decodes a stored route document (version already removed or ignored). Policy members
    /// get the request rules; `regex` (nil: not checked) compiles a regex path and a
    /// rewrite's pattern.
    public init(document json: JSONValue, regex: (any RegexChecker)? = nil) throws(DocumentError) {
        guard case .string(let id)? = json["id"], Names.isValid(id) else { throw DocumentError("id") }
        guard case .string(let host)? = json["host"] else { throw DocumentError("host") }
        guard case .string(let path)? = json["path"] else { throw DocumentError("path") }
        var upstream: String?
        if let value = present(json, "upstream") {
            guard case .string(let name) = value, Names.isValid(name) else { throw DocumentError("upstream") }
            upstream = name
        }
        var match = MatchKind.prefix
        if let value = json["match"] {
            guard case .string(let s) = value, let m = MatchKind(rawValue: s) else { throw DocumentError("match") }
            match = m
        }
        var priority = 0
        if let value = json["priority"] {
            guard case .integer(let p) = value, p >= -1000, p <= 1000 else { throw DocumentError("priority") }
            priority = Int(p)
        }
        // the edge skips a route whose path it could never match or compile: so does this
        if match.isLiteral, !path.hasPrefix("/") || Paths.normalFormProblem(path) != nil { throw DocumentError("path") }
        if match == .regex, let regex, regex.problem(in: path) != nil { throw DocumentError("path") }
        self.init(
            id: id, host: host, path: match == .segmentPrefix ? Paths.segmentPrefix(path) : path, match: match, upstream: upstream,
            priority: priority)
        if let value = present(json, "wildcard") {
            guard case .string(let text) = value, let wildcard = HostWildcard(rawValue: text), host.hasPrefix("*.") else {
                throw DocumentError("wildcard")
            }
            self.wildcard = wildcard
        }
        (self.owner, self.source) = storedOwnership(json)
        var reader = FieldReader(strict: false)
        guard let tls = RouteTLS.parse(json, at: "", into: &reader) else {
            throw DocumentError(reader.problems.first?.field ?? "hsts")
        }
        self.tls = tls
        guard
            let policies = RoutePolicies.parse(
                json, match: match, hasUpstream: upstream != nil, regex: regex,
                at: "", into: &reader)
        else {
            throw DocumentError(reader.problems.first?.field ?? "upstream")
        }
        self.policies = policies
    }
}

/// A stored document that cannot be decoded (typed in by hand, or damaged).
public struct DocumentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The field that is missing or wrong, or "version"/"json".
    public var field: String
    public init(_ field: String) { self.field = field }
    public var description: String { "stored document has a missing or invalid '\(field)'" }
}

/// A document as stored in Redis: `{"version":N,...}`.
public enum StoredDocument {
    /// Splits a stored document into its version and JSON object.
    public static func parse(_ bytes: [UInt8]) throws(DocumentError) -> (version: Int64, json: JSONValue) {
        let json: JSONValue
        do { json = try JSONValue.parse(bytes) } catch { throw DocumentError("json") }
        guard case .integer(let version)? = json["version"], version >= 0 else { throw DocumentError("version") }
        return (version, json)
    }

    public static func route(_ bytes: [UInt8]) throws(DocumentError) -> Stored<Route> {
        let (version, json) = try parse(bytes)
        return Stored(value: try Route(document: json), version: version)
    }

    public static func upstream(_ bytes: [UInt8]) throws(DocumentError) -> Stored<Upstream> {
        let (version, json) = try parse(bytes)
        return Stored(value: try Upstream(document: json), version: version)
    }

    /// The suffix sy_apply stores after `{"version":N,` — equal to `doc.dropFirst()` when the
    /// stored document is exactly `doc` (used to skip no-op writes before calling the Function).
    public static func body(_ bytes: [UInt8]) -> ArraySlice<UInt8>? {
        let prefix = Array(#"{"version":"#.utf8)
        guard bytes.count > prefix.count, bytes.starts(with: prefix) else { return nil }
        var i = prefix.count
        guard i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 else { return nil }
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
        guard i < bytes.count, bytes[i] == UInt8(ascii: ",") else { return nil }
        return bytes[(i + 1)...]
    }

    /// Whether the stored bytes hold exactly `canonicalDocument` (apart from the version).
    public static func holds(_ bytes: [UInt8], canonicalDocument doc: String) -> Bool {
        guard let body = body(bytes) else { return false }
        return body.elementsEqual(doc.utf8.dropFirst())
    }
}
