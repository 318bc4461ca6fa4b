// Turning request JSON into validated model values, listing EVERY problem.
//
// Each problem is a `FieldError` naming the field the way an operator wrote it
// (`routes[2].host`, `endpoints[0].address`), so one response can show all typos at once.
// Unknown fields are rejected (code `unknown_field`): a misspelt optional field such as
// `priorty` would otherwise be silently ignored and the default used.

/// Decodes and validates request bodies.
public struct Validator: Sendable {
    /// Compiles regex paths and rewrite patterns: by default with PCRE1, the engine the
    /// edges' `ngx.re` runs (RegexCheck.swift).
    public var regex: any RegexChecker
    /// Accept link-local endpoints (169.254.0.0/16, fe80::/10), where cloud metadata
    /// services answer (`--allow-link-local-endpoints`).
    public var allowLinkLocalEndpoints: Bool
    /// Read `owner` and `source` from the body. Admin API requests may not set them (the
    /// writer does: Ownership); writers such as the Kubernetes source validate with this set.
    public var acceptsOwnership: Bool

    public init(regex: any RegexChecker = PCRE1RegexChecker(), allowLinkLocalEndpoints: Bool = false, acceptsOwnership: Bool = false) {
        self.regex = regex
        self.allowLinkLocalEndpoints = allowLinkLocalEndpoints
        self.acceptsOwnership = acceptsOwnership
    }

    // MARK: Routes

    /// A route from a request body. `id` is the id from the URL (the body may repeat it);
    /// nil in a batch, where the body must carry it.
    public func route(_ json: JSONValue, id pathID: String?, at prefix: String = "") -> Result<Route, ValidationFailure> {
        validating { reader in route(json, id: pathID, at: prefix, into: &reader) }
    }

