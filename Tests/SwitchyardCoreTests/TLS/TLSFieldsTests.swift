import Testing

@testable import SwitchyardCore

@Suite("TLS members of routes and upstreams; TLS in the edge template")
struct TLSFieldsTests {
    let validator = Validator()

    func routeBody(_ extra: String) -> JSONValue {
        try! JSONValue.parse(#"{"host":"a.example.com","path":"/","upstream":"u""# + (extra.isEmpty ? "" : ",\(extra)") + "}")
    }

    func upstreamBody(_ extra: String) -> JSONValue {
        try! JSONValue.parse(#"{"endpoints":[{"address":"10.0.0.1:443"}]"# + (extra.isEmpty ? "" : ",\(extra)") + "}")
    }

    func fields(_ result: Result<some Any, ValidationFailure>) -> [String] {
        if case .failure(let f) = result { return f.problems.map(\.field) }
        return []
    }

    @Test func routesTakeARedirectAndHSTS() throws {
        let route = try validator.route(routeBody(#""https_redirect":true,"hsts":{"max_age_s":600,"include_subdomains":true}"#), id: "r")
            .get()
        #expect(route.tls.httpsRedirect)
        #expect(route.tls.hsts == HSTS(maxAgeSeconds: 600, includeSubdomains: true))
        #expect(route.tls.hsts?.headerValue == "max-age=600; includeSubDomains")
        #expect(
            route.canonicalDocument.contains(#""hsts":{"include_subdomains":true,"max_age_s":600,"preload":false},"https_redirect":true"#))
        // round trip through the stored form
        let stored = try StoredDocument.route(Array(("{\"version\":4," + route.canonicalDocument.dropFirst()).utf8))
        #expect(stored.value == route)
        // defaults: max_age_s one year
        #expect(try validator.route(routeBody(#""hsts":{}"#), id: "r").get().tls.hsts?.maxAgeSeconds == 31_536_000)
    }

    @Test func routesWithoutTLSKeepTheirDocument() throws {
        let route = try validator.route(routeBody(#""https_redirect":false"#), id: "r").get()
        #expect(route.canonicalDocument == #"{"host":"a.example.com","id":"r","match":"prefix","path":"/","priority":0,"upstream":"u"}"#)
    }

    @Test func badRouteMembersAreNamed() {
        #expect(fields(validator.route(routeBody(#""https_redirect":"yes""#), id: "r")) == ["https_redirect"])
        #expect(fields(validator.route(routeBody(#""hsts":600"#), id: "r")) == ["hsts"])
        #expect(fields(validator.route(routeBody(#""hsts":{"max_age_s":-5}"#), id: "r")) == ["hsts.max_age_s"])
        #expect(fields(validator.route(routeBody(#""hsts":{"maxage":5}"#), id: "r")) == ["hsts.maxage"])
        #expect(fields(validator.route(routeBody(#""hsts":{"max_age_s":600,"preload":true}"#), id: "r")) == ["hsts.preload"])
        #expect(fields(validator.route(routeBody(#""hsts":{"include_subdomains":1}"#), id: "r")) == ["hsts.include_subdomains"])
    }

    @Test func upstreamsTakeTheHTTPSScheme() throws {
        let up = try validator.upstream(
            upstreamBody(#""scheme":"https","tls_server_name":"Backend.Internal","tls_verify":true"#), name: "u"
        ).get()
        #expect(up.tls == UpstreamTLS(scheme: .https, serverName: "backend.internal", verify: true))
        #expect(up.canonicalDocument.hasSuffix(#""scheme":"https","tls_server_name":"backend.internal","tls_verify":true}"#))
        let stored = try StoredDocument.upstream(Array(("{\"version\":2," + up.canonicalDocument.dropFirst()).utf8))
        #expect(stored.value == up)
        let plain = try validator.upstream(upstreamBody(#""scheme":"http""#), name: "u").get()
        #expect(!plain.canonicalDocument.contains("scheme"))
    }

    @Test func badUpstreamMembersAreNamed() {
        #expect(fields(validator.upstream(upstreamBody(#""scheme":"ftp""#), name: "u")) == ["scheme"])
        #expect(fields(validator.upstream(upstreamBody(#""tls_verify":true"#), name: "u")) == ["tls_verify"])
        #expect(fields(validator.upstream(upstreamBody(#""tls_server_name":"a.internal""#), name: "u")) == ["tls_server_name"])
        #expect(
            fields(validator.upstream(upstreamBody(#""scheme":"https","tls_server_name":"*.internal""#), name: "u")) == ["tls_server_name"])
        #expect(fields(validator.upstream(upstreamBody(#""scheme":"https","ca_file":"/ca.pem""#), name: "u")) == ["ca_file"])
    }

    // MARK: Template

    let settings = EdgeSettings(prefix: "/var/lib/sy", listen: "127.0.0.1:8080", luaDir: "/opt/sy/lua", edgeID: "e1")
    let template = "{{tls_listen}}\n{{tls}}ssl_certificate {{prefix}}/tls/placeholder.crt;\nport={{https_port}} ca={{upstream_ca}}\n"

    @Test func withoutTLSListenersTheTLSLinesAreComments() throws {
        let out = try EdgeTemplate.render(template, settings: settings)
        #expect(
            out == """
                # no TLS listener (switchyard edge --listen-tls ADDR)
                # ssl_certificate /var/lib/sy/tls/placeholder.crt;
                port=443 ca=/etc/ssl/certs/ca-certificates.crt

                """)
    }

    @Test func tlsListenersRenderAsListenDirectives() throws {
        var s = settings
        s.tlsListen = ["127.0.0.1:8443", "[::1]:8443"]
        s.httpsPort = 8443
        let out = try EdgeTemplate.render(template, settings: s)
        #expect(
            out == """
                listen 127.0.0.1:8443 ssl http2 reuseport backlog=4096; listen [::1]:8443 ssl http2 reuseport backlog=4096;
                ssl_certificate /var/lib/sy/tls/placeholder.crt;
                port=8443 ca=/etc/ssl/certs/ca-certificates.crt

                """)
        s.tlsListen = ["127.0.0.1:8443;", "127.0.0.1:8080"]
        #expect(s.problems().count == 2)
        s.tlsListen = ["1.2.3.4:1", "1.2.3.4:1"]
        #expect(s.problems() == ["a TLS listen address is given twice"])
    }
}
