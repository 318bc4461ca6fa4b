import Foundation
import Hummingbird
import HummingbirdTesting
import SwitchyardController
import SwitchyardCore
import SwitchyardRedis
import SwitchyardTestSupport
import Testing

let backendBody = #"{"endpoints":[{"address":"10.0.0.1:10001","weight":1}],"balance":"round_robin"}"#
let routeBody = #"{"host":"bbs.test.com","path":"/api","match":"prefix","upstream":"backend","priority":0}"#

@Suite("Controller API", .serialized)
struct ControllerAPITests {
    // MARK: Auth and health

    @Test func healthNeedsNoTokenAndReportsRedis() async throws {
        try await withController { h async throws in
            let answer = try await h.request(.get, "/healthz", token: .some(nil))
            #expect(answer.status == 200)
            #expect(answer.json["status"] == "ok")
            #expect(answer.json["redis"] == true)
        }
    }

    @Test func apiNeedsTheBearerToken() async throws {
        try await withController { h async throws in
            let missing = try await h.request(.get, "/api/v1/routes", token: .some(nil))
            #expect(missing.status == 401)
            #expect(missing.errorCode == "unauthorized")
            #expect(missing.headers[.wwwAuthenticate] != nil)
            #expect(try await h.request(.get, "/api/v1/routes", token: "wrong").status == 401)
            #expect(try await h.request(.get, "/api/v1/routes", token: "test-token-and-more").status == 401)
            #expect(try await h.request(.put, "/api/v1/upstreams/backend", backendBody, token: "test-toke").status == 401)
            #expect(try await h.storedVersion() == 0)
            #expect(try await h.request(.get, "/api/v1/routes").status == 200)
        }
    }

    @Test func noTokenConfiguredMeansNoAuth() async throws {
        try await withController(token: nil) { h async throws in
            #expect(try await h.request(.get, "/api/v1/upstreams").status == 200)
        }
    }

    @Test func refusesAPublicBindWithoutToken() async throws {
        var configuration = Configuration(host: "0.0.0.0", adminToken: nil)
        configuration.functionsPath = repositoryRoot().appendingPathComponent("redis/switchyard.lua").path
        await #expect(throws: ConfigurationError.self) { _ = try await buildApplication(configuration: configuration) }
        configuration.allowInsecureNoToken = true
        _ = try await buildApplication(configuration: configuration)
        configuration.allowInsecureNoToken = false
        configuration.adminToken = "t"
        _ = try await buildApplication(configuration: configuration)
    }

    @Test func missingFunctionLibraryIsAConfigurationError() async throws {
        let configuration = Configuration(functionsPath: "/nonexistent/switchyard.lua")
        await #expect(throws: ConfigurationError.self) { _ = try await buildApplication(configuration: configuration) }
    }

    // MARK: Upstreams