    func route(_ json: JSONValue, id pathID: String?, at prefix: String, into reader: inout FieldReader) -> Route? {
        let before = reader.count
        let fields = Set(["id", "host", "wildcard", "path", "match", "upstream", "priority"]).union(RouteTLS.fields)
            .union(RoutePolicies.fields).union(Ownership.fields)
        guard reader.object(json, fields: fields, at: prefix) != nil else { return nil }
        let id = identity(json, key: "id", pathValue: pathID, at: prefix, into: &reader)
        let ownership = self.ownership(json, at: prefix, into: &reader)

        var host: String?
        if let value = reader.requiredString(json, "host", at: prefix) {
            switch HostNames.canonical(value, catchAll: true) {
            case .success(let canonical): host = canonical
            case .failure(let error): reader.add(join(prefix, "host"), .invalid, "'\(value)' \(error.message)")
            }
        }

        var match: MatchKind? = .prefix
        if let value = json["match"] {
            if case .string(let s) = value, let kind = MatchKind(rawValue: s) {
                match = kind
            } else {
                match = nil
                reader.add(join(prefix, "match"), .invalid, "must be one of \(MatchKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        let wildcard = HostWildcard.parse(json, host: host, at: prefix, into: &reader)

        var path: String?
        if let value = reader.requiredString(json, "path", at: prefix) {
            if let problem = Paths.problem(value, match: match ?? .prefix) {
                reader.add(join(prefix, "path"), .invalid, problem)
            } else if match == .regex, let problem = regex.problem(in: value) {
                reader.add(join(prefix, "path"), .invalid, problem)
            } else if match?.isLiteral == true, let problem = Paths.normalFormProblem(value) {
                reader.add(join(prefix, "path"), .invalid, "'\(value)' \(problem)")
            } else {
                path = match == .segmentPrefix ? Paths.segmentPrefix(value) : value
            }
        }

        // optional: a route's action is upstream, split or redirect (RoutePolicies.parse checks)
        var upstream: String?
        switch present(json, "upstream") {
        case nil:
            break
        case .string(let value)?:
            if Names.isValid(value) {
                upstream = value
            } else {
                reader.add(join(prefix, "upstream"), .invalid, "'\(value)' is not a valid upstream name (\(Names.rule))")
            }
        case let other?:
            reader.add(join(prefix, "upstream"), .invalid, "must be a string, not \(other.typeName)")
        }

        let priority = reader.integer(json, "priority", in: Route.priorityRange, default: 0, at: prefix)
        let tls = RouteTLS.parse(json, at: prefix, into: &reader)
        let policies = RoutePolicies.parse(
            json, match: match, hasUpstream: present(json, "upstream") != nil, regex: regex,
            at: prefix, into: &reader)

        guard reader.count == before, let id, let host, let path, let match, let priority, let tls, let policies, let wildcard,
            let ownership
        else {
            return nil
        }
        var route = Route(id: id, host: host, path: path, match: match, upstream: upstream, priority: priority)
        route.wildcard = wildcard
        route.tls = tls
        route.policies = policies
        (route.owner, route.source) = ownership
        return route
    }

    // MARK: Upstreams

    /// An upstream from a request body. `name` is the name from the URL (the body may repeat
    /// it); nil in a batch, where the body must carry it.
    public func upstream(_ json: JSONValue, name pathName: String?, at prefix: String = "") -> Result<Upstream, ValidationFailure> {
        validating { reader in upstream(json, name: pathName, at: prefix, into: &reader) }
    }

    func upstream(_ json: JSONValue, name pathName: String?, at prefix: String, into reader: inout FieldReader) -> Upstream? {
        let before = reader.count
        let fields = Set(["name", "balance", "endpoints", "protocol"]).union(UpstreamPolicy.fields).union(UpstreamTLS.fields)
            .union(UpstreamBalanceFields.fields).union(Ownership.fields)
        guard reader.object(json, fields: fields, at: prefix) != nil else { return nil }
        let name = identity(json, key: "name", pathValue: pathName, at: prefix, into: &reader)
        let ownership = self.ownership(json, at: prefix, into: &reader)

        var balance: Balance? = .roundRobin
        if let value = json["balance"] {
            if case .string(let s) = value, let b = Balance(rawValue: s) {
                balance = b
            } else {
                balance = nil
                reader.add(join(prefix, "balance"), .invalid, "must be one of \(Balance.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        var endpoints: [Endpoint] = []
        switch json["endpoints"] {
        case nil:
            break
        case .array(let items)?:
            var firstIndex: [EndpointAddress: Int] = [:]
            for (i, item) in items.enumerated() {
                let at = join(prefix, "endpoints[\(i)]")
                guard let endpoint = endpoint(item, address: nil, at: at, into: &reader) else { continue }
                if let first = firstIndex[endpoint.address] {
                    reader.add(
                        join(at, "address"), .duplicate,
                        "duplicate endpoint \(endpoint.address) (also endpoints[\(first)])")
                } else {
                    firstIndex[endpoint.address] = i
                    endpoints.append(endpoint)
                }
            }
        case let other?:
            reader.add(join(prefix, "endpoints"), .invalid, "must be an array, not \(other.typeName)")
        }

        let policy = UpstreamPolicyFields.parse(json, at: prefix, into: &reader)
        let proto = UpstreamProtocol.parse(json, at: prefix, into: &reader)
        let tls = UpstreamTLS.parse(json, at: prefix, into: &reader, protocol: proto ?? .http)
        let balancing = UpstreamBalanceFields.parse(json, balance: balance, at: prefix, into: &reader)
        if let proto {
            UpstreamProtocol.checkGRPC(proto, balance: balance, healthCheck: policy?.healthCheck, at: prefix, into: &reader)
        }

        guard reader.count == before, let name, let balance, let policy, let proto, let tls, let balancing, let ownership
        else { return nil }
        var upstream = Upstream(
            name: name, balance: balance, endpoints: endpoints, healthCheck: policy.healthCheck,
            passive: policy.passive, retries: policy.retries, onAllDown: policy.onAllDown)
        upstream.tls = tls
        upstream.proto = proto
        upstream.hashOn = balancing.hashOn
        upstream.sticky = balancing.sticky
        (upstream.owner, upstream.source) = ownership
        return upstream
    }

    // MARK: Endpoints

    /// An endpoint from `PUT .../endpoints/{address}`: the address comes from the URL, the
    /// optional body may give `weight` and `health_check` (and repeat `address`).
    public func endpoint(_ json: JSONValue?, address pathAddress: String) -> Result<Endpoint, ValidationFailure> {
        validating { reader in
            guard let address = endpointAddress(pathAddress, field: "address", into: &reader) else { return nil }
            return endpoint(json ?? .object([]), address: address, at: "", into: &reader)
        }
    }

    func endpoint(_ json: JSONValue, address pathAddress: EndpointAddress?, at prefix: String, into reader: inout FieldReader) -> Endpoint?
    {
        let before = reader.count
        guard reader.object(json, fields: ["address", "weight", "health_check"], at: prefix) != nil else { return nil }
        var address = pathAddress
        if let pathAddress {
            if let value = json["address"] {
                if case .string(let s) = value, case .success(let parsed) = EndpointAddress.parse(s), parsed == pathAddress {
                    // same machine, perhaps written differently
                } else {
                    reader.add(join(prefix, "address"), .mismatch, "must equal the address in the URL (\(pathAddress))")
                }
            }
        } else if let value = reader.requiredString(json, "address", at: prefix) {
            address = endpointAddress(value, field: join(prefix, "address"), into: &reader)
        }
        let weight = reader.integer(json, "weight", in: Endpoint.weightRange, default: Endpoint.defaultWeight, at: prefix)
        let activeCheck = reader.bool(json, "health_check", default: true, at: prefix)
        guard reader.count == before, let address, let weight, let activeCheck else { return nil }
        return Endpoint(address: address, weight: weight, activeCheck: activeCheck)
    }

    /// A parsed endpoint address a proxy can send to (EndpointAddress.usabilityProblem).
    func endpointAddress(_ text: String, field: String, into reader: inout FieldReader) -> EndpointAddress? {
        switch EndpointAddress.parse(text) {
        case .success(let address):
            if let problem = address.usabilityProblem(allowLinkLocal: allowLinkLocalEndpoints) {
                reader.add(field, .invalid, "'\(text)' \(problem)")
                return nil
            }
            return address
        case .failure(let error):
            reader.add(field, .invalid, "'\(text)': \(error.message)")
            return nil
        }
    }

    // MARK: Field helpers

    /// Runs `read` with a strict reader: the value it returns when nothing was wrong,
    /// otherwise every problem found.
    func validating<T>(_ read: (inout FieldReader) -> T?) -> Result<T, ValidationFailure> {
        var reader = FieldReader(strict: true)
        let value = read(&reader)
        if let value, reader.isEmpty { return .success(value) }
        return .failure(ValidationFailure(reader.problems))
    }

    /// `owner` and `source` when `acceptsOwnership`; in admin API bodies they are problems.
    /// nil when something is wrong.
    func ownership(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> (owner: String?, source: String?)? {
        let before = reader.count
        var out: [String?] = []
        for key in ["owner", "source"] {
            guard let value = present(json, key) else {
                out.append(nil)
                continue
            }
            let field = join(prefix, key)
            guard acceptsOwnership else {
                reader.add(field, .invalid, "is set by the writer, not the request (the admin API does not accept it)")
                continue
            }
            guard case .string(let text) = value else {
                reader.add(field, .invalid, "must be a string, not \(value.typeName)")
                continue
            }
            if let problem = Ownership.problem(text) {
                reader.add(field, .invalid, problem)
                continue
            }
            out.append(text)
        }
        guard reader.count == before else { return nil }
        return (out[0], out[1])
    }

    /// The object's id/name: from the URL when given (a body copy must agree), else required in the body.
    func identity(_ json: JSONValue, key: String, pathValue: String?, at prefix: String, into reader: inout FieldReader) -> String? {
        let field = join(prefix, key)
        if let pathValue {
            guard Names.isValid(pathValue) else {
                reader.add(field, .invalid, "'\(pathValue)' is not a valid \(key) (\(Names.rule))")
                return nil
            }
            if let value = json[key], value != .string(pathValue) {
                reader.add(field, .mismatch, "must equal the \(key) in the URL ('\(pathValue)')")
                return nil
            }
            return pathValue
        }
        guard let value = reader.requiredString(json, key, at: prefix) else { return nil }
        guard Names.isValid(value) else {
            reader.add(field, .invalid, "'\(value)' is not a valid \(key) (\(Names.rule))")
            return nil
        }
        return value
    }
}

extension HostWildcard {
    /// A route's `wildcard` member: absent (any depth) or "one_label", which only applies to a
    /// `*.` host (`host`: the canonical host, nil when it was wrong). `.some(nil)` when
    /// absent; nil when it is a problem.
    static func parse(_ json: JSONValue, host: String?, at prefix: String, into reader: inout FieldReader) -> HostWildcard?? {
        guard let value = present(json, "wildcard") else { return .some(nil) }
        let field = join(prefix, "wildcard")
        guard case .string(let text) = value, let wildcard = HostWildcard(rawValue: text) else {
            reader.add(field, .invalid, "must be \"one_label\" (or absent: a wildcard of any depth)")
            return nil
        }
        if let host, !host.hasPrefix("*.") {
            reader.add(field, .invalid, "only applies to a wildcard host (*.example.com)")
            return nil
        }
        return .some(wildcard)
    }
}
