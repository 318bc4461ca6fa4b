import Testing

@testable import SwitchyardCore

private func json(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

private func problems<T>(_ result: Result<T, ValidationFailure>) -> [FieldError] {
    if case .failure(let failure) = result { return failure.problems }
    return []
}

/// `{"host":"a.test","path":"/",<extra>}` as a route body.
private func routeBody(_ extra: String) throws -> JSONValue { try json(#"{"host":"a.test","path":"/","# + extra + "}") }

@Suite("CIDR ranges")
struct CIDRTests {
    @Test(arguments: [
        ("10.0.0.0/8", "10.0.0.0/8"), ("192.0.2.7", "192.0.2.7"), ("0.0.0.0/0", "0.0.0.0/0"), ("192.0.2.7/32", "192.0.2.7/32"),
        ("2001:DB8:0::/32", "2001:db8::/32"), ("::1", "::1"), ("::/0", "::/0"), ("fe80::/10", "fe80::/10"),
        ("2001:db8::1/128", "2001:db8::1/128"),
    ])
    func parsesAndPrintsCanonically(_ text: String, _ canonical: String) throws {
        #expect(try CIDR.parse(text).get().description == canonical)
    }

    @Test func hostBitsGetAHint() {
        guard case .failure(let v4) = CIDR.parse("10.0.0.1/8") else { Issue.record("accepted"); return }
        #expect(v4.message.contains("did you mean 10.0.0.0/8"))
        guard case .failure(let v6) = CIDR.parse("2001:db8::1/32") else { Issue.record("accepted"); return }
        #expect(v6.message.contains("did you mean 2001:db8::/32"))
        #expect((try? CIDR.parse("10.0.0.128/25").get()) != nil)
        #expect((try? CIDR.parse("10.0.0.129/25").get()) == nil)
    }

    @Test(arguments: [
        "", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/08", "10.0.0.0/-1", "010.0.0.0/8", "10.0.0/8", "::1/129",
        "[::1]", "::1%eth0", "10.0.0.0/8/8", "example.com", "10.0.0.0 /8",
    ])
    func refusesMalformedRanges(_ text: String) {
        guard case .failure = CIDR.parse(text) else { Issue.record("accepted '\(text)'"); return }
    }

    @Test func containment() throws {
        let net = try CIDR.parse("10.1.0.0/16").get()
        #expect(net.contains([10, 1, 200, 3]))
        #expect(!net.contains([10, 2, 0, 1]))
        #expect(!net.contains(Array(repeating: 0, count: 16)))
        #expect(try CIDR.parse("0.0.0.0/0").get().contains([203, 0, 113, 9]))
    }
}

@Suite("Traffic-policy validation")
struct PolicyValidationTests {
    let validator = Validator()

    @Test func unknownMembersOfEveryPolicyObjectAreNamed() throws {
        let body = try routeBody(
            """
            "split":[{"upstream":"a","weight":1,"w":2},{"upstream":"b"}],"split_sticky":{"cookie":"c","ttl":1},
            "canary":{"upstream":"c","header":"X-C","colour":1},"rewrite":{"strip_prefix":true,"x":1},
            "request_headers":{"set":{"X-A":"1"},"add":{}},"response_headers":{"remove":["X-B"],"del":[]},
            "timeouts":{"read_ms":5,"idle_ms":1},"rate_limit":{"rps":1,"per":"s"}
            """)
        let fields = problems(validator.route(body, id: "r")).filter { $0.code == .unknownField }.map(\.field)
        #expect(
            fields == [
                "split[0].w", "split_sticky.ttl", "canary.colour", "rewrite.x", "request_headers.add",
                "response_headers.del", "timeouts.idle_ms", "rate_limit.per",
            ])
        let redirect = try routeBody(#""redirect":{"to":"/x","code":301}"#)
        #expect(problems(validator.route(redirect, id: "r")).map(\.field) == ["redirect.code"])
        let sticky = try json(#"{"balance":"sticky","sticky":{"cookie":"s","max_age":1}}"#)
        #expect(problems(validator.upstream(sticky, name: "u")).map(\.field) == ["sticky.max_age"])
    }

    @Test func defaultsAreWrittenOut() throws {
        let route = try validator.route(
            routeBody(
                """
                "split":[{"upstream":"a"},{"upstream":"b","weight":3}],"split_sticky":{},
                "rate_limit":{"rps":5},"allow":[],"canary":null
                """), id: "r"
        ).get()
        #expect(
            route.canonicalDocument == #"{"host":"a.test","id":"r","match":"prefix","path":"/","priority":0,"#
                + #""rate_limit":{"burst":0,"key":"ip","rps":5},"split":[{"upstream":"a","weight":1},{"upstream":"b","weight":3}],"#
                + #""split_sticky":{"cookie":"sy_split","ttl_s":3600}}"#)
        let redirect = try validator.route(routeBody(#""redirect":{"to":"https://example.com"}"#), id: "r").get()
        #expect(redirect.upstream == nil)
        #expect(redirect.upstreams.isEmpty)
        #expect(redirect.canonicalDocument.hasSuffix(#""redirect":{"keep_path":false,"status":301,"to":"https://example.com"}}"#))
        let sticky = try validator.upstream(json(#"{"balance":"sticky"}"#), name: "u").get()
        #expect(
            sticky.canonicalDocument.contains(#""sticky":{"cookie":"sy_sticky","httponly":true,"path":"/","secure":false,"ttl_s":3600}"#))
        let domain = try validator.upstream(json(#"{"balance":"sticky","sticky":{"domain":"Example.COM"}}"#), name: "u").get()
        #expect(domain.sticky?.domain == "example.com")
    }

    @Test func corsIsStoredWithItsDefaults() throws {
        let route = try validator.route(routeBody(#""upstream":"b","cors":{"origins":["https://app.test","http://a.test:8080"]}"#), id: "r")
            .get()
        #expect(
            route.canonicalDocument.contains(
                #""cors":{"credentials":false,"expose_headers":[],"headers":[],"max_age_s":600,"#
                    + #""methods":["GET","HEAD","POST"],"origins":["https://app.test","http://a.test:8080"]}"#))
    }

    @Test(arguments: [
        (#"{"origins":["*"],"credentials":true}"#, "cors.credentials"),
        (#"{"origins":["*"],"headers":["*"],"credentials":true}"#, "cors.credentials"),
        (#"{"origins":["https://a.test"],"headers":["*"],"credentials":true}"#, "cors.credentials"),
        (#"{"origins":["*","https://a.test"]}"#, "cors.origins"),
        (#"{"origins":[]}"#, "cors.origins"),
        (#"{"methods":["GET"]}"#, "cors.origins"),
        (#"{"origins":["https://a.test/"]}"#, "cors.origins[0]"),
        (#"{"origins":["https://A.test"]}"#, "cors.origins[0]"),
        (#"{"origins":["https://a.test:080"]}"#, "cors.origins[0]"),
        (#"{"origins":["ftp://a.test"]}"#, "cors.origins[0]"),
        (#"{"origins":["https://a.test","https://a.test"]}"#, "cors.origins[1]"),
        (#"{"origins":["*"],"methods":["get"]}"#, "cors.methods[0]"),
        (#"{"origins":["*"],"headers":["a b"]}"#, "cors.headers[0]"),
        (#"{"origins":["*"],"max_age_s":86401}"#, "cors.max_age_s"),
        (#"{"origins":["*"],"vary":true}"#, "cors.vary"),
        (#"{"origins":["http://[::0001]:3000"]}"#, "cors.origins[0]"),  // not as browsers write it
        (#"{"origins":["http://[::FFFF]"]}"#, "cors.origins[0]"),
        (#"{"origins":["http://[::1]:0"]}"#, "cors.origins[0]"),
        (#"{"origins":["http://[::ffff:1.2.3.4]"]}"#, "cors.origins[0]"),
        (#"{"origins":["http://[::1"]}"#, "cors.origins[0]"),
        (#"{"origins":["http://[::1]x"]}"#, "cors.origins[0]"),
    ])
    func corsProblemsNameTheField(_ cors: String, _ field: String) throws {
        let found = try problems(validator.route(routeBody(#""upstream":"b","cors":"# + cors), id: "r"))
        #expect(found.first?.field == field, "\(found)")
    }

    @Test func corsTakesIPv6OriginsAsBrowsersSendThem() throws {
        let body = try routeBody(#""upstream":"b","cors":{"origins":["http://[::1]:3000","https://[2001:db8::1]"]}"#)
        let route = try validator.route(body, id: "r").get()
        #expect(route.canonicalDocument.contains(#""origins":["http://[::1]:3000","https://[2001:db8::1]"]"#))
    }

    @Test func errorPagesAreStoredWithTheirContentType() throws {
        let route = try validator.route(
            routeBody(#""upstream":"b","error_pages":{"503":{"body":"<h1>down</h1>"},"429":{"redirect":"/slow"}}"#), id: "r"
        ).get()
        #expect(
            route.canonicalDocument.contains(
                #""error_pages":{"429":{"redirect":"/slow"},"503":{"body":"<h1>down</h1>","content_type":"text/html; charset=utf-8"}}"#))
    }

    @Test(arguments: [
        (#"{"503":{"body":"\#(String(repeating: "x", count: 16_385))"}}"#, "error_pages.503.body"),
        (#"{"200":{"body":"x"}}"#, "error_pages.200"),
        (#"{"5xx":{"body":"x"}}"#, "error_pages.5xx"),
        (#"{"503":{}}"#, "error_pages.503"),
        (#"{"503":{"body":"x","redirect":"/a"}}"#, "error_pages.503.redirect"),
        (#"{"503":{"redirect":"//evil.test"}}"#, "error_pages.503.redirect"),
        (#"{"503":{"redirect":"/a","content_type":"text/html"}}"#, "error_pages.503.content_type"),
        (#"{"503":{"body":"x","content_type":"a\nb"}}"#, "error_pages.503.content_type"),
        (#"{}"#, "error_pages"),
    ])
    func errorPageProblemsNameTheField(_ pages: String, _ field: String) throws {
        let found = try problems(validator.route(routeBody(#""upstream":"b","error_pages":"# + pages), id: "r"))
        #expect(found.first?.field == field, "\(found)")
    }

    @Test func gzipIsStoredWithItsDefaultsAndChecked() throws {
        let route = try validator.route(routeBody(#""upstream":"b","gzip":{}"#), id: "r").get()
        #expect(
            route.canonicalDocument.contains(
                #""gzip":{"min_bytes":1024,"types":["text/html","text/css","text/plain","text/javascript","#
                    + #""application/javascript","application/json","image/svg+xml"]}"#))
        for (gzip, field) in [
            (#"{"types":["Text/HTML"]}"#, "gzip.types[0]"), (#"{"types":["text/html; charset=utf-8"]}"#, "gzip.types[0]"),
            (#"{"types":[]}"#, "gzip.types"), (#"{"types":["text/html","text/html"]}"#, "gzip.types[1]"),
            (#"{"min_bytes":-1}"#, "gzip.min_bytes"), (#"{"level":9}"#, "gzip.level"),
        ] {
            let found = try problems(validator.route(routeBody(#""upstream":"b","gzip":"# + gzip), id: "r"))
            #expect(found.first?.field == field, "\(gzip): \(found)")
        }
        let redirect = try problems(validator.route(routeBody(#""redirect":{"to":"/x"},"gzip":{}"#), id: "r"))
        #expect(redirect.map(\.field) == ["gzip"])
    }

    @Test func routesWithoutPoliciesKeepTheirDocument() throws {
        let route = try validator.route(routeBody(#""upstream":"b""#), id: "r").get()
        #expect(route.canonicalDocument == #"{"host":"a.test","id":"r","match":"prefix","path":"/","priority":0,"upstream":"b"}"#)
        let upstream = try validator.upstream(json(#"{"balance":"least_conn"}"#), name: "u").get()
        #expect(!upstream.canonicalDocument.contains("hash_on") && !upstream.canonicalDocument.contains("sticky"))
        #expect(upstream.canonicalDocument.contains(#""balance":"least_conn""#))
    }

    @Test func referencesListEveryUpstreamOnceWithItsField() throws {
        let route = try validator.route(
            routeBody(
                """
                "split":[{"upstream":"blue","weight":1},{"upstream":"green","weight":1}],"canary":{"upstream":"blue","cookie":"c"}
                """), id: "r"
        ).get()
        #expect(route.upstreams == ["blue", "green"])
        #expect(route.upstreamReferences.map(\.field) == ["split[0].upstream", "split[1].upstream", "canary.upstream"])
        #expect(ApplyOperation.put(route).refs == ["blue", "green"])
        let canary = try validator.route(routeBody(#""upstream":"a","canary":{"upstream":"b","header":"X-C"}"#), id: "r").get()
        #expect(ApplyOperation.put(canary).arguments[4] == "a,b")
    }

    @Test func batchesNameSplitAndCanaryReferences() throws {
        let body = try json(
            """
            {"upstreams":[{"name":"blue"}],"routes":[
              {"id":"plain","host":"a.test","path":"/","upstream":"blue"},
              {"id":"ab","host":"a.test","path":"/ab","split":[{"upstream":"blue","weight":1},{"upstream":"ghost","weight":1}]},
              {"id":"can","host":"a.test","path":"/c","upstream":"blue","canary":{"upstream":"old","header":"X-C"}}],
             "delete":{"upstreams":["old"]}}
            """)
        let (batch, found) = validator.batchCollectingProblems(body)
        #expect(found.map(\.field) == ["routes[2].canary.upstream"])
        #expect(found.first?.code == .missingUpstream)
        #expect(batch.externalReferences.map(\.field) == ["routes[1].split[1].upstream"])
        #expect(batch.externalReferences.map(\.upstream) == ["ghost"])
        // sy_apply's missing_upstream names route and upstream; the field follows from both
        #expect(batch.upstreamField(ofRoute: "ab", upstream: "ghost") == "routes[1].split[1].upstream")
        #expect(batch.upstreamField(ofRoute: "can", upstream: "old") == "routes[2].canary.upstream")
        #expect(batch.upstreamField(ofRoute: "plain", upstream: "blue") == "routes[0].upstream")
        #expect(batch.upstreamField(ofRoute: "unknown", upstream: "x") == "upstream")
    }

    @Test func rewriteTemplatesAreCheckedAgainstTheRegex() throws {
        func fields(_ rewrite: String) throws -> [String] {
            problems(validator.route(try routeBody(#""upstream":"b","rewrite":"# + rewrite), id: "r")).map(\.field)
        }
        #expect(try fields(#"{"regex":"^/(a)/(b)","replacement":"/$2/${1}/$$/$0"}"#).isEmpty)
        #expect(try fields(#"{"regex":"^/(a)/(b)","replacement":"/$3"}"#) == ["rewrite.replacement"])
        #expect(try fields(#"{"regex":"^/a","replacement":"/$1"}"#) == ["rewrite.replacement"])
        #expect(try fields(#"{"regex":"^/(a)","replacement":"/${1"}"#) == ["rewrite.replacement"])
        #expect(try fields(#"{"regex":"^/(a)","replacement":"/$"}"#) == ["rewrite.replacement"])
        #expect(try fields(#"{"regex":"^/(a","replacement":"/x"}"#) == ["rewrite.regex"])
        #expect(try fields(#"{"replace_prefix":"/x","replacement":"/y"}"#) == ["rewrite.replacement"])
        #expect(Rewrite.templateProblem("/$10", captures: 10) == nil)
        #expect(Rewrite.templateProblem("/$10", captures: nil) == nil)
        #expect(Rewrite.templateProblem("/$10", captures: 9) != nil)
    }

    @Test func headerNamesAreCaseInsensitive() throws {
        let dup = problems(validator.route(try routeBody(#""upstream":"b","request_headers":{"set":{"X-A":"1","x-a":"2"}}"#), id: "r"))
        #expect(dup.map(\.field) == ["request_headers.set.x-a"])
        #expect(dup.first?.code == .duplicate)
        let owned = problems(validator.route(try routeBody(#""upstream":"b","request_headers":{"remove":["CONNECTION"]}"#), id: "r"))
        #expect(owned.map(\.field) == ["request_headers.remove[0]"])
        // Host may be set; Trailer is only refused in responses
        let ok = try validator.route(routeBody(#""upstream":"b","request_headers":{"set":{"Host":"x","Trailer":"y"}}"#), id: "r").get()
        #expect(ok.policies.requestHeaders?.set.map(\.name) == ["Host", "Trailer"])
        #expect(
            problems(validator.route(try routeBody(#""upstream":"b","response_headers":{"set":{"Trailer":"y"}}"#), id: "r"))
                .map(\.field) == ["response_headers.set.Trailer"])
    }

    @Test func redirectTargets() throws {
        func fields(_ redirect: String) throws -> [String] {
            problems(validator.route(try routeBody(#""redirect":"# + redirect), id: "r")).map(\.field)
        }
        #expect(try fields(#"{"to":"http://a.test:8080/x?y=1#z"}"#).isEmpty)
        #expect(try fields(#"{"to":"HTTPS://a.test"}"#).isEmpty)
        #expect(try fields(#"{"to":"/x","keep_path":true,"status":307}"#).isEmpty)
        #expect(try fields(#"{"to":"//evil.test/"}"#) == ["redirect.to"])
        #expect(try fields(#"{"to":"https:///x"}"#) == ["redirect.to"])
        #expect(try fields(#"{"to":"javascript:alert(1)"}"#) == ["redirect.to"])
        #expect(try fields(#"{"to":"/a b"}"#) == ["redirect.to"])
        #expect(try fields(#"{"to":"/x?y=1","keep_path":true}"#) == ["redirect.to"])
        #expect(try fields(#"{"status":301}"#) == ["redirect.to"])
        #expect(try fields(#""/x""#) == ["redirect"])
    }

    @Test func redirectRoutesRefuseEveryProxyMember() throws {
        let body = try routeBody(
            """
            "redirect":{"to":"/x"},"upstream":"b","split":[],"split_sticky":{},"canary":{},"rewrite":{},
            "request_headers":{},"timeouts":{},"max_body_bytes":1,
            "response_headers":{"set":{"X-A":"1"}},"allow":["10.0.0.0/8"],"deny":["10.1.0.0/16"],"rate_limit":{"rps":1}
            """)
        #expect(
            problems(validator.route(body, id: "r")).map(\.field)
                == ["upstream", "split", "split_sticky", "canary", "rewrite", "request_headers", "timeouts", "max_body_bytes"])
    }

    @Test func storedRedirectRoutesDecode() throws {
        let doc =
            #"{"version":4,"host":"a.test","id":"r","match":"prefix","path":"/","priority":0,"redirect":{"keep_path":true,"status":308,"to":"/n"}}"#
        let stored = try StoredDocument.route(Array(doc.utf8))
        #expect(stored.value.policies.redirect == Redirect(to: "/n", status: 308, keepPath: true))
        #expect(stored.value.upstream == nil)
        #expect(throws: DocumentError("upstream")) {
            try StoredDocument.route(Array(#"{"version":4,"host":"a.test","id":"r","path":"/"}"#.utf8))
        }
    }
}
