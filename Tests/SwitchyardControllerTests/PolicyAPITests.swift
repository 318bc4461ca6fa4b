import Foundation
import Hummingbird
import HummingbirdTesting
import SwitchyardController
import SwitchyardCore
import SwitchyardRedis
import SwitchyardTestSupport
import Testing

/// Traffic policies through the API against a real Redis and the real sy_apply Function:
/// split and canary upstreams are references like `upstream`, redirect routes have none.
@Suite("Traffic policies through the API", .serialized)
struct PolicyAPITests {
    func uses(_ h: Harness, _ upstream: String) async throws -> Set<String> {
        Set(try await h.redis.send("SMEMBERS", KeySchema.default.usedBy(upstream)).array?.compactMap(\.text) ?? [])
    }

    func putUpstreams(_ h: Harness, _ names: String...) async throws {
        for name in names {
            #expect(try await h.request(.put, "/api/v1/upstreams/\(name)", #"{"endpoints":[{"address":"127.0.0.1:9"}]}"#).status == 201)
        }
    }

    @Test func splitAndCanaryUpstreamsMustExistAndAreProtected() async throws {
        try await withController { h async throws in
            try await putUpstreams(h, "blue", "green")
            let keys = try await h.allKeys()

            let split = #"{"host":"a.test","path":"/","split":[{"upstream":"blue","weight":90},{"upstream":"ghost","weight":10}]}"#
            let missingSplit = try await h.request(.put, "/api/v1/routes/ab", split)
            #expect(missingSplit.status == 422)
            #expect(missingSplit.errorFields == ["split[1].upstream"])
            #expect(missingSplit.json["error"]?["details"]?[0]?["code"] == "missing_upstream")
            // sy_apply names the first missing upstream; the answer lists every one
            let twoGhosts =
                #"{"host":"a.test","path":"/","split":[{"upstream":"ghost","weight":1},{"upstream":"blue","weight":1},{"upstream":"phantom","weight":1}]}"#
            #expect(
                Set(try await h.request(.put, "/api/v1/routes/ab", twoGhosts).errorFields) == ["split[0].upstream", "split[2].upstream"])

            let canary = #"{"host":"a.test","path":"/","upstream":"blue","canary":{"upstream":"ghost","header":"X-Canary"}}"#
            #expect(try await h.request(.put, "/api/v1/routes/c", canary).errorFields == ["canary.upstream"])

            // an invalid body still says which named upstreams are missing
            let both = #"{"host":"a.test","path":"/","upstream":"blue","canary":{"upstream":"ghost"}}"#
            #expect(Set(try await h.request(.put, "/api/v1/routes/c", both).errorFields) == ["canary", "canary.upstream"])
            #expect(try await h.allKeys() == keys)

            let batch =
                #"{"routes":[{"id":"ab","host":"a.test","path":"/","split":[{"upstream":"blue","weight":1},{"upstream":"ghost","weight":1}]}]}"#
            let missingInBatch = try await h.request(.post, "/api/v1/apply", batch)
            #expect(missingInBatch.status == 422)
            #expect(missingInBatch.errorFields == ["routes[0].split[1].upstream"])
            #expect(try await h.allKeys() == keys)

            // a canary is a use: its upstream cannot be deleted while the route has it
            let good = #"{"host":"a.test","path":"/","upstream":"blue","canary":{"upstream":"green","header":"X-Canary","value":"1"}}"#
            #expect(try await h.request(.put, "/api/v1/routes/c", good).status == 201)
            #expect(try await uses(h, "green") == ["c"])
            #expect(try await h.redis.send("HGET", KeySchema.default.uses, "c").text == "blue,green")
            let inUse = try await h.request(.delete, "/api/v1/upstreams/green")
            #expect(inUse.status == 409)
            #expect(inUse.json["error"]?["routes"] == ["c"])
            let inUseBatch = try await h.request(.post, "/api/v1/apply", #"{"delete":{"upstreams":["green"]}}"#)
            #expect(inUseBatch.status == 409)

            // so is a split entry, even with weight 0
            let zero = #"{"host":"b.test","path":"/","split":[{"upstream":"blue","weight":1},{"upstream":"green","weight":0}]}"#
            #expect(try await h.request(.put, "/api/v1/routes/ab", zero).status == 201)
            #expect(try await uses(h, "green") == ["ab", "c"])

            // deleting a split's upstream in the batch that still uses it is refused before the Function
            let deleteUsed =
                #"{"routes":[{"id":"ab","host":"b.test","path":"/","split":[{"upstream":"blue","weight":1},{"upstream":"green","weight":1}]}],"delete":{"upstreams":["green"]}}"#
            let refused = try await h.request(.post, "/api/v1/apply", deleteUsed)
            #expect(refused.status == 422)
            #expect(refused.errorFields == ["routes[0].split[1].upstream"])

            // dropping the canary and the split frees green
            let version = try await h.storedVersion()
            let free =
                #"{"routes":[{"id":"c","host":"a.test","path":"/","upstream":"blue"},{"id":"ab","host":"b.test","path":"/","upstream":"blue"}],"delete":{"upstreams":["green"]}}"#
            #expect(try await h.request(.post, "/api/v1/apply", free).json == ["changed": 3, "version": .integer(version + 1)])
            #expect(try await uses(h, "green").isEmpty)
            #expect(try await h.redis.send("HGET", KeySchema.default.uses, "c").text == "blue")
        }
    }

