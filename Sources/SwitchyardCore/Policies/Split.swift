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

extension SplitTarget {
    /// A route's `split`: 2-10 distinct upstreams, not all of weight 0.
    static func parseList(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> [SplitTarget]? {
        let example = #"[{"upstream":"blue","weight":90},{"upstream":"green","weight":10}]"#
        guard case .array(let items) = json else {
            reader.add(prefix, .invalid, "must be an array such as \(example), not \(json.typeName)")
            return nil
        }
        guard SplitTarget.countRange.contains(items.count) else {
            reader.add(
                prefix, .invalid,
                "must have \(SplitTarget.countRange.lowerBound)-\(SplitTarget.countRange.upperBound) entries, not \(items.count)")
            return nil
        }
        let before = reader.count
        var targets: [SplitTarget] = []
        var first: [String: Int] = [:]
        for (i, item) in items.enumerated() {
            let at = "\(prefix)[\(i)]"
            guard reader.object(item, fields: ["upstream", "weight"], example: #"{"upstream":"blue","weight":90}"#, at: at) != nil else {
                continue
            }
            let weight = reader.integer(item, "weight", in: SplitTarget.weightRange, default: SplitTarget.defaultWeight, at: at)
            guard let given = reader.string(item, "upstream", required: true, at: at), let name = given else { continue }
            guard Names.isValid(name) else {
                reader.add(join(at, "upstream"), .invalid, "'\(name)' is not a valid upstream name (\(Names.rule))")
                continue
            }
            if let j = first[name] {
                reader.add(join(at, "upstream"), .duplicate, "upstream '\(name)' appears twice in the split (also \(prefix)[\(j)])")
                continue
            }
            first[name] = i
            if let weight { targets.append(SplitTarget(upstream: name, weight: weight)) }
        }
        guard reader.count == before else { return nil }
        if targets.allSatisfy({ $0.weight == 0 }) {
            reader.add(prefix, .invalid, "the weights must not all be 0")
            return nil
        }
        return targets
    }
}

extension SplitSticky {
    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> SplitSticky? {
        guard reader.object(json, fields: SplitSticky.fields, example: #"{"cookie":"sy_split","ttl_s":3600}"#, at: prefix) != nil else {
            return nil
        }
        let defaults = SplitSticky()
        let cookie = reader.cookieName(json, "cookie", default: defaults.cookie, at: prefix)
        let ttl = reader.integer(json, "ttl_s", in: StickyCookie.ttlRange, default: defaults.ttlSeconds, at: prefix)
        guard let cookie = cookie ?? nil, let ttl else { return nil }
        return SplitSticky(cookie: cookie, ttlSeconds: ttl)
    }
}

extension Canary {
    static func parse(_ json: JSONValue, at prefix: String, into reader: inout FieldReader) -> Canary? {
        let example = #"{"upstream":"green","header":"X-Canary","value":"1"}"#
        guard reader.object(json, fields: Canary.fields, example: example, at: prefix) != nil else { return nil }
        let before = reader.count
        var upstream: String?
        if let given = reader.string(json, "upstream", required: true, at: prefix), let name = given {
            if Names.isValid(name) {
                upstream = name
            } else {
                reader.add(join(prefix, "upstream"), .invalid, "'\(name)' is not a valid upstream name (\(Names.rule))")
            }
        }
        var header: String?
        if let given = reader.string(json, "header", required: false, at: prefix), let name = given {
            if Tokens.isHeaderName(name) {
                header = name
            } else {
                reader.add(join(prefix, "header"), .invalid, "'\(name)' is not a header name (\(Tokens.headerRule))")
            }
        }
        let cookie = reader.cookieName(json, "cookie", default: "", at: prefix).map { $0 == "" ? nil : $0 }
        var value: String?
        if let given = reader.string(json, "value", required: false, at: prefix), let text = given {
            if text.isEmpty {
                reader.add(join(prefix, "value"), .invalid, "must not be empty (omit value to match any non-empty value)")
            } else if let problem = Tokens.headerValueProblem(text) {
                reader.add(join(prefix, "value"), .invalid, problem)
            } else {
                value = text
            }
        }
        guard reader.count == before, let upstream, let cookie else { return nil }
        if header == nil && cookie == nil {
            reader.add(prefix, .invalid, "needs header or cookie (or both): which requests go to the canary")
            return nil
        }
        return Canary(upstream: upstream, header: header, cookie: cookie, value: value)
    }
}
