import Testing

@testable import SwitchyardCore

@Suite("The protocol of upstreams (gRPC) and the edge's h2c listeners")
struct UpstreamProtocolTests {
    let validator = Validator()

    func upstreamBody(_ extra: String) -> JSONValue {
        try! JSONValue.parse(#"{"endpoints":[{"address":"10.0.0.1:50051"}]"# + (extra.isEmpty ? "" : ",\(extra)") + "}")
    }

    func problems(_ result: Result<some Any, ValidationFailure>) -> [FieldError] {
        if case .failure(let f) = result { return f.problems }
        return []
    }

    @Test func grpcUpstreamsKeepTheirProtocolThroughTheStoredForm() throws {
        let up = try validator.upstream(upstreamBody(#""protocol":"grpc""#), name: "g").get()
        #expect(up.proto == .grpc)
        #expect(up.tls == UpstreamTLS())
        #expect(up.canonicalDocument.contains(#""protocol":"grpc""#))
        let stored = try StoredDocument.upstream(Array(("{\"version\":2," + up.canonicalDocument.dropFirst()).utf8))
        #expect(stored.value == up)
    }

    @Test func grpcsIsTLSWithoutASchemeMember() throws {
        let up = try validator.upstream(
            upstreamBody(#""protocol":"grpcs","tls_server_name":"api.internal","tls_verify":true"#), name: "g"
        ).get()
        #expect(up.proto == .grpcs)
        #expect(up.tls == UpstreamTLS(scheme: .https, serverName: "api.internal", verify: true))
        #expect(!up.canonicalDocument.contains("scheme"))
        #expect(up.canonicalDocument.contains(#""protocol":"grpcs","retries":2,"tls_server_name":"api.internal","tls_verify":true"#))
        let stored = try StoredDocument.upstream(Array(("{\"version\":2," + up.canonicalDocument.dropFirst()).utf8))
        #expect(stored.value == up)
    }

    @Test func httpUpstreamsKeepTheirDocument() throws {
        let explicit = try validator.upstream(upstreamBody(#""protocol":"http""#), name: "u").get()
        let implicit = try validator.upstream(upstreamBody(""), name: "u").get()
        #expect(explicit.canonicalDocument == implicit.canonicalDocument)
        #expect(!implicit.canonicalDocument.contains("protocol"))
    }

    @Test func whatMakesNoSenseWithGRPCIsRefusedByField() {
        let cases: [(String, String, String)] = [
            (#""protocol":"h2""#, "protocol", "must be one of http, grpc, grpcs"),
            (#""protocol":1"#, "protocol", "must be a string"),
            (#""protocol":"grpc","scheme":"https""#, "scheme", "\"protocol\": \"grpcs\""),
            (#""protocol":"grpcs","scheme":"https""#, "scheme", "leave scheme out"),
            (#""protocol":"grpc","tls_server_name":"a.internal""#, "tls_server_name", "only applies with \"protocol\": \"grpcs\""),
            (#""protocol":"grpc","tls_verify":true"#, "tls_verify", "only applies with \"protocol\": \"grpcs\""),
            (#""protocol":"grpc","balance":"sticky""#, "balance", "cookie"),
            (#""protocol":"grpcs","health_check":{"type":"http","path":"/"}"#, "health_check.type", "use \"type\": \"tcp\""),
        ]
        for (extra, field, reason) in cases {
            let found = problems(validator.upstream(upstreamBody(extra), name: "g"))
            #expect(found.map(\.field) == [field], "\(extra)")
            #expect(found.first?.message.contains(reason) == true, "\(extra): \(found.first?.message ?? "accepted")")
        }
        // what does make sense is accepted
        #expect(problems(validator.upstream(upstreamBody(#""protocol":"grpc","health_check":{"type":"tcp"}"#), name: "g")).isEmpty)
        let hashed = upstreamBody(#""protocol":"grpc","balance":"hash","hash_on":"header:x-user""#)
        #expect(problems(validator.upstream(hashed, name: "g")).isEmpty)
        #expect(problems(validator.upstream(upstreamBody(#""protocol":"grpc","scheme":"http""#), name: "g")).isEmpty)
    }

    @Test func storedDocumentsWithAnUnknownProtocolAreRefused() {
        #expect(throws: DocumentError.self) {
            try StoredDocument.upstream(Array(#"{"version":1,"name":"g","endpoints":[],"protocol":"quic"}"#.utf8))
        }
    }

    // MARK: h2c listeners

    let settings = EdgeSettings(prefix: "/var/lib/sy", listen: "127.0.0.1:8080", luaDir: "/opt/sy/lua", edgeID: "e1")

    @Test func h2cListenersRenderAsHTTP2ListenDirectives() throws {
        var s = settings
        #expect(try EdgeTemplate.render("{{h2c_listen}}", settings: s) == "# no h2c listener (switchyard edge --listen-h2c ADDR)")
        s.h2cListen = ["127.0.0.1:8082", "[::1]:8082"]
        #expect(
            try EdgeTemplate.render("{{h2c_listen}}", settings: s)
                == "listen 127.0.0.1:8082 http2 reuseport backlog=4096; listen [::1]:8082 http2 reuseport backlog=4096;")
    }

    @Test func h2cListenersMustNotCollide() {
        var s = settings
        s.h2cListen = ["127.0.0.1:8080"]
        #expect(s.problems().contains { $0.contains("both an h2c and another listen address") })
        s.h2cListen = ["127.0.0.1:8082", "127.0.0.1:8082"]
        #expect(s.problems().contains { $0.contains("h2c listen address is given twice") })
        s.h2cListen = ["127.0.0.1:8082;"]
        #expect(s.problems().contains { $0.contains("h2c_listen[0]") })
    }
}
