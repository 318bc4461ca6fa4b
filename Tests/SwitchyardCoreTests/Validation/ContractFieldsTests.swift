import Testing

@testable import SwitchyardCore

// The members added for Kubernetes (segment_prefix, one-label wildcards, endpoints exempt
// from the active check, owner/source) and the rules issue 16 added to the document
// contract: how they are validated, stored (only when set: other documents stay
// byte-identical) and read back. The edge's side of each rule is in the Lua specs and the
// shared fixtures (PolicyFixtureTests).

private func json(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

private func problems<T>(_ result: Result<T, ValidationFailure>) -> [FieldError] {
    if case .failure(let failure) = result { return failure.problems }
    return []
}

private func fields<T>(_ result: Result<T, ValidationFailure>) -> [String] { problems(result).map(\.field) }

@Suite("Route members: segment_prefix, one-label wildcards, require_sni_match")
struct RouteContractTests {
    let validator = Validator()

    @Test(arguments: [("/api/", "/api"), ("/api", "/api"), ("/", "/"), ("/a/b/", "/a/b")])
    func segmentPrefixIsStoredWithoutTrailingSlash(_ given: String, _ stored: String) throws {
        let body = #"{"host":"a.test","path":"\#(given)","match":"segment_prefix","upstream":"u"}"#
        let route = try validator.route(json(body), id: "r").get()
        #expect(route.match == .segmentPrefix)
        #expect(route.path == stored)
        #expect(route.canonicalDocument.contains(#""match":"segment_prefix","path":"\#(stored)""#))
        // a hand-typed document with the slash reads the same
        #expect(try Route(document: json(#"{"id":"r","# + body.dropFirst())).path == stored)
    }

    @Test(arguments: ["exact", "prefix", "segment_prefix"])
    func pathsNotInTheEdgesFormAreRefusedWithAHint(_ match: String) throws {
        for path in ["/caf%C3%A9", "/a%2fb", "/x//y", "/a/./b", "/a/../b", "/a/.", "/.."] {
            let body = #"{"host":"a.test","path":"\#(path)","match":"\#(match)","upstream":"u"}"#
            let found = problems(validator.route(try json(body), id: "r"))
            #expect(found.map(\.field) == ["path"], "\(match) \(path)")
            #expect(found.first?.message.contains("as the edge sees it") == true)
        }
        // what nginx's $uri can hold: a lone %, dots inside a segment, the decoded form
        for path in ["/100%", "/a%zz", "/...", "/a.b/.c", "/café"] {
            let body = #"{"host":"a.test","path":"\#(path)","match":"\#(match)","upstream":"u"}"#
            #expect(fields(validator.route(try json(body), id: "r")).isEmpty, "\(match) \(path)")
        }
        // regex paths see the decoded path too, but may contain anything PCRE compiles
        #expect(fields(validator.route(try json(#"{"host":"a.test","path":"^/a//b%41","match":"regex","upstream":"u"}"#), id: "r")).isEmpty)
    }

    @Test func oneLabelWildcard() throws {
        let route = try validator.route(json(#"{"host":"*.A.test","wildcard":"one_label","path":"/","upstream":"u"}"#), id: "r").get()
        #expect(route.wildcard == .oneLabel)
        #expect(route.canonicalDocument.contains(#""wildcard":"one_label""#))
        #expect(try Route(document: route.document) == route)
        #expect(
            fields(validator.route(try json(#"{"host":"a.test","wildcard":"one_label","path":"/","upstream":"u"}"#), id: "r")) == [
                "wildcard"
            ])
        #expect(
            fields(validator.route(try json(#"{"host":"*.a.test","wildcard":"any","path":"/","upstream":"u"}"#), id: "r")) == ["wildcard"])
        #expect(fields(validator.route(try json(#"{"host":"*.a.test","wildcard":1,"path":"/","upstream":"u"}"#), id: "r")) == ["wildcard"])
        #expect(throws: DocumentError.self) { try Route(document: json(#"{"id":"r","host":"a.test","path":"/","wildcard":"one_label"}"#)) }
    }

    @Test func requireSNIMatchIsWrittenOnlyWhenTrue() throws {
        let on = try validator.route(json(#"{"host":"a.test","path":"/","upstream":"u","require_sni_match":true}"#), id: "r").get()
        #expect(on.tls.requireSNIMatch)
        #expect(on.canonicalDocument.contains(#""require_sni_match":true"#))
        #expect(try Route(document: on.document) == on)
        let off = try validator.route(json(#"{"host":"a.test","path":"/","upstream":"u","require_sni_match":false}"#), id: "r").get()
        #expect(!off.canonicalDocument.contains("require_sni_match"))
        #expect(
            fields(validator.route(try json(#"{"host":"a.test","path":"/","upstream":"u","require_sni_match":"yes"}"#), id: "r")) == [
                "require_sni_match"
            ])
    }

    @Test func documentsWithoutTheNewMembersAreUnchanged() throws {
        // the exact bytes a route and an upstream were stored as before these members existed
        let route = #"{"host":"a.test","id":"r","match":"prefix","path":"/","priority":0,"upstream":"u"}"#
        #expect(try validator.route(json(route), id: nil).get().canonicalDocument == route)
        let upstream =
            #"{"balance":"round_robin","endpoints":[{"address":"127.0.0.1:1","weight":1}],"name":"u","#
            + #""on_all_down":"fail_open","passive":{"fail_timeout_ms":10000,"max_fails":3},"retries":2}"#
        #expect(try validator.upstream(json(upstream), name: nil).get().canonicalDocument == upstream)
    }

    @Test(arguments: [".", ".."])
    func dotIdsAreRefusedEverywhere(_ id: String) throws {
        #expect(fields(validator.route(try json(#"{"host":"a.test","path":"/","upstream":"u"}"#), id: id)) == ["id"])
        #expect(fields(validator.upstream(try json(#"{"endpoints":[]}"#), name: id)) == ["name"])
        #expect(fields(validator.route(try json(#"{"host":"a.test","path":"/","upstream":"\#(id)"}"#), id: "r")) == ["upstream"])
        #expect(Names.isValid("..."))
    }
}

@Suite("request_headers.set.Host is host or host:port")
struct HostHeaderTests {
    let validator = Validator()

    func fieldsFor(_ host: String) throws -> [String] {
        let body: JSONValue = [
            "host": "a.test", "path": "/", "upstream": "u", "request_headers": ["set": ["Host": .string(host)]],
        ]
        return fields(validator.route(body, id: "r"))
    }

    @Test(arguments: ["a.test", "A.Test", "a.test:8080", "1.2.3.4", "1.2.3.4:80", "[::1]", "[::1]:443", "[2001:db8::1]:8080"])
    func accepted(_ host: String) throws {
        #expect(try fieldsFor(host).isEmpty)
    }

    @Test(arguments: [
        "", " ", "a b", "é.test", "*.a.test", "a.test.", "a..test", "-a.test", "a_b.test", "a.test:", "a.test:0", "a.test:08",
        "a.test:65536", ":80", "a.test:80:1", "[::1]x", "[1::2::3]", "[1.2.3.4]", "[]", "a/b",
    ])
    func refused(_ host: String) throws {
        #expect(try fieldsFor(host) == ["request_headers.set.Host"])
    }

    @Test func onlyTheRequestDirectionIsAHost() throws {
        // a response header named Host is only a header
        let body: JSONValue = ["host": "a.test", "path": "/", "upstream": "u", "response_headers": ["set": ["Host": "x y"]]]
        #expect(fields(validator.route(body, id: "r")).isEmpty)
    }
}

@Suite("Endpoints: health_check false, unusable addresses")
struct EndpointContractTests {
    @Test func exemptEndpointIsWrittenOnlyWhenExempt() throws {
        let body =
            #"{"endpoints":[{"address":"10.0.0.1:80"},{"address":"10.0.0.2:80","health_check":false},"#
            + #"{"address":"10.0.0.3:80","health_check":true}]}"#
        let upstream = try Validator().upstream(json(body), name: "u").get()
        #expect(upstream.endpoints.map(\.activeCheck) == [true, false, true])
        #expect(upstream.canonicalDocument.contains(#"{"address":"10.0.0.2:80","health_check":false,"weight":1}"#))
        #expect(upstream.canonicalDocument.components(separatedBy: "health_check").count == 2)
        #expect(try Upstream(document: upstream.document) == upstream)
        #expect(
            fields(Validator().upstream(try json(#"{"endpoints":[{"address":"10.0.0.1:80","health_check":"no"}]}"#), name: "u")) == [
                "endpoints[0].health_check"
            ])
        // the one-endpoint API takes it too
        #expect(try Validator().endpoint(json(#"{"health_check":false}"#), address: "10.0.0.1:80").get().activeCheck == false)
    }

    @Test(arguments: [
        "0.0.0.0:80", "0.1.2.3:80", "[::]:80", "255.255.255.255:80", "224.0.0.1:80", "239.255.255.250:1900", "240.0.0.1:80",
        "[ff02::1]:80", "[::ffff:0.0.0.0]:80", "[::ffff:224.0.0.1]:80",
    ])
    func unusableAddressesAreRefused(_ address: String) throws {
        let body = #"{"endpoints":[{"address":"\#(address)"}]}"#
        for allow in [false, true] {
            let found = problems(Validator(allowLinkLocalEndpoints: allow).upstream(try json(body), name: "u"))
            #expect(found.map(\.field) == ["endpoints[0].address"])
            #expect(found.first?.message.contains("cannot be an upstream endpoint") == true)
        }
        #expect(fields(Validator().endpoint(nil, address: address)) == ["address"])
    }

    @Test(arguments: [
        "169.254.169.254:80", "169.254.0.1:8080", "[fe80::1]:80", "[febf::1]:80", "[fd00:ec2::254]:80",
        "[::ffff:169.254.169.254]:80",
    ])
    func linkLocalNeedsTheFlag(_ address: String) throws {
        let body = #"{"endpoints":[{"address":"\#(address)"}]}"#
        let found = problems(Validator().upstream(try json(body), name: "u"))
        #expect(found.map(\.field) == ["endpoints[0].address"])
        #expect(found.first?.message.contains("--allow-link-local-endpoints") == true)
        #expect(fields(Validator(allowLinkLocalEndpoints: true).upstream(try json(body), name: "u")).isEmpty)
    }

    @Test(arguments: ["127.0.0.1:80", "[::1]:80", "10.0.0.1:80", "[fec0::1]:80", "[fd00:ec2::253]:80", "223.255.255.255:80"])
    func usableAddressesAreAccepted(_ address: String) throws {
        #expect(fields(Validator().upstream(try json(#"{"endpoints":[{"address":"\#(address)"}]}"#), name: "u")).isEmpty)
    }

    @Test func storedDocumentsWithSuchEndpointsStillRead() throws {
        // the rule is the API's; the controller can still show and delete what is stored
        let upstream = try Upstream(document: json(#"{"name":"u","endpoints":[{"address":"0.0.0.0:80"}]}"#))
        #expect(upstream.endpoints.count == 1)
    }
}

@Suite("IPv4-mapped address ranges are stored as IPv4")
struct MappedRangeTests {
    @Test(arguments: [
        ("::ffff:127.0.0.0/104", "127.0.0.0/8"), ("::ffff:7f00:0/104", "127.0.0.0/8"), ("::ffff:0:0/96", "0.0.0.0/0"),
        ("::ffff:10.1.2.3", "10.1.2.3"), ("::ffff:10.1.2.3/128", "10.1.2.3/32"),
    ])
    func mapped(_ text: String, _ canonical: String) throws {
        let range = try CIDR.parse(text).get()
        #expect(!range.isIPv6)
        #expect(range.description == canonical)
    }

    @Test func shorterRangesStayIPv6() throws {
        #expect(try CIDR.parse("::/80").get().isIPv6)
        #expect(try CIDR.parse("2001:db8::/32").get().description == "2001:db8::/32")
    }

    @Test func aMappedDuplicateOfAnIPv4EntryIsADuplicate() throws {
        let body: JSONValue = ["host": "a.test", "path": "/", "upstream": "u", "deny": ["127.0.0.0/8", "::ffff:127.0.0.0/104"]]
        #expect(fields(Validator().route(body, id: "r")) == ["deny[1]"])
    }
}

@Suite("owner and source: set by writers, refused in API bodies")
struct OwnershipTests {
    @Test func apiBodiesMayNotSetThem() throws {
        let route = #"{"host":"a.test","path":"/","upstream":"u","owner":"k8s/switchyard","source":"k8s:default/bbs"}"#
        let found = problems(Validator().route(try json(route), id: "r"))
        #expect(found.map(\.field) == ["owner", "source"])
        #expect(found.allSatisfy { $0.message.contains("set by the writer, not the request") })
        #expect(fields(Validator().upstream(try json(#"{"endpoints":[],"owner":"x"}"#), name: "u")) == ["owner"])
        #expect(
            fields(Validator().batch(try json(#"{"routes":[{"id":"r","host":"a.test","path":"/","upstream":"u","source":"s"}]}"#))) == [
                "routes[0].source"
            ])
    }

    @Test func writersSetThemAndTheyAreStoredOnlyWhenSet() throws {
        let writer = Validator(acceptsOwnership: true)
        let route = try writer.route(
            json(#"{"host":"a.test","path":"/","upstream":"u","owner":"k8s/switchyard","source":"k8s:default/bbs"}"#), id: "r"
        ).get()
        #expect(route.owner == "k8s/switchyard" && route.source == "k8s:default/bbs")
        #expect(route.canonicalDocument.contains(#""owner":"k8s/switchyard""#))
        #expect(try Route(document: route.document) == route)
        let plain = try writer.route(json(#"{"host":"a.test","path":"/","upstream":"u"}"#), id: "r").get()
        #expect(!plain.canonicalDocument.contains("owner") && !plain.canonicalDocument.contains("source"))
        let upstream = try writer.upstream(json(#"{"endpoints":[],"owner":"k8s/switchyard"}"#), name: "u").get()
        #expect(try Upstream(document: upstream.document).owner == "k8s/switchyard")
    }

    @Test(arguments: ["", String(repeating: "x", count: 254), "é", "a\u{1}b", "a\u{7f}b"])
    func writersMustUsePrintableASCII(_ value: String) throws {
        let body: JSONValue = ["host": "a.test", "path": "/", "upstream": "u", "owner": .string(value)]
        #expect(fields(Validator(acceptsOwnership: true).route(body, id: "r")) == ["owner"])
        // a stored document with such a value reads leniently (the member is ignored)
        let stored: JSONValue = ["id": "r", "host": "a.test", "path": "/", "upstream": "u", "owner": .string(value)]
        #expect(try Route(document: stored).owner == nil)
    }

    @Test func certificatesTooWhenRequested() {
        let body: JSONValue = ["cert": "x", "key": "y", "owner": "k8s/switchyard"]
        guard case .failure(let failure) = CertificateValidator().certificate(body, id: "c", now: 0) else {
            Issue.record("accepted")
            return
        }
        #expect(failure.problems.map(\.field) == ["owner"])
        #expect(failure.problems.first?.message.contains("set by the writer") == true)
    }
}
