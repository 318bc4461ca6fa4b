import Testing

@testable import SwitchyardCore

@Suite("Documents and the sy_apply call")
struct DocumentTests {
    let route = Route(id: "bbs-api", host: "bbs.test.com", path: "/api", match: .prefix, upstream: "backend", priority: 0)
    var upstream: Upstream {
        Upstream(
            name: "backend",
            endpoints: [
                Endpoint(address: try! EndpointAddress.parse("127.0.0.1:9101").get()),
                Endpoint(address: try! EndpointAddress.parse("[::1]:9102").get(), weight: 7),
            ])
    }

    @Test func canonicalDocumentsMatchTheSchemaExamples() {
        // redis/README.md shows these exact bytes after the version field
        #expect(
            route.canonicalDocument
                == #"{"host":"bbs.test.com","id":"bbs-api","match":"prefix","path":"/api","priority":0,"upstream":"backend"}"#)
        #expect(
            upstream.canonicalDocument
                == #"{"balance":"round_robin","endpoints":[{"address":"127.0.0.1:9101","weight":1},{"address":"[::1]:9102","weight":7}],"name":"backend","#
                + #""on_all_down":"fail_open","passive":{"fail_timeout_ms":10000,"max_fails":3},"retries":2}"#)
        #expect(!route.canonicalDocument.contains("version"))
    }

    @Test func storedDocumentsDecodeWithTheirVersion() throws {
        let stored = Array(("{\"version\":7," + route.canonicalDocument.dropFirst()).utf8)
        let decoded = try StoredDocument.route(stored)
        #expect(decoded == Stored(value: route, version: 7))
        let up = Array(("{\"version\":12," + upstream.canonicalDocument.dropFirst()).utf8)
        #expect(try StoredDocument.upstream(up) == Stored(value: upstream, version: 12))
    }

    @Test func storedDecodingIgnoresUnknownFieldsButNotBadOnes() throws {
        let newer = #"{"version":3,"host":"a.com","id":"r","path":"/","upstream":"u","future":{"x":1}}"#
        #expect(try StoredDocument.route(Array(newer.utf8)).value.match == .prefix)
        #expect(throws: DocumentError("version")) {
            try StoredDocument.route(Array(#"{"host":"a.com","id":"r","path":"/","upstream":"u"}"#.utf8))
        }
        #expect(throws: DocumentError("json")) { try StoredDocument.route(Array("{\"version\":1,".utf8)) }
        #expect(throws: DocumentError("endpoints[0].address")) {
            try StoredDocument.upstream(Array(#"{"version":1,"name":"u","endpoints":[{"address":"nope"}]}"#.utf8))
        }
    }

    @Test func holdsComparesEverythingButTheVersion() {
        let doc = route.canonicalDocument
        #expect(StoredDocument.holds(Array(("{\"version\":42," + doc.dropFirst()).utf8), canonicalDocument: doc))
        #expect(
            !StoredDocument.holds(
                Array(("{\"version\":42," + doc.dropFirst()).utf8), canonicalDocument: doc.replacing("/api", with: "/apx")))
        #expect(!StoredDocument.holds(Array(doc.utf8), canonicalDocument: doc))
        #expect(!StoredDocument.holds(Array("{\"version\":x,".utf8), canonicalDocument: doc))
    }

    @Test func argvForEveryOperationKind() {
        let ops = [
            ApplyOperation.put(upstream, expect: 0),
            ApplyOperation.put(route),
            ApplyOperation.delete(.route, "old", expect: 9),
            ApplyOperation.delete(.upstream, "gone"),
        ]
        #expect(
            ApplyCall.command(ops) == [
                "FCALL", "sy_apply", "1", "switchyard:{cfg}:version",
                "put", "upstream", "backend", upstream.canonicalDocument, "", "0",
                "put", "route", "bbs-api", route.canonicalDocument, "backend", "",
                "del", "route", "old", "", "", "9",
                "del", "upstream", "gone", "", "", "",
            ])
    }

    @Test func syerrRepliesParseIntoTypedErrors() {
        #expect(ApplyError.parse(#"SYERR {"code":"not_found","kind":"route","id":"r1"}"#) == .notFound(kind: .route, id: "r1"))
        #expect(
            ApplyError.parse(#"SYERR {"routes":["a","b"],"code":"in_use","kind":"upstream","id":"u"}"#)
                == .inUse(id: "u", routes: ["a", "b"]))
        #expect(
            ApplyError.parse(#"SYERR {"routes":{},"streams":["pg"],"code":"in_use","kind":"upstream","id":"u"}"#)
                == .inUse(id: "u", routes: [], streams: ["pg"]))
        #expect(
            ApplyError.parse(#"SYERR {"upstream":"nope","code":"missing_upstream","kind":"route","id":"r"}"#)
                == .missingUpstream(route: "r", upstream: "nope"))
        #expect(
            ApplyError.parse(#"SYERR {"expected":3,"actual":4,"code":"version_mismatch","kind":"upstream","id":"u"}"#)
                == .versionMismatch(kind: .upstream, id: "u", expected: 3, actual: 4))
        #expect(ApplyError.parse(#"SYERR {"code":"bad_request","message":"unknown op","op":"x"}"#) == .badRequest(message: "unknown op"))
        #expect(ApplyError.parse(#"-SYERR {"code":"not_found","kind":"upstream","id":"u"}"#) == .notFound(kind: .upstream, id: "u"))
        #expect(ApplyError.parse(#"SYERR {"code":"brand_new"}"#) == .other(code: "brand_new", raw: #"SYERR {"code":"brand_new"}"#))
        #expect(ApplyError.parse("SYERR not json") == .other(code: "unparsable", raw: "SYERR not json"))
        #expect(ApplyError.parse("ERR Function not found") == nil)
    }
}
