// Turning request JSON into validated model values, listing EVERY problem.
//
// Each problem is a `FieldError` naming the field the way an operator wrote it
// (`routes[2].host`, `endpoints[0].address`), so one response can show all typos at once.
// Unknown fields are rejected (code `unknown_field`): a misspelt optional field such as
// `priorty` would otherwise be silently ignored and the default used.

/// Collects problems while a value is decoded.
struct Problems: Sendable {
    private(set) var list: [FieldError] = []
    var isEmpty: Bool { list.isEmpty }
    mutating func add(_ field: String, _ code: FieldError.Code, _ message: String) {
        list.append(FieldError(field: field, code: code, message: message))
    }
}

/// Joins a field path: `join("routes[1]", "host")` is `routes[1].host`.
@inline(__always)
func join(_ prefix: String, _ name: String) -> String { prefix.isEmpty ? name : "\(prefix).\(name)" }

/// Decodes and validates request bodies.
public struct Validator: Sendable {
    public var regex: any RegexChecker

    public init(regex: any RegexChecker = PCRE2RegexChecker()) {
        self.regex = regex
    }

    // MARK: Routes

    /// A route from a request body. `id` is the id from the URL (the body may repeat it);
    /// nil in a batch, where the body must carry it.
    public func route(_ json: JSONValue, id pathID: String?, at prefix: String = "") -> Result<Route, ValidationFailure> {
        var problems = Problems()
        let route = route(json, id: pathID, at: prefix, into: &problems)
        if let route, problems.isEmpty { return .success(route) }
        return .failure(ValidationFailure(problems.list))
    }

