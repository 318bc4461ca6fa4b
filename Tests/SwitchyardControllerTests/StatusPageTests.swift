import Foundation
import Hummingbird
import HummingbirdTesting
import SwitchyardCore
import SwitchyardRedis
import Testing

@testable import SwitchyardController

/// GET /ui and its files (no token, security headers, no inline code), and the two feeds it
/// reads (/api/v1/changes, /api/v1/health) against a real Redis. The page itself runs in
/// headless Chromium in e2e/test_ui_browser.py.
@Suite("Status page", .serialized)
struct StatusPageTests {
    @Test func pageAndFilesNeedNoTokenAndCarrySecurityHeaders() async throws {
        try await withController { h async throws in
            for (path, type) in [
                ("/ui", "text/html"), ("/ui/app.js", "text/javascript"), ("/ui/style.css", "text/css"), ("/ui/icon.svg", "image/svg+xml"),
            ] {
                let answer = try await h.request(.get, path, token: .some(nil))
                #expect(answer.status == 200, "\(path)")
                #expect(answer.headers[.contentType]?.hasPrefix(type) == true, "\(path)")
                let csp = answer.headers[.contentSecurityPolicy] ?? ""
                #expect(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "\(path)")
                #expect(!csp.contains("unsafe-inline"))
                #expect(answer.headers[StatusPage.frameOptions] == "DENY", "\(path)")
                #expect(answer.headers[.xContentTypeOptions] == "nosniff", "\(path)")
            }
            #expect(try await h.request(.get, "/ui/other.js", token: .some(nil)).status == 404)
        }
    }

    @Test func pageHoldsNoInlineCodeAndNoData() {
        let html = StatusPageAssets.html
        // every <script> loads a file: the CSP allows no inline script
        let scripts = html.components(separatedBy: "<script").dropFirst()
        #expect(scripts.count == 1)
        #expect(scripts.allSatisfy { $0.hasPrefix(" src=\"/ui/app.js\"") })
        #expect(!html.contains("style=") && !html.contains("onclick") && !html.contains("<style"))
        // the token goes in a header, never a URL; only session storage keeps it
        #expect(StatusPageAssets.script.contains("\"Authorization\": \"Bearer \" + token"))
        #expect(!StatusPageAssets.script.contains("localStorage"))
        #expect(!StatusPageAssets.script.contains("innerHTML"))
    }

    @Test func changeEntriesKeepTheirFieldsAndSkipWhatIsNotAnEntry() {
        typealias Feed = StatusFeedAPI<BasicRequestContext>
        func text(_ s: String) -> RedisReply { .string(Array(s.utf8)) }
        let entry = RedisReply.array([
            text("9-1"),
            .array(["version", "9", "kind", "route", "id", "r1", "op", "put", "ts", "1764790000123", "entry", "spoof"].map(text)),
        ])
        let json = Feed.changeEntry(entry)
        #expect(json?["entry"] == "9-1")
        #expect(json?["version"] == .integer(9))
        #expect(json?["ts"] == "1764790000123")
        #expect(json?["op"] == "put")
        #expect(json?.count == 6)
        let resync = RedisReply.array([text("10-0"), .array(["version", "10", "kind", "*", "id", "*", "op", "resync"].map(text))])
        #expect(Feed.changeEntry(resync)?["op"] == "resync")
        #expect(Feed.changeEntry(text("nope")) == nil)
        #expect(Feed.changeEntry(.array([text("1-0")])) == nil)
    }

    @Test func changesAreNewestFirstAndBounded() async throws {
        try await withController { h async throws in
            try await h.request(.put, "/api/v1/upstreams/backend", backendBody)
            try await h.request(.put, "/api/v1/routes/bbs-api", routeBody)
            try await h.request(.delete, "/api/v1/routes/bbs-api")
            let answer = try await h.request(.get, "/api/v1/changes?limit=2")
            #expect(answer.status == 200)
            #expect(answer.version == 3)
            #expect(answer.json["items"]?.count == 2)
            #expect(answer.json["items"]?[0]?["version"] == .integer(3))
            #expect(answer.json["items"]?[0]?["op"] == "del")
            #expect(answer.json["items"]?[0]?["kind"] == "route")
            #expect(answer.json["items"]?[0]?["id"] == "bbs-api")
            #expect(answer.json["items"]?[0]?["entry"] == "3-0")
            #expect(answer.json["items"]?[1]?["op"] == "put")
            #expect(try await h.request(.get, "/api/v1/changes").json["items"]?.count == 3)
            for bad in ["limit=0", "limit=501", "limit=x", "count=3"] {
                let refused = try await h.request(.get, "/api/v1/changes?\(bad)")
                #expect(refused.status == 422, "\(bad)")
                #expect(refused.errorFields == [String(bad.prefix { $0 != "=" })], "\(bad)")
            }
            #expect(try await h.request(.get, "/api/v1/changes", token: .some(nil)).status == 401)
        }
    }

    @Test func healthListsEveryUpstreamWithItsEndpointsHealth() async throws {
        try await withController { h async throws in
            try await h.request(.put, "/api/v1/upstreams/plain", backendBody)
            let checked =
                #"{"endpoints":[{"address":"10.0.0.1:80"},{"address":"10.0.0.2:80"}],"health_check":{"type":"tcp"}}"#
            #expect(try await h.request(.put, "/api/v1/upstreams/web", checked).status == 201)
            let record = HealthRecord(state: .down, since: 1_700_000_000_000, reason: "connect refused", prober: "p1")
            _ = try await h.redis.send("HSET", KeySchema.default.health("web"), "10.0.0.1:80", record.json)
            let answer = try await h.request(.get, "/api/v1/health")
            #expect(answer.status == 200)
            #expect(answer.json["prober_alive"] == false)
            #expect(answer.version == 2)
            guard case .array(let items)? = answer.json["items"] else {
                Issue.record("no items")
                return
            }
            let web = try #require(items.first { $0["name"] == "web" })
            #expect(web["endpoints"]?[0]?["health"] == "down")
            #expect(web["endpoints"]?[0]?["health_reason"] == "connect refused")
            #expect(web["endpoints"]?[0]?["health_since_ms"] == .integer(1_700_000_000_000))
            #expect(web["endpoints"]?[1]?["health"] == "unknown")
            #expect(web["health_stale"] == true)
            let plain = try #require(items.first { $0["name"] == "plain" })
            #expect(plain["endpoints"]?[0]?["health"] == nil)
            #expect(try await h.request(.get, "/api/v1/health?x=1").status == 422)
            #expect(try await h.request(.get, "/api/v1/health", token: .some(nil)).status == 401)
        }
    }
}
