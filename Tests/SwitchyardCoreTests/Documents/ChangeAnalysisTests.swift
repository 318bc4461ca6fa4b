import Testing

@testable import SwitchyardCore

@Suite("Change analysis: document diffs and routing impact")
struct ChangeAnalysisTests {
    func route(_ id: String, _ path: String, _ match: MatchKind = .prefix, host: String = "a.test", priority: Int = 0) -> Route {
        Route(id: id, host: host, path: path, match: match, upstream: "u", priority: priority)
    }

    func endpoint(_ text: String, check: Bool = true) -> Endpoint {
        Endpoint(address: try! EndpointAddress.parse(text).get(), activeCheck: check)
    }

    // MARK: Diff

    @Test func diffNamesEveryChangedFieldAndIgnoresTheVersion() throws {
        let before = try JSONValue.parse(
            #"{"version":3,"name":"u","endpoints":[{"address":"a","weight":1},{"address":"b","weight":1}],"retries":2}"#)
        let after = try JSONValue.parse(
            #"{"version":9,"name":"u","endpoints":[{"address":"a","weight":5},{"address":"b","weight":1}],"hsts":{"max_age_s":1}}"#)
        let changes = DocumentDiff.fields(before, after)
        #expect(changes.map(\.field) == ["endpoints[0].weight", "hsts", "retries"])
        #expect(changes[0].before == .integer(1) && changes[0].after == .integer(5))
        #expect(changes[1].before == nil)
        #expect(changes[2].after == nil)
    }

    @Test func arraysOfAnotherLengthChangeAsAWholeAndCreationsListEveryField() throws {
        let before = try JSONValue.parse(#"{"endpoints":[1]}"#)
        let after = try JSONValue.parse(#"{"endpoints":[1,2]}"#)
        #expect(
            DocumentDiff.fields(before, after) == [
                FieldChange(field: "endpoints", before: .array([.integer(1)]), after: .array([.integer(1), .integer(2)]))
            ])
        #expect(DocumentDiff.fields(nil, after).count == 1)
        #expect(DocumentDiff.fields(after, after).isEmpty)
    }

    // MARK: Shadowing

    @Test func theSameExactPathLosesToTheHigherPriorityThenTheSmallerId() {
        let shadows = RoutingImpact.shadowed([route("b", "/x", .exact), route("a", "/x", .exact), route("c", "/x", .exact, priority: 1)])
        #expect(shadows.map(\.route) == ["a", "b"])
        #expect(shadows.allSatisfy { $0.by == "c" })
        #expect(RoutingImpact.shadowed([route("a", "/x", .exact), route("b", "/y", .exact)]).isEmpty)
    }

    @Test func aPrefixShadowsASegmentPrefixOfTheSamePathButNotTheOtherWayRound() {
        // prefix /api matches /apix too, which segment_prefix /api does not: no full shadow
        let segmentWins = RoutingImpact.shadowed([route("p", "/api", .prefix), route("s", "/api", .segmentPrefix, priority: 1)])
        #expect(segmentWins.isEmpty)
        let prefixWins = RoutingImpact.shadowed([route("p", "/api", .prefix, priority: 1), route("s", "/api", .segmentPrefix)])
        #expect(prefixWins == [RouteShadow(route: "s", by: "p", reason: prefixWins.first?.reason ?? "")])
        // a longer prefix only takes part of the shorter one's requests
        #expect(RoutingImpact.shadowed([route("short", "/a"), route("long", "/a/b", priority: 9)]).isEmpty)
    }

    @Test func hostsAreSeparateBucketsAndWildcardKindsToo() {
        #expect(RoutingImpact.shadowed([route("a", "/", host: "a.test"), route("b", "/", host: "b.test", priority: 5)]).isEmpty)
        var one = route("one", "/", host: "*.x.test", priority: 5)
        one.wildcard = .oneLabel
        #expect(RoutingImpact.shadowed([one, route("any", "/", host: "*.x.test")]).isEmpty)
    }

    @Test func regexesBehindACatchAllPrefixAreUnreachable() {
        let shadows = RoutingImpact.shadowed([route("all", "/", .prefix), route("re", "^/img/.*png$", .regex, priority: 100)])
        #expect(shadows.map(\.route) == ["re"])
        #expect(shadows.first?.by == "all")
        #expect(RoutingImpact.shadowed([route("some", "/a", .prefix), route("re", "^/img", .regex)]).isEmpty)
        let twins = RoutingImpact.shadowed([route("r1", "^/img", .regex), route("r2", "^/img", .regex)])
        #expect(twins.map(\.route) == ["r2"])
    }

    // MARK: Endpoints and health

    @Test func routesWithoutAnEndpointThatCanTakeARequest() {
        let checked = Upstream(name: "u", endpoints: [endpoint("127.0.0.1:1"), endpoint("127.0.0.1:2")], healthCheck: HealthCheck())
        let exempt = Upstream(name: "e", endpoints: [endpoint("127.0.0.1:3", check: false)], healthCheck: HealthCheck())
        let empty = Upstream(name: "z")
        var onE = route("on-e", "/")
        onE.upstream = "e"
        var onZ = route("on-z", "/")
        onZ.upstream = "z"
        let routes = [route("on-u", "/"), onE, onZ]
        let upstreams = ["u": checked, "e": exempt, "z": empty]
        let allDown: [String: Set<String>] = ["u": ["127.0.0.1:1", "127.0.0.1:2"], "e": ["127.0.0.1:3"]]
        #expect(
            RoutingImpact.routesWithoutHealthyEndpoints(routes, upstreams: upstreams, down: allDown)
                == [RouteWithoutEndpoints(route: "on-u", upstreams: ["u"]), RouteWithoutEndpoints(route: "on-z", upstreams: ["z"])])
        let oneUp: [String: Set<String>] = ["u": ["127.0.0.1:1"]]
        #expect(RoutingImpact.routesWithoutHealthyEndpoints(routes, upstreams: upstreams, down: oneUp).map(\.route) == ["on-z"])
        #expect(RoutingImpact.upstreamsWithoutEndpoints([checked, empty]) == ["z"])
    }
}
