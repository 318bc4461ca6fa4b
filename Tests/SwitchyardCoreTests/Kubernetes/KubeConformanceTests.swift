// The Ingress path and host rules as the Kubernetes ingress conformance features state them
// (Exact, Prefix with and without trailing slashes, single-label wildcards, default backend),
// written as our own tables: each case translates Ingresses and routes a request over the
// result with the edge's rules (ReferenceRouter), expecting the Service that answers.

import Testing

@testable import SwitchyardCore

@Suite("Kubernetes conformance: paths and hosts")
struct KubeConformanceTests {
    typealias P = Kube.P

    struct Case: CustomStringConvertible {
        var host: String
        var path: String
        var expect: String?
        init(_ host: String, _ path: String, _ expect: String?) {
            self.host = host
            self.path = path
            self.expect = expect
        }
        var description: String { "\(host)\(path) -> \(expect ?? "404")" }
    }

    func run(_ ingresses: [K8sIngress], services: [String], _ cases: [Case], sourceLocation: SourceLocation = #_sourceLocation) {
        let objects = ingresses.map(K8sObject.ingress) + services.map { .service(Kube.service($0)) }
        let translation = Kube.translate(objects)
        #expect(translation.problems.filter { $0.severity == .error } == [], sourceLocation: sourceLocation)
        let router = ReferenceRouter(routes: translation.routes)
        for c in cases {
            let got = router.service(host: c.host, path: c.path, in: translation)
            #expect(got == c.expect.map { "default/\($0)" }, "\(c)", sourceLocation: sourceLocation)
        }
    }

    @Test func exactPaths() {
        let ingress = Kube.ingress("exact", rules: [("exact-path-rules", [P("/foo", .exact, "foo-exact")])])
        run(
            [ingress], services: ["foo-exact"],
            [
                Case("exact-path-rules", "/foo", "foo-exact"),
                Case("exact-path-rules", "/foo/", nil),
                Case("exact-path-rules", "/foo/bar", nil),
                Case("exact-path-rules", "/fo", nil),
                Case("exact-path-rules", "/", nil),
            ])
    }

    @Test func prefixPathsAreElementWise() {
        let ingress = Kube.ingress(
            "prefix",
            rules: [
                (
                    "prefix-path-rules",
                    [P("/foo", .prefix, "foo-prefix"), P("/aaa/bbb", .prefix, "aaa-slash-bbb-prefix"), P("/aaa", .prefix, "aaa-prefix")]
                )
            ])
        run(
            [ingress], services: ["foo-prefix", "aaa-slash-bbb-prefix", "aaa-prefix"],
            [
                Case("prefix-path-rules", "/foo", "foo-prefix"),
                Case("prefix-path-rules", "/foo/", "foo-prefix"),
                Case("prefix-path-rules", "/foo/bar", "foo-prefix"),
                Case("prefix-path-rules", "/foobar", nil),
                Case("prefix-path-rules", "/aaa/bbb", "aaa-slash-bbb-prefix"),
                Case("prefix-path-rules", "/aaa/bbb/", "aaa-slash-bbb-prefix"),
                Case("prefix-path-rules", "/aaa/bbbxyz", "aaa-prefix"),
                Case("prefix-path-rules", "/aaa/ccc", "aaa-prefix"),
                Case("prefix-path-rules", "/aaa", "aaa-prefix"),
                Case("prefix-path-rules", "/", nil),
            ])
    }

    @Test func prefixWithTrailingSlashIsTheSameRule() {
        let ingress = Kube.ingress("slash", rules: [("trailing", [P("/foo/", .prefix, "foo-slash"), P("/", .prefix, "root")])])
        run(
            [ingress], services: ["foo-slash", "root"],
            [
                Case("trailing", "/foo", "foo-slash"),
                Case("trailing", "/foo/", "foo-slash"),
                Case("trailing", "/foo/x/y", "foo-slash"),
                Case("trailing", "/foox", "root"),
                Case("trailing", "/", "root"),
                Case("trailing", "/anything", "root"),
            ])
        let translation = Kube.translate([.ingress(ingress), .service(Kube.service("foo-slash")), .service(Kube.service("root"))])
        // stored without the trailing slash (the contract: one stored form)
        #expect(translation.routes(host: "trailing", path: "/foo").first?.match == "segment_prefix")
        #expect(translation.routes(host: "trailing", path: "/foo/").isEmpty)
        #expect(translation.routes(host: "trailing", path: "/").first?.match == "segment_prefix")
    }