    @Test func upstreamLifecycle() async throws {
        try await withController { h async throws in
            let created = try await h.request(.put, "/api/v1/upstreams/backend", backendBody)
            #expect(created.status == 201)
            #expect(created.json["name"] == "backend")
            #expect(created.json["endpoints"]?[0]?["address"] == "10.0.0.1:10001")
            #expect(created.version == 1)

            // the stored document is the canonical encoding with the version spliced in
            let raw = try await h.redis.send("GET", KeySchema.default.upstream("backend")).text
            #expect(
                raw == #"{"version":1,"balance":"round_robin","endpoints":[{"address":"10.0.0.1:10001","weight":1}],"name":"backend","#
                    + #""on_all_down":"fail_open","passive":{"fail_timeout_ms":10000,"max_fails":3},"retries":2}"#)

            // identical PUT: 200, nothing written, version unchanged
            let same = try await h.request(
                .put, "/api/v1/upstreams/backend", #"{"balance":"round_robin","endpoints":[{"weight":1,"address":"10.0.0.1:10001"}]}"#)
            #expect(same.status == 200)
            #expect(same.version == 1)
            #expect(try await h.storedVersion() == 1)

            let replaced = try await h.request(
                .put, "/api/v1/upstreams/backend", #"{"name":"backend","endpoints":[{"address":"10.0.0.2:80","weight":5}]}"#)
            #expect(replaced.status == 200)
            #expect(replaced.version == 2)

            let got = try await h.request(.get, "/api/v1/upstreams/backend")
            #expect(got.status == 200)
            #expect(got.json == replaced.json)

            try await h.request(.put, "/api/v1/upstreams/empty", #"{"endpoints":[]}"#)
            let list = try await h.request(.get, "/api/v1/upstreams")
            #expect(list.status == 200)
            #expect(list.json["items"]?.count == 2)
            #expect(list.json["items"]?[0]?["name"] == "backend")
            #expect(list.json["items"]?[1]?["name"] == "empty")
            #expect(list.json["items"]?[1]?["version"] == 3)
            #expect(list.version == 3)

            let deleted = try await h.request(.delete, "/api/v1/upstreams/empty")
            #expect(deleted.status == 200)
            #expect(deleted.version == 4)
            #expect(try await h.request(.get, "/api/v1/upstreams/empty").status == 404)
            let again = try await h.request(.delete, "/api/v1/upstreams/empty")
            #expect(again.status == 404)
            #expect(again.errorCode == "not_found")
            #expect(try await h.storedVersion() == 4)
        }
    }

    @Test func invalidUpstreamListsEveryProblemAndWritesNothing() async throws {
        try await withController { h async throws in
            let body =
                #"{"name":"other","balance":"random","endpoints":[{"address":"10.0.0.1:80"},{"address":"10.0.0.1:80"},{"address":"300.0.0.1:80","weight":0}],"endpionts":[]}"#
            let answer = try await h.request(.put, "/api/v1/upstreams/backend", body)
            #expect(answer.status == 422)
            #expect(answer.errorCode == "invalid")
            #expect(
                Set(answer.errorFields) == [
                    "name", "balance", "endpoints[1].address", "endpoints[2].address", "endpoints[2].weight", "endpionts",
                ])
            #expect(answer.json["error"]?["message"] == "6 problems")
            #expect(answer.json["error"]?["field"] != nil)
            #expect(try await h.storedVersion() == 0)
            #expect(try await h.allKeys().isEmpty)
        }
    }

    @Test func malformedJSONIs400() async throws {
        try await withController { h async throws in
            let answer = try await h.request(.put, "/api/v1/upstreams/backend", #"{"endpoints": [}"#)
            #expect(answer.status == 400)
            #expect(answer.errorCode == "bad_request")
            #expect(try await h.request(.put, "/api/v1/routes/r", "").status == 400)
            #expect(try await h.request(.put, "/api/v1/routes/r", "[1,2]").status == 400)
            #expect(try await h.request(.put, "/api/v1/upstreams/u/endpoints/10.0.0.1:80", "7").status == 400)
            #expect(try await h.request(.post, "/api/v1/apply", "null").status == 400)
            #expect(try await h.request(.post, "/api/v1/apply", "{\"a\":1,\"a\":2}").status == 400)
            #expect(try await h.allKeys().isEmpty)
        }
    }

    @Test func invalidNamesInTheURL() async throws {
        try await withController { h async throws in
            #expect(try await h.request(.put, "/api/v1/upstreams/Bad%20Name", backendBody).status == 422)
            #expect(try await h.request(.get, "/api/v1/upstreams/Bad%20Name").status == 404)
            #expect(try await h.request(.delete, "/api/v1/routes/NOPE").status == 404)
            #expect(try await h.allKeys().isEmpty)
        }
    }

    // MARK: Routes

    @Test func routeLifecycleAndUpstreamInUse() async throws {
        try await withController { h async throws in
            let missing = try await h.request(.put, "/api/v1/routes/bbs-api", routeBody)
            #expect(missing.status == 422)
            #expect(missing.errorFields == ["upstream"])
            #expect(missing.json["error"]?["details"]?[0]?["code"] == "missing_upstream")
            #expect(try await h.allKeys().isEmpty)

            try await h.request(.put, "/api/v1/upstreams/backend", backendBody)
            let created = try await h.request(.put, "/api/v1/routes/bbs-api", routeBody)
            #expect(created.status == 201)
            #expect(
                created.json == [
                    "host": "bbs.test.com", "id": "bbs-api", "match": "prefix", "path": "/api", "priority": 0,
                    "upstream": "backend", "version": 2,
                ])
            let raw = try await h.redis.send("GET", KeySchema.default.route("bbs-api")).text
            #expect(
                raw
                    == #"{"version":2,"host":"bbs.test.com","id":"bbs-api","match":"prefix","path":"/api","priority":0,"upstream":"backend"}"#
            )
            #expect(try await h.redis.send("SMEMBERS", KeySchema.default.usedBy("backend")) == .array([.string(Array("bbs-api".utf8))]))

            #expect(try await h.request(.put, "/api/v1/routes/bbs-api", routeBody).status == 200)
            #expect(try await h.storedVersion() == 2)

            let inUse = try await h.request(.delete, "/api/v1/upstreams/backend")
            #expect(inUse.status == 409)
            #expect(inUse.errorCode == "in_use")
            #expect(inUse.json["error"]?["routes"] == ["bbs-api"])
            #expect(try await h.storedVersion() == 2)

            let got = try await h.request(.get, "/api/v1/routes/bbs-api")
            #expect(got.json == created.json)
            let list = try await h.request(.get, "/api/v1/routes")
            #expect(list.json["items"] == [created.json])
            #expect(list.version == 2)

            #expect(try await h.request(.delete, "/api/v1/routes/bbs-api").status == 200)
            #expect(try await h.request(.get, "/api/v1/routes/bbs-api").status == 404)
            #expect(try await h.request(.delete, "/api/v1/upstreams/backend").status == 200)
            #expect(try await h.storedVersion() == 4)
        }
    }

    @Test func routeValidationNamesFieldsAndBodyIDMustMatch() async throws {
        try await withController { h async throws in
            try await h.request(.put, "/api/v1/upstreams/backend", backendBody)
            let mismatch = try await h.request(.put, "/api/v1/routes/r1", #"{"id":"r2","host":"a.com","path":"/","upstream":"backend"}"#)
            #expect(mismatch.status == 422)
            #expect(mismatch.errorFields == ["id"])

            let many = try await h.request(
                .put, "/api/v1/routes/r1", #"{"host":"*.*.com","path":"/a b","match":"regex","upstream":"nope","priority":5000,"prio":1}"#)
            #expect(many.status == 422)
            #expect(Set(many.errorFields) == ["host", "path", "priority", "prio", "upstream"])

            let regex = try await h.request(
                .put, "/api/v1/routes/r1", #"{"host":"a.com","path":"^/v(1|2","match":"regex","upstream":"backend"}"#)
            #expect(regex.status == 422)
            #expect(regex.errorFields == ["path"])
            #expect(try await h.storedVersion() == 1)

            let ok = try await h.request(
                .put, "/api/v1/routes/r1", #"{"host":"*.Example.com","path":"^/v[12]/","match":"regex","upstream":"backend","priority":-5}"#
            )
            #expect(ok.status == 201)
            #expect(ok.json["host"] == "*.example.com")
        }
    }

    // MARK: Endpoints

    @Test func endpointsJoinAndLeave() async throws {
        try await withController { h async throws in
            #expect(try await h.request(.put, "/api/v1/upstreams/nope/endpoints/10.0.0.1:80").status == 404)
            try await h.request(.put, "/api/v1/upstreams/backend", #"{"endpoints":[]}"#)

            let added = try await h.request(.put, "/api/v1/upstreams/backend/endpoints/10.0.0.1:80")
            #expect(added.status == 201)
            #expect(added.json["endpoints"] == [["address": "10.0.0.1:80", "weight": 1]])
            #expect(added.version == 2)

            let same = try await h.request(.put, "/api/v1/upstreams/backend/endpoints/10.0.0.1:80", #"{"weight":1}"#)
            #expect(same.status == 200)
            #expect(same.version == 2)

            let reweighted = try await h.request(.put, "/api/v1/upstreams/backend/endpoints/10.0.0.1:80", #"{"weight":7}"#)
            #expect(reweighted.status == 200)
            #expect(reweighted.json["endpoints"] == [["address": "10.0.0.1:80", "weight": 7]])

            let v6 = try await h.request(.put, "/api/v1/upstreams/backend/endpoints/%5B2001%3ADB8%3A%3A1%5D%3A8080", #"{"weight":2}"#)
            #expect(v6.status == 201)
            #expect(v6.json["endpoints"]?[1] == ["address": "[2001:db8::1]:8080", "weight": 2])
            let raw6 = try await h.request(.put, "/api/v1/upstreams/backend/endpoints/[::1]:8080")
            #expect(raw6.status == 201)
            #expect(raw6.json["endpoints"]?.count == 3)

            let bad = try await h.request(.put, "/api/v1/upstreams/backend/endpoints/10.0.0.1", #"{"weight":0}"#)
            #expect(bad.status == 422)
            #expect(bad.errorFields == ["address"])
            let badWeight = try await h.request(.put, "/api/v1/upstreams/backend/endpoints/10.0.0.9:80", #"{"weight":0,"x":1}"#)
            #expect(Set(badWeight.errorFields) == ["weight", "x"])

            let removed = try await h.request(.delete, "/api/v1/upstreams/backend/endpoints/%5B2001:db8:0::1%5D:8080")
            #expect(removed.status == 200)
            #expect(removed.json["endpoints"] == [["address": "10.0.0.1:80", "weight": 7], ["address": "[::1]:8080", "weight": 1]])
            let gone = try await h.request(.delete, "/api/v1/upstreams/backend/endpoints/[2001:db8::1]:8080")
            #expect(gone.status == 404)
            #expect(try await h.request(.delete, "/api/v1/upstreams/nope/endpoints/10.0.0.1:80").status == 404)
            #expect(try await h.storedVersion() == 6)
        }
    }

    @Test func concurrentEndpointRegistrationsAllLand() async throws {
        try await withController { h async throws in
            try await h.request(.put, "/api/v1/upstreams/backend", #"{"endpoints":[]}"#)
            let count = 20
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<count {
                    group.addTask {
                        try await h.request(.put, "/api/v1/upstreams/backend/endpoints/10.0.1.\(i):8080", #"{"weight":\#(i + 1)}"#).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses == Array(repeating: 201, count: count))
            let stored = try await h.request(.get, "/api/v1/upstreams/backend")
            guard case .array(let endpoints)? = stored.json["endpoints"] else {
                Issue.record("no endpoints")
                return
            }
            let addresses = Set(endpoints.compactMap { if case .string(let a)? = $0["address"] { a } else { nil } })
            #expect(addresses == Set((0..<count).map { "10.0.1.\($0):8080" }))
            #expect(try await h.storedVersion() == Int64(1 + count))

            // and all leave again, concurrently
            let leaving = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<count {
                    group.addTask { try await h.request(.delete, "/api/v1/upstreams/backend/endpoints/10.0.1.\(i):8080").status }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(leaving == Array(repeating: 200, count: count))
            #expect(try await h.request(.get, "/api/v1/upstreams/backend").json["endpoints"] == [])
        }
    }

    // MARK: Batches

    @Test func batchIsAllOrNothing() async throws {
        try await withController { h async throws in
            let good = #"""
                {"routes":[{"id":"r1","host":"a.com","path":"/","upstream":"u1"},{"id":"r2","host":"b.com","path":"/x","match":"exact","upstream":"u1"}],
                 "upstreams":[{"name":"u1","endpoints":[{"address":"10.0.0.1:80"}]}]}
                """#
            let applied = try await h.request(.post, "/api/v1/apply", good)
            #expect(applied.status == 200)
            #expect(applied.json == ["changed": 3, "version": 1])
            #expect(try await h.request(.get, "/api/v1/routes").json["items"]?.count == 2)

            let again = try await h.request(.post, "/api/v1/apply", good)
            #expect(again.json == ["changed": 0, "version": 1])

            let keysBefore = try await h.allKeys()
            let bad = #"""
                {"upstreams":[{"name":"u2","endpoints":[{"address":"10.0.0.1"}]}],
                 "routes":[{"id":"r3","host":"ok.com","path":"/","upstream":"u2"},
                           {"id":"r4","host":"bad..com","path":"/","upstream":"u1"},
                           {"id":"r5","host":"ok.com","path":"/","upstream":"ghost"}]}
                """#
            let rejected = try await h.request(.post, "/api/v1/apply", bad)
            #expect(rejected.status == 422)
            #expect(rejected.errorCode == "invalid")
            #expect(rejected.json["error"]?["message"] == "3 problems")
            #expect(rejected.json["error"]?["field"] == "upstreams[0].endpoints[0].address")
            #expect(rejected.errorFields == ["upstreams[0].endpoints[0].address", "routes[1].host", "routes[2].upstream"])
            #expect(try await h.storedVersion() == 1)
            #expect(try await h.allKeys() == keysBefore)
            #expect(try await h.redis.send("XLEN", KeySchema.default.changes) == .integer(3))
        }
    }

    @Test func batchDeletesAndConflicts() async throws {
        try await withController { h async throws in
            let setup = #"{"upstreams":[{"name":"old"},{"name":"new"}],"routes":[{"id":"r","host":"a.com","path":"/","upstream":"old"}]}"#
            #expect(try await h.request(.post, "/api/v1/apply", setup).status == 200)

            let inUse = try await h.request(.post, "/api/v1/apply", #"{"delete":{"upstreams":["old"]}}"#)
            #expect(inUse.status == 409)
            #expect(inUse.json["error"]?["routes"] == ["r"])

            let notFound = try await h.request(.post, "/api/v1/apply", #"{"delete":{"routes":["nope"]}}"#)
            #expect(notFound.status == 404)
            #expect(try await h.storedVersion() == 1)

            // moving the route and deleting its old upstream in one batch is fine
            let move = #"{"routes":[{"id":"r","host":"a.com","path":"/","upstream":"new"}],"delete":{"upstreams":["old"]}}"#
            let moved = try await h.request(.post, "/api/v1/apply", move)
            #expect(moved.status == 200)
            #expect(moved.json == ["changed": 2, "version": 2])
            #expect(try await h.request(.get, "/api/v1/upstreams/old").status == 404)

            let dup = try await h.request(.post, "/api/v1/apply", #"{"upstreams":[{"name":"x"}],"delete":{"upstreams":["x"]}}"#)
            #expect(dup.status == 422)
            #expect(dup.errorFields == ["delete.upstreams[0]"])

            #expect(try await h.request(.post, "/api/v1/apply", "{}").json == ["changed": 0, "version": 2])
        }
    }

    @Test func bigBatchesAndChunkedListing() async throws {
        try await withController { h async throws in
            let routes = (0..<1200).map { #"{"id":"r\#($0)","host":"h\#($0).example.com","path":"/","upstream":"u"}"# }
            let body = #"{"upstreams":[{"name":"u"}],"routes":[\#(routes.joined(separator: ","))]}"#
            // more than 1,000 objects in one atomic call: 413, nothing written
            let refused = try await h.request(.post, "/api/v1/apply", body)
            #expect(refused.status == 413)
            #expect(refused.json["error"]?["code"] == "too_large")
            #expect(try await h.request(.get, "/api/v1/routes").json["items"]?.count == 0)
            // the same import in parts: two atomic calls, two versions
            let applied = try await h.request(.post, "/api/v1/apply?atomic=false", body)
            #expect(applied.status == 200)
            #expect(applied.json["changed"] == 1201)
            #expect(applied.json["versions"] == [1, 2])
            let list = try await h.request(.get, "/api/v1/routes")
            #expect(list.json["items"]?.count == 1200)
            #expect(list.json["items"]?[0]?["id"] == "r0")
            // one change-stream entry per object, as for every batch
            let entries = try await h.redis.send("XRANGE", KeySchema.default.changes, "-", "+").array ?? []
            #expect(entries.count == 1201)
        }
    }

    // MARK: Status

    @Test func statusListsLiveEdgesAndPrunesStaleOnes() async throws {
        try await withController { h async throws in
            try await h.request(.put, "/api/v1/upstreams/a", "{}")
            try await h.request(.put, "/api/v1/upstreams/b", "{}")
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            _ = try await h.redis.pipeline([
                ["ZADD", KeySchema.default.edges, "\(now)", "edge-1", "\(now - 60_000)", "edge-stale"],
                [
                    "HSET", KeySchema.default.edge("edge-1"), "id", "edge-1", "applied_version", "1", "last_seen", "\(now)",
                    "started", "\(now - 5000)", "pid", "4242", "listen", "8080",
                ],
            ])
            let status = try await h.request(.get, "/api/v1/status")
            #expect(status.status == 200)
            #expect(status.version == 2)
            #expect(status.json["edges"]?.count == 1)
            let edge = status.json["edges"]?[0]
            #expect(edge?["id"] == "edge-1")
            #expect(edge?["applied_version"] == 1)
            #expect(edge?["lag"] == 1)
            #expect(edge?["pid"] == 4242)
            #expect(edge?["listen"] == "8080")
            if case .string(let seen)? = edge?["last_seen"] {
                #expect(seen.hasSuffix("Z") && seen.contains("T"))
            } else {
                Issue.record("last_seen is not a string")
            }
            #expect(try await h.redis.send("ZSCORE", KeySchema.default.edges, "edge-stale") == .null)
        }
    }

    // MARK: Redis trouble

    @Test func redisDownAnswers503Quickly() async throws {
        let port = try freeLoopbackPort()
        var configuration = Configuration(
            redisPort: port, adminToken: "t", redisTimeout: .milliseconds(500),
            redisConnectTimeout: .milliseconds(300), logLevel: .critical)
        configuration.functionsPath = repositoryRoot().appendingPathComponent("redis/switchyard.lua").path
        let app = try await buildApplication(configuration: configuration)
        try await app.test(.router) { client in
            let h = Harness(client: client, redis: RedisClient(configuration: .init(port: port)), token: "t")
            let clock = ContinuousClock()
            let elapsed = try await clock.measure {
                let put = try await h.request(.put, "/api/v1/upstreams/backend", backendBody)
                #expect(put.status == 503)
                #expect(put.errorCode == "unavailable")
                #expect(try await h.request(.get, "/api/v1/routes").status == 503)
                #expect(try await h.request(.get, "/api/v1/status").status == 503)
                let health = try await h.request(.get, "/healthz")
                #expect(health.status == 200)
                #expect(health.json["redis"] == false)
            }
            // loose on purpose (shared 2-core machines): it catches a call waiting for Redis, not speed
            #expect(elapsed < .seconds(10))
        }
    }

    @Test func reloadsTheFunctionLibraryWhenRedisLostIt() async throws {
        try await withController { h async throws in
            #expect(try await h.redis.send("FUNCTION", "FLUSH") == .status("OK"))
            #expect(try await h.request(.put, "/api/v1/upstreams/backend", backendBody).status == 201)
        }
    }

    @Test func worksWithARedisPassword() async throws {
        try await withController(password: "redis-pass") { h async throws in
            #expect(try await h.request(.put, "/api/v1/upstreams/backend", backendBody).status == 201)
            #expect(try await h.request(.get, "/healthz").json["redis"] == true)
        }
    }

    @Test func liveServerTakesRawAndEncodedIPv6Addresses() async throws {
        // over a real socket, so the HTTP parser sees the brackets and colons as sent
        try await withTemporaryRedis { server async throws in
            var configuration = testConfiguration(server, token: "live")
            configuration.port = 0
            let app = try await buildApplication(configuration: configuration)
            let redis = RedisClient(configuration: server.configuration())
            defer { Task { await redis.close() } }
            try await app.test(.live) { client in
                let h = Harness(client: client, redis: redis, token: "live")
                #expect(try await h.request(.put, "/api/v1/upstreams/backend", "{}").status == 201)
                let raw = try await h.request(.put, "/api/v1/upstreams/backend/endpoints/[fd00::1]:9000")
                #expect(raw.status == 201)
                let encoded = try await h.request(.delete, "/api/v1/upstreams/backend/endpoints/%5Bfd00%3A%3A1%5D%3A9000")
                #expect(encoded.status == 200)
                #expect(encoded.json["endpoints"] == [])
                #expect(try await h.request(.get, "/api/v1/upstreams", token: .some(nil)).status == 401)
            }
        }
    }

    @Test func wrongRedisPasswordIsUnavailableNotAnInternalError() async throws {
        let withoutPassword: (inout Configuration) -> Void = { $0.redisPassword = nil }
        try await withController(password: "right", configure: withoutPassword) { h async throws in
            let put = try await h.request(.put, "/api/v1/upstreams/backend", backendBody)
            #expect(put.status == 503)
            #expect((put.json["error"]?["message"]).map { "\($0)".contains("password") } == true)
            #expect(try await h.request(.get, "/healthz").json["redis"] == false)
        }
    }

    @Test func oversizedBodiesAre413() async throws {
        let smallBodies: (inout Configuration) -> Void = { $0.maxBodySize = 1024 }
        try await withController(configure: smallBodies) { h async throws in
            let body = #"{"endpoints":[],"x":""# + String(repeating: "a", count: 2000) + "\"}"
            let answer = try await h.request(.put, "/api/v1/upstreams/backend", body)
            #expect(answer.status == 413)
            #expect(answer.errorCode == "too_large")
            #expect(try await h.allKeys().isEmpty)
        }
    }

    @Test func unknownAPIPathsAnswerJSON404() async throws {
        try await withController { h async throws in
            let answer = try await h.request(.get, "/api/v1/nothing-here")
            #expect(answer.status == 404)
            #expect(answer.errorCode == "not_found")
        }
    }
}

@Suite("Configuration")
struct ConfigurationTests {
    @Test func secretsAreRedactedWhenPrinted() {
        let configuration = Configuration(redisPassword: "redis-secret", adminToken: "token-secret")
        var dumped = ""
        dump(configuration, to: &dumped)
        for text in [configuration.description, String(describing: configuration), "\(configuration)", dumped] {
            #expect(!text.contains("redis-secret"))
            #expect(!text.contains("token-secret"))
        }
        let redis = RedisConfiguration(password: "redis-secret")
        var dumpedRedis = ""
        dump(redis, to: &dumpedRedis)
        #expect(!"\(redis)".contains("redis-secret"))
        #expect(!dumpedRedis.contains("redis-secret"))
    }

    @Test func defaults() {
        let c = Configuration()
        #expect(c.host == "127.0.0.1")
        #expect(c.port == 9180)
        #expect(c.redisPort == 6380)
        #expect(c.adminToken == nil)
        #expect(c.bindsLoopbackOnly)
        #expect(!Configuration(host: "0.0.0.0").bindsLoopbackOnly)
        #expect(Configuration(host: "::1").bindsLoopbackOnly)
    }
}
