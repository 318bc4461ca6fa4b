import Testing

@testable import SwitchyardCore

// Issue 16 (hardening): the validation holes the adversarial pass found, as pure tests of
// the controller's Validator with its default regex engine. Each fails on the code the
// issue was filed against; where a fix may either refuse the input or make it work, the
// test accepts both.

private func json(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

private func fields<T>(_ result: Result<T, ValidationFailure>) -> [String] {
    if case .failure(let failure) = result { return failure.problems.map(\.field) }
    return []
}

@Suite("Hardening: the controller validates with the edges' regex engine (issue 16, item 2)")
struct HardeningRegexTests {
    let validator = Validator()

    /// PCRE2 10.42 compiles these, PCRE 8.39 (what Debian's lua-nginx-module links, so
    /// what every edge runs) refuses them: the edges dropped such routes after a 201.
    static let edgeRefuses = [
        "(*pla:a)", "(*positive_lookahead:a)", "(*nla:a)", "(*plb:a)", "(*nlb:a)", "(*atomic:a)", "(*napla:a)",
        "(*sr:a)", "(?^i)a", "(?^)a", "(?n)(a)", "(*LIMIT_HEAP=1000)a", "(*LIMIT_DEPTH=100)a", "(*NOTEMPTY)a",
        "(*NOTEMPTY_ATSTART)a", "(*NO_JIT)a", #"(?C"text")a"#, "(?(VERSION>=10.0)a|b)", #"(*UTF)\N{U+00E9}"#,
        #"\p{Bidi_Control}"#, #"\p{scx:Latin}"#, "(*NO_DOTSTAR_ANCHOR).*a",
    ]
    /// ...and PCRE 8.39 compiles these, PCRE2 refuses them.
    static let edgeCompiles = [#"[\d-z]"#, #"\8"#]

    func route(_ pattern: String) throws -> JSONValue {
        var body: [(key: String, value: JSONValue)] = [("host", "a.test"), ("match", "regex"), ("upstream", "u")]
        body.append(("path", .string(pattern)))
        return .object(body)
    }

    func rewrite(_ pattern: String) -> JSONValue {
        .object([
            ("host", "a.test"), ("path", "/x"), ("upstream", "u"),
            ("rewrite", .object([("regex", .string(pattern)), ("replacement", "/y")])),
        ])
    }

    @Test(arguments: edgeRefuses)
    func routePathTheEdgeCannotCompileIsRefused(_ pattern: String) throws {
        #expect(fields(validator.route(try route(pattern), id: "r")) == ["path"], "accepted: \(pattern)")
    }

    @Test(arguments: edgeRefuses)
    func rewriteRegexTheEdgeCannotCompileIsRefused(_ pattern: String) throws {
        #expect(fields(validator.route(rewrite(pattern), id: "r")) == ["rewrite.regex"], "accepted: \(pattern)")
    }

    @Test(arguments: edgeCompiles)
    func routePathTheEdgeCompilesIsAccepted(_ pattern: String) throws {
        #expect(fields(validator.route(try route(pattern), id: "r")).isEmpty, "refused: \(pattern)")
    }
}

@Suite("Hardening: documents the controller stores decode at the edge (issue 16, items 3 and low)")
struct HardeningValidationTests {
    let validator = Validator()

    @Test func emptyHostInRequestHeadersIsRefused() throws {
        let body = #"{"host":"a.test","path":"/","upstream":"u","request_headers":{"set":{"Host":""}}}"#
        #expect(fields(validator.route(try json(body), id: "r")) == ["request_headers.set.Host"])
    }

    @Test(arguments: [".", ".."])
    func dotIdsAreRefused(_ id: String) throws {
        #expect(!Names.isValid(id))
        let route = #"{"host":"a.test","path":"/","upstream":"u","id":"\#(id)"}"#
        #expect(fields(validator.route(try json(route), id: nil)) == ["id"])
        let upstream = #"{"name":"\#(id)","endpoints":[]}"#
        #expect(fields(validator.upstream(try json(upstream), name: nil)) == ["name"])
    }

    /// Addresses no proxy can send to (unspecified, broadcast, multicast) and the
    /// link-local range (cloud metadata services live at 169.254.169.254): refused unless
    /// the link-local range is explicitly allowed (opt-in, not tested here).
    @Test(arguments: [
        "0.0.0.0:80", "[::]:80", "255.255.255.255:80", "224.0.0.1:80", "239.255.255.250:1900",
        "[ff02::1]:80", "169.254.169.254:80", "[fe80::1]:80",
    ])
    func unusableEndpointsAreRefused(_ address: String) throws {
        let upstream = #"{"name":"u","endpoints":[{"address":"\#(address)"}]}"#
        #expect(fields(validator.upstream(try json(upstream), name: nil)) == ["endpoints[0].address"], "accepted: \(address)")
    }

    @Test(arguments: ["::ffff:127.0.0.0/104", "::ffff:7f00:0/104", "::ffff:0:0/96", "::ffff:10.1.2.3"])
    func ipv4MappedRangesAreRefusedOrStoredAsIPv4(_ text: String) {
        // the edge matches an IPv4-mapped client as its IPv4 address, so an IPv6 range of
        // mapped addresses never matches anything: store the IPv4 range, or refuse it
        if case .success(let range) = CIDR.parse(text) {
            #expect(!range.isIPv6, "\(text) stored as \(range), which no client ever matches")
        }
    }

    /// $uri, which the edge routes on, is decoded and normalized: a route path with %XX,
    /// `//`, `/./` or `/../` can never match as written.
    @Test(arguments: ["/caf%C3%A9", "/a%2Fb", "/x//y", "/a/./b", "/a/../b"])
    func pathsNotInNormalFormAreRefusedOrNormalized(_ path: String) throws {
        for match in ["exact", "prefix"] {
            let body = #"{"host":"a.test","path":"\#(path)","match":"\#(match)","upstream":"u"}"#
            switch validator.route(try json(body), id: "r") {
            case .failure(let failure):
                #expect(failure.problems.map(\.field) == ["path"])
            case .success(let route):
                #expect(
                    !route.path.contains("%") && !route.path.contains("//") && !route.path.contains("/./")
                        && !route.path.contains("/../"), "\(match) \(path) stored as \(route.path)")
            }
        }
    }

    @Test func aBatchIsBounded() throws {
        // 20,001 objects: more than any documented bound (one sy_apply call costs ~60-100 µs
        // of Redis per object; 20,000 blocked Redis for 1.2-2 s)
        let items = (0...20_000).map { #"{"name":"u\#($0)","endpoints":[]}"# }.joined(separator: ",")
        let result = validator.batch(try json(#"{"upstreams":[\#(items)]}"#))
        guard case .failure(let failure) = result else {
            Issue.record("a batch of 20,001 objects was accepted")
            return
        }
        #expect(failure.problems.count == 1, "one problem naming the limit, not one per object")
    }
}