    @Test func redirectRoutesUseNoUpstream() async throws {
        try await withController { h async throws in
            let body =
                #"{"host":"old.test","path":"/","redirect":{"to":"https://new.test","keep_path":true},"response_headers":{"set":{"X-Moved":"1"}}}"#
            let created = try await h.request(.put, "/api/v1/routes/moved", body)
            #expect(created.status == 201)
            #expect(created.json["upstream"] == nil)
            #expect(created.json["redirect"] == ["keep_path": true, "status": 301, "to": "https://new.test"])
            #expect(try await h.redis.send("HGET", KeySchema.default.uses, "moved") == .null)
            #expect(try await h.request(.get, "/api/v1/routes/moved").json == created.json)

            let withUpstream = #"{"host":"old.test","path":"/","upstream":"x","redirect":{"to":"/n"}}"#
            let refused = try await h.request(.put, "/api/v1/routes/moved", withUpstream)
            #expect(refused.status == 422)
            #expect(refused.errorFields.first == "upstream")
            #expect(try await h.storedVersion() == 1)
        }
    }

    @Test func everyOptionIsStoredCanonicallyAndReadBack() async throws {
        try await withController { h async throws in
            try await putUpstreams(h, "blue", "green", "red")
            let body = """
                {"host":"shop.test","path":"/shop","priority":3,
                 "split":[{"upstream":"blue","weight":9},{"upstream":"green","weight":1}],
                 "split_sticky":{"cookie":"ab","ttl_s":60},
                 "canary":{"upstream":"red","cookie":"canary"},
                 "rewrite":{"strip_prefix":true},
                 "request_headers":{"set":{"X-Route":"shop"},"remove":["X-Debug"]},
                 "response_headers":{"remove":["Server"]},
                 "timeouts":{"connect_ms":500,"read_ms":30000},
                 "max_body_bytes":1024,
                 "rate_limit":{"rps":50,"burst":10,"key":"header:X-Api-Key"},
                 "allow":["10.0.0.0/8","2001:DB8::/32"],"deny":["10.9.9.9"]}
                """
            let created = try await h.request(.put, "/api/v1/routes/shop", body)
            #expect(created.status == 201)
            let expected =
                #"{"allow":["10.0.0.0/8","2001:db8::/32"],"canary":{"cookie":"canary","upstream":"red"},"deny":["10.9.9.9"],"#
                + #""host":"shop.test","id":"shop","match":"prefix","max_body_bytes":1024,"path":"/shop","priority":3,"#
                + #""rate_limit":{"burst":10,"key":"header:X-Api-Key","rps":50},"#
                + #""request_headers":{"remove":["X-Debug"],"set":{"X-Route":"shop"}},"response_headers":{"remove":["Server"]},"#
                + #""rewrite":{"strip_prefix":true},"split":[{"upstream":"blue","weight":9},{"upstream":"green","weight":1}],"#
                + #""split_sticky":{"cookie":"ab","ttl_s":60},"timeouts":{"connect_ms":500,"read_ms":30000}}"#
            let version = try #require(created.version)
            #expect(
                try await h.redis.send("GET", KeySchema.default.route("shop")).text == "{\"version\":\(version)," + expected.dropFirst())
            #expect(created.json.canonical == String(expected.dropLast()) + ",\"version\":\(version)}")
            #expect(try await h.request(.get, "/api/v1/routes/shop").json == created.json)
            #expect(try await h.redis.send("HGET", KeySchema.default.uses, "shop").text == "blue,green,red")

            // the same options written differently change nothing
            let same = body.replacingOccurrences(of: "2001:DB8::/32", with: "2001:db8:0::/32")
            let again = try await h.request(.put, "/api/v1/routes/shop", same)
            #expect(again.status == 200)
            #expect(again.version == version)

            let upstream = try await h.request(.put, "/api/v1/upstreams/blue", #"{"balance":"hash","hash_on":"cookie:sid"}"#)
            #expect(upstream.status == 200)
            #expect(upstream.json["hash_on"] == "cookie:sid")
            let sticky = try await h.request(.put, "/api/v1/upstreams/green", #"{"balance":"sticky","sticky":{"ttl_s":0,"secure":true}}"#)
            #expect(sticky.json["sticky"] == ["cookie": "sy_sticky", "httponly": true, "path": "/", "secure": true, "ttl_s": 0])
        }
    }

    @Test func badPoliciesAre422AndWriteNothing() async throws {
        try await withController { h async throws in
            try await putUpstreams(h, "blue")
            let keys = try await h.allKeys()
            let body = """
                {"host":"a.test","path":"/","upstream":"blue","canary":{"upstream":"blue","header":"X-C","colour":"red"},
                 "allow":["10.0.0.1/8"],"timeouts":{"connect_ms":0},"rate_limit":{"rps":1,"key":"cookie:x"}}
                """
            let answer = try await h.request(.put, "/api/v1/routes/r", body)
            #expect(answer.status == 422)
            #expect(answer.errorCode == "invalid")
            #expect(answer.errorFields == ["canary.colour", "timeouts.connect_ms", "rate_limit.key", "allow[0]"])
            guard case .string(let hint)? = answer.json["error"]?["details"]?[3]?["message"] else {
                Issue.record("no message: \(answer.json.canonical)")
                return
            }
            #expect(hint.contains("did you mean 10.0.0.0/8"), "\(hint)")
            let upstream = try await h.request(.put, "/api/v1/upstreams/blue", #"{"balance":"hash"}"#)
            #expect(upstream.status == 422)
            #expect(upstream.errorFields == ["hash_on"])
            #expect(try await h.allKeys() == keys)
        }
    }
}