    func route(_ json: JSONValue, id pathID: String?, at prefix: String, into problems: inout Problems) -> Route? {
        guard case .object(let members) = json else {
            problems.add(prefix, .invalid, "must be a JSON object, not \(json.typeName)")
            return nil
        }
        let before = problems.list.count
        rejectUnknown(members, allowed: Set(["id", "host", "path", "match", "upstream", "priority"]).union(RouteTLS.fields)
                        .union(RoutePolicies.fields), at: prefix, into: &problems)
        let id = identity(json, key: "id", pathValue: pathID, at: prefix, into: &problems)

        var host: String?
        if let value = requiredString(json, "host", at: prefix, into: &problems) {
            switch HostNames.canonical(value) {
            case .success(let canonical): host = canonical
            case .failure(let error): problems.add(join(prefix, "host"), .invalid, "'\(value)' \(error.message)")
            }
        }

        var match: MatchKind? = .prefix
        if let value = json["match"] {
            if case .string(let s) = value, let kind = MatchKind(rawValue: s) {
                match = kind
            } else {
                match = nil
                problems.add(join(prefix, "match"), .invalid, "must be one of \(MatchKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        var path: String?
        if let value = requiredString(json, "path", at: prefix, into: &problems) {
            if let problem = Paths.problem(value, match: match ?? .prefix) {
                problems.add(join(prefix, "path"), .invalid, problem)
            } else if match == .regex, let problem = regex.problem(in: value) {
                problems.add(join(prefix, "path"), .invalid, problem)
            } else {
                path = value
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
                problems.add(join(prefix, "upstream"), .invalid, "'\(value)' is not a valid upstream name (\(Names.rule))")
            }
        case let other?:
            problems.add(join(prefix, "upstream"), .invalid, "must be a string, not \(other.typeName)")
        }

        let priority = integer(json, "priority", in: Route.priorityRange, default: 0, at: prefix, into: &problems)
        let tls = RouteTLS.parse(json, strict: true, at: prefix, into: &problems)
        let policies = RoutePolicies.parse(json, match: match, hasUpstream: present(json, "upstream") != nil, regex: regex, strict: true,
                                           at: prefix, into: &problems)

        guard problems.list.count == before, let id, let host, let path, let match, let priority, let tls, let policies else {
            return nil
        }
        var route = Route(id: id, host: host, path: path, match: match, upstream: upstream, priority: priority)
        route.tls = tls
        route.policies = policies
        return route
    }

    // MARK: Upstreams

    /// An upstream from a request body. `name` is the name from the URL (the body may repeat
    /// it); nil in a batch, where the body must carry it.
    public func upstream(_ json: JSONValue, name pathName: String?, at prefix: String = "") -> Result<Upstream, ValidationFailure> {
        var problems = Problems()
        let upstream = upstream(json, name: pathName, at: prefix, into: &problems)
        if let upstream, problems.isEmpty { return .success(upstream) }
        return .failure(ValidationFailure(problems.list))
    }

    func upstream(_ json: JSONValue, name pathName: String?, at prefix: String, into problems: inout Problems) -> Upstream? {
        guard case .object(let members) = json else {
            problems.add(prefix, .invalid, "must be a JSON object, not \(json.typeName)")
            return nil
        }
        let before = problems.list.count
        rejectUnknown(members, allowed: Set(["name", "balance", "endpoints"]).union(UpstreamPolicy.fields).union(UpstreamTLS.fields)
                        .union(UpstreamBalanceFields.fields), at: prefix, into: &problems)
        let name = identity(json, key: "name", pathValue: pathName, at: prefix, into: &problems)

        var balance: Balance? = .roundRobin
        if let value = json["balance"] {
            if case .string(let s) = value, let b = Balance(rawValue: s) {
                balance = b
            } else {
                balance = nil
                problems.add(join(prefix, "balance"), .invalid, "must be one of \(Balance.allCases.map(\.rawValue).joined(separator: ", "))")
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
                guard let endpoint = endpoint(item, address: nil, at: at, into: &problems) else { continue }
                if let first = firstIndex[endpoint.address] {
                    problems.add(join(at, "address"), .duplicate,
                                 "duplicate endpoint \(endpoint.address) (also endpoints[\(first)])")
                } else {
                    firstIndex[endpoint.address] = i
                    endpoints.append(endpoint)
                }
            }
        case let other?:
            problems.add(join(prefix, "endpoints"), .invalid, "must be an array, not \(other.typeName)")
        }

        let policy = UpstreamPolicyFields.parse(json, strict: true, at: prefix, into: &problems)
        let tls = UpstreamTLS.parse(json, strict: true, at: prefix, into: &problems)
        let balancing = UpstreamBalanceFields.parse(json, balance: balance, strict: true, at: prefix, into: &problems)

        guard problems.list.count == before, let name, let balance, let policy, let tls, let balancing else { return nil }
        var upstream = Upstream(name: name, balance: balance, endpoints: endpoints, healthCheck: policy.healthCheck,
                                passive: policy.passive, retries: policy.retries, onAllDown: policy.onAllDown)
        upstream.tls = tls
        upstream.hashOn = balancing.hashOn
        upstream.sticky = balancing.sticky
        return upstream
    }

    // MARK: Endpoints

    /// An endpoint from `PUT .../endpoints/{address}`: the address comes from the URL, the
    /// optional body may give `weight` (and repeat `address`).
    public func endpoint(_ json: JSONValue?, address pathAddress: String) -> Result<Endpoint, ValidationFailure> {
        var problems = Problems()
        guard let address = endpointAddress(pathAddress, field: "address", into: &problems) else {
            return .failure(ValidationFailure(problems.list))
        }
        let endpoint = endpoint(json ?? .object([]), address: address, at: "", into: &problems)
        if let endpoint, problems.isEmpty { return .success(endpoint) }
        return .failure(ValidationFailure(problems.list))
    }

    func endpoint(_ json: JSONValue, address pathAddress: EndpointAddress?, at prefix: String, into problems: inout Problems) -> Endpoint? {
        guard case .object(let members) = json else {
            problems.add(prefix, .invalid, "must be a JSON object, not \(json.typeName)")
            return nil
        }
        let before = problems.list.count
        rejectUnknown(members, allowed: ["address", "weight"], at: prefix, into: &problems)
        var address = pathAddress
        if let pathAddress {
            if let value = json["address"] {
                if case .string(let s) = value, case .success(let parsed) = EndpointAddress.parse(s), parsed == pathAddress {
                    // same machine, perhaps written differently
                } else {
                    problems.add(join(prefix, "address"), .mismatch, "must equal the address in the URL (\(pathAddress))")
                }
            }
        } else if let value = requiredString(json, "address", at: prefix, into: &problems) {
            address = endpointAddress(value, field: join(prefix, "address"), into: &problems)
        }
        let weight = integer(json, "weight", in: Endpoint.weightRange, default: Endpoint.defaultWeight, at: prefix, into: &problems)
        guard problems.list.count == before, let address, let weight else { return nil }
        return Endpoint(address: address, weight: weight)
    }

    func endpointAddress(_ text: String, field: String, into problems: inout Problems) -> EndpointAddress? {
        switch EndpointAddress.parse(text) {
        case .success(let address): return address
        case .failure(let error):
            problems.add(field, .invalid, "'\(text)': \(error.message)")
            return nil
        }
    }

    // MARK: Field helpers

    func rejectUnknown(_ members: [(key: String, value: JSONValue)], allowed: Set<String>, at prefix: String, into problems: inout Problems) {
        Self.rejectUnknown(members, allowed: allowed, at: prefix, into: &problems)
    }

    static func rejectUnknown(_ members: [(key: String, value: JSONValue)], allowed: Set<String>, at prefix: String, into problems: inout Problems) {
        for member in members where !allowed.contains(member.key) {
            problems.add(join(prefix, member.key), .unknownField,
                         "unknown field '\(member.key)' (known: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    /// The object's id/name: from the URL when given (a body copy must agree), else required in the body.
    func identity(_ json: JSONValue, key: String, pathValue: String?, at prefix: String, into problems: inout Problems) -> String? {
        let field = join(prefix, key)
        if let pathValue {
            guard Names.isValid(pathValue) else {
                problems.add(field, .invalid, "'\(pathValue)' is not a valid \(key) (\(Names.rule))")
                return nil
            }
            if let value = json[key], value != .string(pathValue) {
                problems.add(field, .mismatch, "must equal the \(key) in the URL ('\(pathValue)')")
                return nil
            }
            return pathValue
        }
        guard let value = requiredString(json, key, at: prefix, into: &problems) else { return nil }
        guard Names.isValid(value) else {
            problems.add(field, .invalid, "'\(value)' is not a valid \(key) (\(Names.rule))")
            return nil
        }
        return value
    }

    func requiredString(_ json: JSONValue, _ key: String, at prefix: String, into problems: inout Problems) -> String? {
        switch json[key] {
        case nil, .null?:
            problems.add(join(prefix, key), .required, "is required")
            return nil
        case .string(let s)?:
            return s
        case let other?:
            problems.add(join(prefix, key), .invalid, "must be a string, not \(other.typeName)")
            return nil
        }
    }

    func integer(_ json: JSONValue, _ key: String, in range: ClosedRange<Int>, default defaultValue: Int, at prefix: String, into problems: inout Problems) -> Int? {
        Self.integer(json, key, in: range, default: defaultValue, at: prefix, into: &problems)
    }

    static func integer(_ json: JSONValue, _ key: String, in range: ClosedRange<Int>, default defaultValue: Int, at prefix: String, into problems: inout Problems) -> Int? {
        switch json[key] {
        case nil:
            return defaultValue
        case .integer(let v)? where v >= Int64(range.lowerBound) && v <= Int64(range.upperBound):
            return Int(v)
        case .integer?:
            problems.add(join(prefix, key), .invalid, "must be between \(range.lowerBound) and \(range.upperBound)")
            return nil
        case let other?:
            problems.add(join(prefix, key), .invalid, "must be an integer, not \(other.typeName == "number" ? "a fraction" : other.typeName)")
            return nil
        }
    }

    func array(_ json: JSONValue, _ key: String, at prefix: String, into problems: inout Problems) -> [JSONValue] {
        switch json[key] {
        case nil: return []
        case .array(let items)?: return items
        case let other?:
            problems.add(join(prefix, key), .invalid, "must be an array, not \(other.typeName)")
            return []
        }
    }
}