    @Test func exactBeatsPrefixAndLongestPrefixWins() {
        let ingress = Kube.ingress(
            "mixed",
            rules: [("mixed", [P("/foo", .prefix, "foo-prefix"), P("/foo", .exact, "foo-exact"), P("/foo/bar", .prefix, "foo-bar")])])
        run(
            [ingress], services: ["foo-prefix", "foo-exact", "foo-bar"],
            [
                Case("mixed", "/foo", "foo-exact"),
                Case("mixed", "/foo/", "foo-prefix"),
                Case("mixed", "/foo/bar", "foo-bar"),
                Case("mixed", "/foo/bar/baz", "foo-bar"),
                Case("mixed", "/foo/barbaz", "foo-prefix"),
            ])
    }

    @Test func hostRules() {
        let ingress = Kube.ingress(
            "hosts",
            rules: [
                ("foo.bar.com", [P("/", .prefix, "exact-host")]),
                ("*.foo.com", [P("/", .prefix, "wildcard-host")]),
                ("*.bar.com", [P("/", .prefix, "bar-wildcard")]),
            ])
        run(
            [ingress], services: ["exact-host", "wildcard-host", "bar-wildcard"],
            [
                Case("foo.bar.com", "/", "exact-host"),
                Case("bar.foo.com", "/", "wildcard-host"),
                Case("bar.foo.com", "/x", "wildcard-host"),
                Case("baz.bar.foo.com", "/", nil),  // one label only
                Case("foo.com", "/", nil),  // never the bare parent
                Case("other.bar.com", "/", "bar-wildcard"),
                Case("x.other.bar.com", "/", nil),
                Case("unknown.example", "/", nil),
            ])
    }

    @Test func ruleWithoutHostServesEveryOtherHost() {
        let ingress = Kube.ingress("any", rules: [(nil, [P("/api", .prefix, "any-host")]), ("named.example", [P("/", .prefix, "named")])])
        run(
            [ingress], services: ["any-host", "named"],
            [
                Case("whatever.example", "/api", "any-host"),
                Case("10.0.0.1", "/api/x", "any-host"),
                Case("whatever.example", "/other", nil),
                Case("named.example", "/api", "named"),  // a host with routes does not fall through
            ])
    }

    @Test func defaultBackendOnlyIngressServesEverything() {
        let ingress = Kube.ingress("default-only", defaultBackend: ("default-backend", 80))
        run(
            [ingress], services: ["default-backend"],
            [Case("any.example", "/", "default-backend"), Case("other.example", "/some/path", "default-backend")])
    }

    @Test func defaultBackendServesUnmatchedPathsOfItsHosts() {
        let ingress = Kube.ingress("with-default", rules: [("app.example", [P("/api", .prefix, "api")])], defaultBackend: ("fallback", 80))
        run(
            [ingress], services: ["api", "fallback"],
            [
                Case("app.example", "/api/v1", "api"),
                Case("app.example", "/", "fallback"),
                Case("app.example", "/apix", "fallback"),
                Case("elsewhere.example", "/", nil),  // rules given: the default backend is for its hosts
            ])
    }

    @Test func implementationSpecificIsPlainPrefixOrAnchoredRegex() {
        let plain = Kube.ingress("plain", rules: [("plain.example", [P("/api", .implementationSpecific, "api")])])
        let regex = Kube.ingress(
            "regex", annotations: ["nginx.ingress.kubernetes.io/use-regex": "true"],
            rules: [("regex.example", [P("/users/[0-9]+", .implementationSpecific, "users")])])
        run(
            [plain, regex], services: ["api", "users"],
            [
                Case("plain.example", "/api", "api"),
                Case("plain.example", "/apix", "api"),  // switchyard's prefix: any character boundary
                Case("regex.example", "/users/42", "users"),
                Case("regex.example", "/USERS/42", "users"),  // case-insensitive, as ingress-nginx's ~*
                Case("regex.example", "/x/users/42", nil),  // anchored at the start
            ])
    }
}
