// Sending a route's traffic to more than one upstream (docs/traffic-policies.md): `split`
// by weight, `split_sticky` to keep a client on one side, and `canary` for requests that
// carry a header or cookie.

/// One entry of a route's `split`.
public struct SplitTarget: Sendable, Hashable {
    public var upstream: String
    /// 0-1000; 0 takes the upstream out of the split without removing it.
    public var weight: Int

    public init(upstream: String, weight: Int) {
        self.upstream = upstream
        self.weight = weight
    }

    public static let weightRange = 0...1000
    public static let countRange = 2...10
    public static let defaultWeight = 1
}

/// The cookie that keeps a client on one side of a split.
public struct SplitSticky: Sendable, Hashable {
    public var cookie: String
    public var ttlSeconds: Int

    public init(cookie: String = "sy_split", ttlSeconds: Int = 3600) {
        self.cookie = cookie
        self.ttlSeconds = ttlSeconds
    }

    public static let fields: Set<String> = ["cookie", "ttl_s"]
}

/// Requests carrying a header or cookie go to another upstream.
public struct Canary: Sendable, Hashable {
    public var upstream: String
    public var header: String?
    public var cookie: String?
    /// nil: any non-empty value.
    public var value: String?

    public init(upstream: String, header: String? = nil, cookie: String? = nil, value: String? = nil) {
        self.upstream = upstream
        self.header = header
        self.cookie = cookie
        self.value = value
    }

    public static let fields: Set<String> = ["upstream", "header", "cookie", "value"]
}

extension PolicyParser {
    func split(_ json: JSONValue, at prefix: String, into problems: inout Problems) -> [SplitTarget]? {
        let example = #"[{"upstream":"blue","weight":90},{"upstream":"green","weight":10}]"#
        guard case .array(let items) = json else {
            problems.add(prefix, .invalid, "must be an array such as \(example), not \(json.typeName)")
            return nil
        }
        guard SplitTarget.countRange.contains(items.count) else {
            problems.add(prefix, .invalid, "must have \(SplitTarget.countRange.lowerBound)-\(SplitTarget.countRange.upperBound) entries, not \(items.count)")
            return nil
        }
        let before = problems.list.count
        var targets: [SplitTarget] = []
        var first: [String: Int] = [:]
        for (i, item) in items.enumerated() {
            let at = "\(prefix)[\(i)]"
            guard object(item, fields: ["upstream", "weight"], example: #"{"upstream":"blue","weight":90}"#, at: at, into: &problems) != nil else {
                continue
            }
            let weight = Validator.integer(item, "weight", in: SplitTarget.weightRange, default: SplitTarget.defaultWeight, at: at, into: &problems)
            guard let given = string(item, "upstream", required: true, at: at, into: &problems), let name = given else { continue }
            guard Names.isValid(name) else {
                problems.add(join(at, "upstream"), .invalid, "'\(name)' is not a valid upstream name (\(Names.rule))")
                continue
            }
            if let j = first[name] {
                problems.add(join(at, "upstream"), .duplicate, "upstream '\(name)' appears twice in the split (also \(prefix)[\(j)])")
                continue
            }
            first[name] = i
            if let weight { targets.append(SplitTarget(upstream: name, weight: weight)) }
        }
        guard problems.list.count == before else { return nil }
        if targets.allSatisfy({ $0.weight == 0 }) {
            problems.add(prefix, .invalid, "the weights must not all be 0")
            return nil
        }
        return targets
    }

    func splitSticky(_ json: JSONValue, at prefix: String, into problems: inout Problems) -> SplitSticky? {
        guard object(json, fields: SplitSticky.fields, example: #"{"cookie":"sy_split","ttl_s":3600}"#, at: prefix, into: &problems) != nil else {
            return nil
        }
        let defaults = SplitSticky()
        let cookie = cookieName(json, "cookie", default: defaults.cookie, at: prefix, into: &problems)
        let ttl = Validator.integer(json, "ttl_s", in: StickyCookie.ttlRange, default: defaults.ttlSeconds, at: prefix, into: &problems)
        guard let cookie = cookie ?? nil, let ttl else { return nil }
        return SplitSticky(cookie: cookie, ttlSeconds: ttl)
    }

    func canary(_ json: JSONValue, at prefix: String, into problems: inout Problems) -> Canary? {
        let example = #"{"upstream":"green","header":"X-Canary","value":"1"}"#
        guard object(json, fields: Canary.fields, example: example, at: prefix, into: &problems) != nil else { return nil }
        let before = problems.list.count
        var upstream: String?
        if let given = string(json, "upstream", required: true, at: prefix, into: &problems), let name = given {
            if Names.isValid(name) {
                upstream = name
            } else {
                problems.add(join(prefix, "upstream"), .invalid, "'\(name)' is not a valid upstream name (\(Names.rule))")
            }
        }
        var header: String?
        if let given = string(json, "header", required: false, at: prefix, into: &problems), let name = given {
            if Tokens.isHeaderName(name) {
                header = name
            } else {
                problems.add(join(prefix, "header"), .invalid, "'\(name)' is not a header name (\(Tokens.headerRule))")
            }
        }
        let cookie = cookieName(json, "cookie", default: "", at: prefix, into: &problems).map { $0 == "" ? nil : $0 }
        var value: String?
        if let given = string(json, "value", required: false, at: prefix, into: &problems), let text = given {
            if text.isEmpty {
                problems.add(join(prefix, "value"), .invalid, "must not be empty (omit value to match any non-empty value)")
            } else if let problem = Tokens.headerValueProblem(text) {
                problems.add(join(prefix, "value"), .invalid, problem)
            } else {
                value = text
            }
        }
        guard problems.list.count == before, let upstream, let cookie else { return nil }
        if header == nil && cookie == nil {
            problems.add(prefix, .invalid, "needs header or cookie (or both): which requests go to the canary")
            return nil
        }
        return Canary(upstream: upstream, header: header, cookie: cookie, value: value)
    }
}
