import Testing

@testable import SwitchyardCore

/// A regex checker that rejects patterns containing "BAD": lets route validation be tested
/// without PCRE2 (PCRE2 itself is tested in RegexCheckTests).
struct FakeRegexChecker: RegexChecker {
    func problem(in pattern: String) -> String? { pattern.contains("BAD") ? "fake failure" : nil }
}

private func json(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

private func problems<T>(_ result: Result<T, ValidationFailure>) -> [FieldError] {
    if case .failure(let failure) = result { return failure.problems }
    return []
}

private func fields<T>(_ result: Result<T, ValidationFailure>) -> [String] { problems(result).map(\.field) }

@Suite("Route validation")
struct RouteValidationTests {
    let validator = Validator(regex: FakeRegexChecker())

    @Test func validRouteWithDefaults() throws {
        let route = try validator.route(json(#"{"host":"BBS.test.com","path":"/api","upstream":"backend"}"#), id: "bbs-api").get()
        #expect(route == Route(id: "bbs-api", host: "bbs.test.com", path: "/api", match: .prefix, upstream: "backend", priority: 0))
    }

    @Test func allFieldsGiven() throws {
        let body = #"{"id":"r1","host":"*.example.com","path":"^/v[0-9]+/","match":"regex","upstream":"b","priority":-1000}"#
        let route = try validator.route(json(body), id: "r1").get()
        #expect(route.match == .regex)
        #expect(route.priority == -1000)
        #expect(route.host == "*.example.com")
    }

    @Test func listsEveryProblemWithFieldNames() throws {
        let body = #"{"host":"a..b","path":"api","match":"glob","upstream":"Bad Name","priority":5000,"priorty":1}"#
        let result = validator.route(try json(body), id: "r1")
        #expect(Set(fields(result)) == ["host", "path", "match", "upstream", "priority", "priorty"])
        #expect(problems(result).first { $0.field == "priorty" }?.code == .unknownField)
    }

    @Test func requiredFields() throws {
        let result = validator.route(try json("{}"), id: "r1")
        #expect(Set(problems(result).map { "\($0.field):\($0.code.rawValue)" }) == ["host:required", "path:required", "upstream:required"])
    }

    @Test func bodyIDMustMatchURL() throws {
        let result = validator.route(try json(#"{"id":"other","host":"a.com","path":"/","upstream":"b"}"#), id: "r1")
        #expect(problems(result).map(\.code) == [.mismatch])
        #expect(fields(result) == ["id"])
    }

    @Test func invalidIDInURL() throws {
        #expect(fields(validator.route(try json(#"{"host":"a.com","path":"/","upstream":"b"}"#), id: "R 1")) == ["id"])
    }

    @Test func typesAreChecked() throws {
        let result = validator.route(try json(#"{"host":1,"path":["/"],"upstream":null,"priority":"1","match":true}"#), id: "r1")
        #expect(Set(fields(result)) == ["host", "path", "upstream", "priority", "match"])
        #expect(
            problems(validator.route(try json(#"{"host":"a.com","path":"/","upstream":"b","priority":1.5}"#), id: "r")).map(\.field) == [
                "priority"
            ])
    }

    @Test func notAnObject() throws {
        #expect(problems(validator.route(try json("[1]"), id: "r")).map(\.code) == [.invalid])
    }

    @Test(arguments: [
        ("/", true), ("/api/v1", true), ("/a%b", true), ("/" + String(repeating: "a", count: 2047), true),
        ("", false), ("api", false), ("/a b", false), ("/a\tb", false), ("/a\u{7f}", false), ("/a\u{85}", false),
        ("/\u{2028}", false), ("/" + String(repeating: "a", count: 2048), false),
        // not the form of nginx's $uri, which the edge matches (issue 16): never routed as written
        ("/a%20b", false), ("//", false),
    ])
    func prefixPaths(_ path: String, _ valid: Bool) throws {
        let body: JSONValue = ["host": "a.com", "path": .string(path), "upstream": "b"]
        let result = validator.route(body, id: "r")
        #expect(fields(result) == (valid ? [] : ["path"]))
    }

    @Test func exactPathsFollowTheSameRules() {
        let ok: JSONValue = ["host": "a.com", "path": "/x", "match": "exact", "upstream": "b"]
        let bad: JSONValue = ["host": "a.com", "path": "x", "match": "exact", "upstream": "b"]
        #expect(fields(validator.route(ok, id: "r")) == [])
        #expect(fields(validator.route(bad, id: "r")) == ["path"])
    }

    @Test func regexPathsAreCompiled() {
        let bad: JSONValue = ["host": "a.com", "path": "/BAD", "match": "regex", "upstream": "b"]
        #expect(problems(validator.route(bad, id: "r")).map(\.message) == ["fake failure"])
        // the same text is fine as a prefix: only regex paths are compiled
        let prefix: JSONValue = ["host": "a.com", "path": "/BAD", "upstream": "b"]
        #expect(fields(validator.route(prefix, id: "r")) == [])
        // regex paths need not start with "/" (anchors), but spaces are still refused
        let anchored: JSONValue = ["host": "a.com", "path": "^/x$", "match": "regex", "upstream": "b"]
        #expect(fields(validator.route(anchored, id: "r")) == [])
        let spaced: JSONValue = ["host": "a.com", "path": "^/x y", "match": "regex", "upstream": "b"]
        #expect(fields(validator.route(spaced, id: "r")) == ["path"])
    }

    @Test(arguments: [(-1000, true), (1000, true), (0, true), (-1001, false), (1001, false)])
    func priorityRange(_ priority: Int64, _ valid: Bool) {
        let body: JSONValue = ["host": "a.com", "path": "/", "upstream": "b", "priority": .integer(priority)]
        #expect(fields(validator.route(body, id: "r")) == (valid ? [] : ["priority"]))
    }

    @Test func hugeIntegersAreOutOfRangeNotCrashes() throws {
        let body = try json(#"{"host":"a.com","path":"/","upstream":"b","priority":99999999999999999999}"#)
        #expect(fields(validator.route(body, id: "r")) == ["priority"])
    }
}

@Suite("Upstream validation")
struct UpstreamValidationTests {
    let validator = Validator(regex: FakeRegexChecker())

    @Test func validUpstreamCanonicalisesAddresses() throws {
        let body = #"{"endpoints":[{"address":"10.0.0.1:10001","weight":1},{"address":"[2001:DB8::1]:80"}],"balance":"round_robin"}"#
        let upstream = try validator.upstream(json(body), name: "backend").get()
        #expect(upstream.name == "backend")
        #expect(upstream.balance == .roundRobin)
        #expect(upstream.endpoints.map(\.address.description) == ["10.0.0.1:10001", "[2001:db8::1]:80"])
        #expect(upstream.endpoints.map(\.weight) == [1, 1])
    }

    @Test func emptyAndMissingEndpointListsAreAllowed() throws {
        #expect(try validator.upstream(json(#"{"endpoints":[]}"#), name: "u").get().endpoints == [])
        #expect(try validator.upstream(json("{}"), name: "u").get().endpoints == [])
    }

    @Test func duplicateEndpointsNameTheAddress() throws {
        let body = #"{"endpoints":[{"address":"10.0.0.1:80"},{"address":"10.0.0.2:80"},{"address":"10.0.0.1:80","weight":3}]}"#
        let result = validator.upstream(try json(body), name: "u")
        #expect(fields(result) == ["endpoints[2].address"])
        #expect(problems(result)[0].code == .duplicate)
        #expect(problems(result)[0].message.contains("10.0.0.1:80"))
    }

    @Test func duplicatesAreFoundAfterCanonicalisation() throws {
        let body = #"{"endpoints":[{"address":"[::1]:80"},{"address":"[0::1]:80"}]}"#
        #expect(fields(validator.upstream(try json(body), name: "u")) == ["endpoints[1].address"])
    }

    @Test func listsEveryProblem() throws {
        let body =
            #"{"name":"other","balance":"random","endpoints":[{"address":"10.0.0.1"},{"address":"1.2.3.4:5","weight":0},{"adress":"x"},7],"extra":1}"#
        let result = validator.upstream(try json(body), name: "u")
        #expect(
            Set(fields(result)) == [
                "name", "balance", "endpoints[0].address", "endpoints[1].weight", "endpoints[2].adress", "endpoints[2].address",
                "endpoints[3]", "extra",
            ])
    }

    @Test(arguments: [(1, true), (1000, true), (0, false), (1001, false), (-1, false)])
    func weights(_ weight: Int64, _ valid: Bool) {
        let body: JSONValue = ["endpoints": [["address": "10.0.0.1:80", "weight": .integer(weight)]]]
        #expect(fields(validator.upstream(body, name: "u")) == (valid ? [] : ["endpoints[0].weight"]))
    }

    @Test func endpointsMustBeAnArray() {
        #expect(fields(validator.upstream(["endpoints": "10.0.0.1:80"], name: "u")) == ["endpoints"])
    }
}

@Suite("Endpoint validation")
struct EndpointValidationTests {
    let validator = Validator(regex: FakeRegexChecker())

    @Test func addressFromURLAndOptionalBody() throws {
        #expect(
            try validator.endpoint(nil, address: "[::1]:8080").get()
                == Endpoint(address: try EndpointAddress.parse("[::1]:8080").get(), weight: 1))
        #expect(try validator.endpoint(["weight": 5], address: "10.0.0.1:80").get().weight == 5)
        #expect(try validator.endpoint(["address": "10.0.0.1:80"], address: "10.0.0.1:80").get().weight == 1)
    }

    @Test func problems() {
        #expect(fields(validator.endpoint(nil, address: "10.0.0.1")) == ["address"])
        #expect(fields(validator.endpoint(["address": "10.0.0.2:80"], address: "10.0.0.1:80")) == ["address"])
        #expect(Set(fields(validator.endpoint(["weight": 0, "wieght": 1], address: "10.0.0.1:80"))) == ["weight", "wieght"])
        #expect(fields(validator.endpoint("x", address: "10.0.0.1:80")) == [""])
    }
}

@Suite("Batch validation")
struct BatchValidationTests {
    let validator = Validator(regex: FakeRegexChecker())

    @Test func validBatchAndOperationOrder() throws {
        let body = #"""
            {"routes":[{"id":"r1","host":"a.com","path":"/","upstream":"u1"}],
             "upstreams":[{"name":"u1","endpoints":[{"address":"10.0.0.1:80"}]}],
             "delete":{"routes":["old"],"upstreams":["gone"]}}
            """#
        let batch = try validator.batch(json(body)).get()
        #expect(batch.routes.map(\.id) == ["r1"])
        #expect(batch.upstreams.map(\.name) == ["u1"])
        #expect(batch.externalReferences.isEmpty)
        let ops = batch.operations()
        #expect(
            ops.map { "\($0.op.rawValue) \($0.kind.rawValue) \($0.id)" } == [
                "put upstream u1", "put route r1", "del route old", "del upstream gone",
            ])
    }

    @Test func everyProblemIsListedWithItsIndex() throws {
        let body = #"""
            {"upstreams":[{"name":"u1"},{"name":"BAD!"},{"name":"u1"}],
             "routes":[{"id":"r0","host":"a.com","path":"/","upstream":"u1"},
                       {"id":"r1","host":"a..com","path":"/","upstream":"u1"},
                       {"id":"r2","hots":"a.com","path":"/","upstream":"u1"},
                       {"id":"r0","host":"a.com","path":"/","upstream":"u1"}],
             "delete":{"routes":["r1", 5],"upstreams":["u1"]},
             "extra":true}
            """#
        let (_, found) = validator.batchCollectingProblems(try json(body))
        #expect(
            Set(found.map(\.field)) == [
                "upstreams[1].name", "upstreams[2].name", "routes[1].host", "routes[2].hots", "routes[2].host",
                "routes[3].id", "delete.routes[1]", "delete.upstreams[0]", "extra",
            ])
        #expect(found.first { $0.field == "upstreams[2].name" }?.code == .duplicate)
        #expect(found.first { $0.field == "delete.upstreams[0]" }?.code == .duplicate)
    }

    @Test func routesMayNotUseAnUpstreamTheBatchDeletes() throws {
        let body = #"{"routes":[{"id":"r","host":"a.com","path":"/","upstream":"gone"}],"delete":{"upstreams":["gone"]}}"#
        let (batch, found) = validator.batchCollectingProblems(try json(body))
        #expect(found.map(\.field) == ["routes[0].upstream"])
        #expect(found.first?.code == .missingUpstream)
        #expect(batch.externalReferences.isEmpty)
    }

    @Test func externalReferencesSkipUpstreamsOfTheBatch() throws {
        let body = #"""
            {"upstreams":[{"name":"u1"},{"name":"u2","balance":"nope"}],
             "routes":[{"id":"a","host":"a.com","path":"/","upstream":"u1"},
                       {"id":"b","host":"a.com","path":"/","upstream":"u2"},
                       {"id":"c","host":"a.com","path":"/","upstream":"elsewhere"}]}
            """#
        let (batch, found) = validator.batchCollectingProblems(try json(body))
        #expect(found.map(\.field) == ["upstreams[1].balance"])
        #expect(batch.externalReferences.map(\.field) == ["routes[2].upstream"])
        #expect(batch.externalReferences.map(\.upstream) == ["elsewhere"])
    }

    @Test func emptyBatchIsValid() throws {
        #expect(try validator.batch(json("{}")).get().isEmpty)
        #expect(fields(validator.batch(try json("[]"))) == [""])
    }
}

@Suite("Regex compilation with PCRE1 (the edges' ngx.re) and PCRE2")
struct RegexCheckTests {
    static let compiling = ["^/api/v[0-9]+/", "/x(?<name>y)", "\\.php$", "^/(a|b)+$", "/[[:alpha:]]"]
    static let failing = ["/(", "/[a-", "*x", "/x{2,1}", "/(?<n>a)(?<n>b)", "\\"]
    static let engines: [any RegexChecker] = [PCRE1RegexChecker(), PCRE2RegexChecker()]

    @Test(arguments: compiling)
    func compiles(_ pattern: String) {
        for checker in Self.engines { #expect(checker.problem(in: pattern) == nil) }
    }

    @Test(arguments: failing)
    func doesNotCompile(_ pattern: String) {
        for checker in Self.engines {
            let problem = checker.problem(in: pattern)
            #expect(problem != nil)
            #expect(problem?.contains("offset") == true)
        }
    }

    @Test func countsGroupsAsPCREDoes() {
        let pcre1 = PCRE1RegexChecker()
        #expect(pcre1.captureCount(in: "^/(a)(?:b)(?<n>c)") == 2)
        #expect(pcre1.captureCount(in: "(?|(a)|(b))") == 1)  // branch reset
        #expect(pcre1.captureCount(in: "[(](a)") == 1)
        #expect(pcre1.captureCount(in: "(") == nil)
    }

    @Test func refusesNUL() {
        // PCRE1 takes a NUL-terminated pattern: the edge would compile a shorter one
        #expect(PCRE1RegexChecker().problem(in: "/a\u{0}(") != nil)
    }

    @Test func theEnginesDiffer() {
        // why the default must be the edges' engine (issue 16, item 2)
        #expect(PCRE1RegexChecker().problem(in: "(*pla:a)") != nil)
        #expect(PCRE2RegexChecker().problem(in: "(*pla:a)") == nil)
        #expect(PCRE1RegexChecker().problem(in: #"[\d-z]"#) == nil)
        #expect(PCRE2RegexChecker().problem(in: #"[\d-z]"#) != nil)
        #expect(RegexEngine.pcre2.checker.problem(in: "(*pla:a)") == nil)
    }

    @Test func validatorUsesPCRE1ByDefault() {
        let result = Validator().route(["host": "a.com", "path": "(*pla:/a)", "match": "regex", "upstream": "b"], id: "r")
        #expect(fields(result) == ["path"])
        #expect(problems(result).first?.message.contains("edges' regex engine") == true)
    }
}
