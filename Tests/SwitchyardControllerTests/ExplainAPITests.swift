import Foundation
import Hummingbird
import HummingbirdTesting
import SwitchyardCore
import SwitchyardRedis
import Testing

@testable import SwitchyardController

typealias Explain = ExplainAPI<BasicRequestContext>

/// GET /api/v1/explain on the controller's side: its arguments, which edge it asks, what an
/// edge's answer means. The edge's router itself is tested end to end (e2e/test_explain.py);
/// here a stand-in listener plays the edge only to see that the controller forwards.
@Suite("Explain API")
struct ExplainAPITests {
    func problems(_ query: [(String, String)]) -> [FieldError] {
        do {
            _ = try Explain.arguments(query)
            return []
        } catch {
            return error.details
        }
    }

    func fields(_ query: [(String, String)]) -> [String] { problems(query).map(\.field) }

    // MARK: Arguments

    @Test func acceptsAFullRequest() throws {
        let arguments = try Explain.arguments([
            ("url", "http://bbs.test.com/api/x?a=1&b=2"), ("method", "POST"), ("header", "X-Canary:1"),
            ("header", "Cookie: c=v; d=e"), ("client", "10.0.0.7"), ("edge", "edge-a"),
        ])
        #expect(arguments.url == "http://bbs.test.com/api/x?a=1&b=2")
        #expect(arguments.method == "POST")
        #expect(arguments.headers == ["X-Canary:1", "Cookie: c=v; d=e"])
        #expect(arguments.client == "10.0.0.7")
        #expect(arguments.edge == "edge-a")
        // the edge gets url, method, headers and client, each percent-encoded; not `edge`
        #expect(
            arguments.edgeQuery
                == "url=http%3A%2F%2Fbbs.test.com%2Fapi%2Fx%3Fa%3D1%26b%3D2&method=POST&header=X-Canary%3A1"
                + "&header=Cookie%3A%20c%3Dv%3B%20d%3De&client=10.0.0.7")
    }

    @Test func methodDefaultsToGET() throws {
        let arguments = try Explain.arguments([("url", "https://a.example.com")])
        #expect(arguments.method == "GET")
        #expect(arguments.headers.isEmpty)
        #expect(arguments.edgeQuery == "url=https%3A%2F%2Fa.example.com&method=GET")
    }

    @Test(arguments: [
        "http://bbs.test.com/api/x", "HTTP://BBS.test.com/", "https://bbs.test.com:8443/a/b?c=d", "http://bbs.test.com./x",
        "http://bbs.test.com.:8080/x", "http://10.1.2.3/x", "http://[::1]:8080/x", "http://[2001:db8::1]/", "http://a.test/caf%C3%A9",
        "http://a.test/café",
    ])
    func acceptsURLs(_ url: String) {
        #expect(fields([("url", url)]) == [])
    }

    @Test(arguments: [
        "", "bbs.test.com/api", "ftp://bbs.test.com/", "http://", "http:///x", "http://bbs test.com/", "http://a.test/x y",
        "http://user@bbs.test.com/", "http://*.test.com/", "http://bbs.test.com/#top", "http://bbs.test.com:0/", "http://bbs.test.com:x/",
        "http://bbs..test.com/", "http://[::1/", "http://a.test?q=1", "http://a.test/\u{7F}",
    ])
    func refusesBadURLs(_ url: String) {
        let found = problems([("url", url)])
        #expect(found.map(\.field) == ["url"], "\(url)")
        #expect(found.first?.code == .invalid)
    }

    @Test func urlIsRequiredAndGivenOnce() {
        let missing = problems([("method", "GET")])
        #expect(missing.map(\.field) == ["url"])
        #expect(missing.first?.code == .required)
        let twice = problems([("url", "http://a.test/"), ("url", "http://b.test/")])
        #expect(twice.map(\.field) == ["url"])
        #expect(twice.first?.code == .duplicate)
    }

    @Test func refusesBadMethodsHeadersClientsAndEdges() {
        #expect(fields([("url", "http://a.test/"), ("method", "GE T")]) == ["method"])
        #expect(fields([("url", "http://a.test/"), ("method", "")]) == ["method"])
        #expect(fields([("url", "http://a.test/"), ("method", String(repeating: "A", count: 33))]) == ["method"])
        #expect(fields([("url", "http://a.test/"), ("header", "X-Canary")]) == ["header"])
        #expect(fields([("url", "http://a.test/"), ("header", ":1")]) == ["header"])
        #expect(fields([("url", "http://a.test/"), ("header", "X Canary:1")]) == ["header"])
        #expect(fields([("url", "http://a.test/"), ("header", "X-A:1\r\nX-B:2")]) == ["header"])
        #expect(fields([("url", "http://a.test/"), ("client", "10.0.0")]) == ["client"])
        #expect(fields([("url", "http://a.test/"), ("client", "10.0.0.0/8")]) == ["client"])
        #expect(fields([("url", "http://a.test/"), ("client", "a.test")]) == ["client"])
        #expect(fields([("url", "http://a.test/"), ("client", "::1")]) == [])
        #expect(fields([("url", "http://a.test/"), ("edge", "a b")]) == ["edge"])
        #expect(fields([("url", "http://a.test/"), ("verbose", "1")]) == ["verbose"])
        #expect(problems([("url", "http://a.test/"), ("verbose", "1")]).first?.code == .unknownField)
        let many = (0...Explain.maxHeaders).map { ("header", "X-H\($0):1") }
        #expect(fields([("url", "http://a.test/")] + many) == ["header"])
        #expect(fields([("url", "http://a.test/")] + many.dropLast()) == [])
    }

    @Test func everyProblemIsNamed() {
        #expect(
            Set(fields([("url", "nope"), ("method", "?"), ("header", "x"), ("client", "y")])) == ["url", "method", "header", "client"])
    }

    // MARK: Which edge

    @Test func explainAddressPrefersTheMetricsListener() {
        #expect(Explain.explainAddress(listen: "127.0.0.1:8080", metricsListen: "127.0.0.1:9145") == "127.0.0.1:9145")
        #expect(Explain.explainAddress(listen: "127.0.0.1:8080", metricsListen: "") == "127.0.0.1:8080")
        #expect(Explain.explainAddress(listen: "127.0.0.1:8080", metricsListen: nil) == "127.0.0.1:8080")
        #expect(Explain.explainAddress(listen: "127.0.0.1:8080", metricsListen: "off") == "127.0.0.1:8080")
        #expect(Explain.explainAddress(listen: "8080", metricsListen: nil) == "127.0.0.1:8080")
        #expect(Explain.explainAddress(listen: "0.0.0.0:8080", metricsListen: nil) == "127.0.0.1:8080")
        #expect(Explain.explainAddress(listen: "*:8080", metricsListen: nil) == "127.0.0.1:8080")
        #expect(Explain.explainAddress(listen: "[::]:8080", metricsListen: nil) == "[::1]:8080")
        #expect(Explain.explainAddress(listen: "[::1]:8080", metricsListen: "[::]:9145") == "[::1]:9145")
        #expect(Explain.explainAddress(listen: "10.0.0.5:8080", metricsListen: nil) == "10.0.0.5:8080")
        #expect(Explain.explainAddress(listen: "80800", metricsListen: "nonsense") == nil)
        #expect(Explain.explainAddress(listen: nil, metricsListen: nil) == nil)
        #expect(Explain.explainAddress(listen: "[::1:8080", metricsListen: nil) == nil)
    }

    func heartbeat(_ id: String, listen: String, applied: Int64 = 3, ageMs: Int64 = 0) -> EdgeHeartbeat {
        let now = ConfigStore.nowMilliseconds() - ageMs
        return EdgeHeartbeat(
            id: id, fields: [("applied_version", "\(applied)"), ("listen", listen), ("last_seen", "\(now)")], heartbeat: now)
    }

    func verdicts(_ edges: [EdgeHeartbeat]) -> [EdgeVerdict] {
        Convergence.evaluate(state: ConfigState(version: 3, digest: nil), edges: edges, now: ConfigStore.nowMilliseconds(), target: nil)
    }

    @Test func asksLiveInSyncEdgesFirstAndLateOnesLast() throws {
        let edges = [
            heartbeat("behind", listen: "127.0.0.1:1001", applied: 2), heartbeat("late", listen: "127.0.0.1:1002", ageMs: 8_000),
            heartbeat("current", listen: "127.0.0.1:1003"), heartbeat("nowhere", listen: ""),
        ]
        let targets = try Explain.targets(edges, verdicts(edges), named: nil, limit: 3)
        #expect(targets.map(\.id) == ["current", "behind", "late"])
        #expect(targets.map(\.inSync) == [true, false, true])
        #expect(targets.map(\.live) == [true, true, false])
        #expect(targets[0].address == "127.0.0.1:1003")
        #expect(try Explain.targets(edges, verdicts(edges), named: nil, limit: 1).map(\.id) == ["current"])
        #expect(try Explain.targets(edges, verdicts(edges), named: "behind", limit: 3).map(\.id) == ["behind"])
        #expect(try Explain.targets(edges, verdicts(edges), named: "late", limit: 3).map(\.id) == ["late"])
    }

    @Test func noEdgeIs503NamingWhy() {
        let unaddressed = [heartbeat("nowhere", listen: "")]
        #expect {
            try Explain.targets(unaddressed, verdicts(unaddressed), named: nil, limit: 3)
        } throws: { error in
            guard let error = error as? APIError else { return false }
            return error.status == .serviceUnavailable && error.code == "no_edge" && error.message.contains("none is registered")
                && error.message.contains("nowhere register no usable listen address")
        }
        #expect {
            try Explain.targets([], [], named: "gone", limit: 3)
        } throws: { error in
            guard let error = error as? APIError else { return false }
            return error.status == .serviceUnavailable && error.field == "edge" && error.message.contains("'gone' is not registered")
        }
    }

    @Test func interpretsEdgeAnswers() {
        guard case .answer(let json) = Explain.interpret(status: 200, Array(#"{"edge_id":"e1","route":"r1"}"#.utf8), edge: "e1") else {
            Issue.record("200 with an object naming the edge is an answer")
            return
        }
        #expect(json["route"] == "r1")
        // a backend's answer (an edge without explain routed the path) is not an explanation
        guard case .failed = Explain.interpret(status: 200, Array(#"{"backend":"b1","path":"/x"}"#.utf8), edge: "e1") else {
            Issue.record("200 without edge_id is a failure")
            return
        }
        guard case .failed = Explain.interpret(status: 200, Array(#"{"edge_id":"e2"}"#.utf8), edge: "e1") else {
            Issue.record("another edge's id is a failure")
            return
        }
        guard
            case .refused(let field, let reason) = Explain.interpret(
                status: 400, Array(#"{"error":"bad header","field":"header"}"#.utf8), edge: "e1")
        else {
            Issue.record("400 naming a field is a refusal")
            return
        }
        #expect(field == "header")
        #expect(reason == "bad header")
        guard case .failed(let why) = Explain.interpret(status: 404, Array("<html>".utf8), edge: "e1") else {
            Issue.record("404 is a failure")
            return
        }
        #expect(why.contains("no explain handler"))
        guard case .failed = Explain.interpret(status: 200, Array("[1]".utf8), edge: "e1") else {
            Issue.record("200 without an object is a failure")
            return
        }
        guard case .failed(let text) = Explain.interpret(status: 500, Array("oops".utf8), edge: "e1") else {
            Issue.record("500 is a failure")
            return
        }
        #expect(text == "answered 500: oops")
    }

    @Test func answerNamesTheEdge() {
        let target = Explain.Target(id: "edge-a", address: "127.0.0.1:9145", appliedVersion: 7, inSync: true)
        let body = Explain.withAnsweredBy(["route": "r1", "answered_by": "spoof"], target, redisVersion: 7, tried: [])
        #expect(body["route"] == "r1")
        #expect(body["answered_by"]?["id"] == "edge-a")
        #expect(body["answered_by"]?["address"] == "127.0.0.1:9145")
        #expect(body["answered_by"]?["applied_version"] == .integer(7))
        #expect(body["answered_by"]?["in_sync"] == true)
        #expect(body["answered_by"]?["live"] == true)
        #expect(body["tried"] == nil)
    }

    @Test func percentEncodesEverythingButUnreserved() {
        #expect(Explain.percentEncoded("aZ09-._~") == "aZ09-._~")
        #expect(Explain.percentEncoded("a b/c?d=e&f:g") == "a%20b%2Fc%3Fd%3De%26f%3Ag")
        #expect(Explain.percentEncoded("é") == "%C3%A9")
    }
}

/// The controller in front of a real Redis: explain refuses bad arguments and answers 503
/// without edges; against a stand-in listener registered as an edge it forwards the
/// arguments and names the edge that answered.
@Suite("Explain API over HTTP", .serialized)
struct ExplainHTTPTests {
    @Test func badArgumentsAre422AndNoEdgeIs503() async throws {
        try await withController { h async throws in
            let bad = try await h.request(.get, "/api/v1/explain?url=ftp%3A%2F%2Fa.test%2F&method=GET")
            #expect(bad.status == 422)
            #expect(bad.errorFields == ["url"])
            let none = try await h.request(.get, "/api/v1/explain?url=http%3A%2F%2Fa.test%2Fx")
            #expect(none.status == 503)
            #expect(none.errorCode == "no_edge")
            #expect(none.headers[.retryAfter] == "1")
            #expect(try await h.request(.get, "/api/v1/explain?url=http%3A%2F%2Fa.test%2Fx", token: .some(nil)).status == 401)
            #expect(try await h.storedVersion() == 0)
        }
    }

    @Test func forwardsToALiveEdgeAndNamesIt() async throws {
        // the stand-in answers what it was asked, as JSON (it is not a router)
        let router = Router()
        router.get("_switchyard/explain") { request, _ -> Response in
            var members: [(key: String, value: JSONValue)] = [("edge_id", "live"), ("route", "r1")]
            for (key, value) in request.uri.queryParameters where !members.contains(where: { $0.key == String(key) }) {
                members.append((String(key), .string(String(value))))
            }
            return jsonResponse(.object(members))
        }
        let standIn = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await standIn.test(.live) { edgeClient in
            let port = try #require(edgeClient.port)
            try await withController { h async throws in
                let now = ConfigStore.nowMilliseconds()
                // a dead edge heartbeats first, so it is asked first and listed under `tried`
                for (id, listen, score) in [("dead", "127.0.0.1:1", now - 1000), ("live", "127.0.0.1:\(port)", now)] {
                    _ = try await h.redis.send(
                        "HSET", KeySchema.default.edge(id), "applied_version", "0", "listen", listen, "last_seen", "\(score)")
                    _ = try await h.redis.send("ZADD", KeySchema.default.edges, "\(score)", id)
                }
                let answer = try await h.request(
                    .get, "/api/v1/explain?url=http%3A%2F%2Fbbs.test.com%2Fapi%2Fx&header=X-Canary%3A1&header=X-B%3A2")
                #expect(answer.status == 200)
                #expect(answer.json["route"] == "r1")
                #expect(answer.json["url"] == "http://bbs.test.com/api/x")
                #expect(answer.json["method"] == "GET")
                #expect(answer.json["answered_by"]?["id"] == "live")
                #expect(answer.json["answered_by"]?["address"] == .string("127.0.0.1:\(port)"))
                #expect(answer.json["tried"]?[0]?["id"] == "dead")
                let named = try await h.request(.get, "/api/v1/explain?url=http%3A%2F%2Fa.test%2F&edge=dead")
                #expect(named.status == 503)
                #expect(named.errorCode == "no_edge")
                guard case .string(let message)? = named.json["error"]?["message"] else {
                    Issue.record("no error message")
                    return
                }
                #expect(message.contains("edge dead: "))
            }
        }
    }
}
