import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import SwitchyardController
import SwitchyardCore
import SwitchyardRedis
import SwitchyardTestSupport
import Testing

// History, revert, If-Match, dry runs and apply with prune (docs/change-management.md)
// against a real redis-server and the Function library of this checkout.

@Suite("Change management: history, revert, If-Match, dry run, prune")
struct ChangeManagementTests {
    static let upstream = #"{"endpoints":[{"address":"127.0.0.1:9001"}]}"#

    /// A request with extra headers (note, If-Match).
    func send(
        _ h: Harness, _ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil, headers extra: [String: String] = [:]
    ) async throws -> Harness.Answer {
        var headers = HTTPFields()
        if let token = h.token { headers[.authorization] = "Bearer \(token)" }
        if body != nil { headers[.contentType] = "application/json" }
        for (name, value) in extra { headers[HTTPFields.Element.Name(name)!] = value }
        return try await h.client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) {
            response in
            let text = String(buffer: response.body)
            return Harness.Answer(
                status: Int(response.status.code), json: (try? JSONValue.parse(text)) ?? .string(text), headers: response.headers)
        }
    }

    /// Every switchyard key with its DUMP: equal before and after = nothing written. Sets and
    /// hashes by their sorted members: a read may take a rehash step, which reorders a
    /// hashtable's DUMP without changing what it holds.
    func dump(_ h: Harness) async throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        for key in try await h.allKeys() where key.hasPrefix(KeySchema.default.base) && !key.hasPrefix(KeySchema.default.base + "edge") {
            switch try await h.redis.send("TYPE", key).text {
            case "set"?: out[key] = (try await h.redis.send("SMEMBERS", key).array ?? []).compactMap(\.text).sorted()
            case "hash"?:
                let items = (try await h.redis.send("HGETALL", key).array ?? []).compactMap(\.text)
                out[key] = stride(from: 0, to: items.count - 1, by: 2).map { items[$0] + "\u{0}" + items[$0 + 1] }.sorted()
            default: out[key] = [(try await h.redis.send("DUMP", key).bytes ?? []).map { String($0) }.joined(separator: ",")]
            }
        }
        return out
    }

    func digest(_ h: Harness) async throws -> String? { try await h.redis.send("GET", KeySchema.default.digest).text }

    func string(_ value: JSONValue?) -> String? { if case .string(let s)? = value { return s } else { return nil } }

    @Test func historyRecordsWhoNoteAndEachObjectBeforeAndAfter() async throws {
        try await withController { h in
            #expect(
                try await send(h, .put, "/api/v1/upstreams/u", Self.upstream, headers: ["X-Switchyard-Note": "first upstream"]).status
                    == 201)
            #expect(try await send(h, .put, "/api/v1/upstreams/u", #"{"endpoints":[{"address":"127.0.0.1:9002"}]}"#).status == 200)
            let list = try await h.request(.get, "/api/v1/history?since=0")
            #expect(list.status == 200)
            #expect(list.json["items"]?.count == 2)
            let first = try #require(list.json["items"]?[0])
            #expect(first["version"] == .integer(1))
            #expect(string(first["who"]) == "admin")
            #expect(string(first["note"]) == "first upstream")
            #expect(first["objects"]?[0]?["op"] == .string("created"))
            #expect(first["objects"]?[0]?["before"] == .null)
            let second = try await h.request(.get, "/api/v1/history/2")
            #expect(second.status == 200)
            #expect(second.json["note"] == .null)
            #expect(second.json["objects"]?[0]?["op"] == .string("updated"))
            #expect(second.json["objects"]?[0]?["fields"]?[0]?["field"] == .string("endpoints[0].address"))
            #expect(second.json["objects"]?[0]?["before"]?["endpoints"]?[0]?["address"] == .string("127.0.0.1:9001"))
            #expect(string(second.json["digest"]) == (try await digest(h)))
            // since, limit, a version not kept, bad parameters and a bad note
            #expect(try await h.request(.get, "/api/v1/history?since=1").json["items"]?.count == 1)
            #expect(try await h.request(.get, "/api/v1/history?limit=1").json["next_since"] == .integer(1))
            #expect(try await h.request(.get, "/api/v1/history/99").status == 404)
            #expect(try await h.request(.get, "/api/v1/history?limit=0").errorFields == ["limit"])
            let bad = try await send(
                h, .put, "/api/v1/upstreams/v", Self.upstream, headers: ["X-Switchyard-Note": String(repeating: "x", count: 501)])
            #expect(bad.status == 400)
            #expect(try await h.storedVersion() == 2)
        }
    }

    @Test func aWriterOutsideTheAPIIsRecordedByItsOwnerName() async throws {
        try await withController { h in
            // the Kubernetes source writes through ConfigStore.apply with its owner, no token
            let library = try String(contentsOf: repositoryRoot().appendingPathComponent("redis/switchyard.lua"), encoding: .utf8)
            var logger = Logger(label: "test.history")
            logger.logLevel = .critical
            let writer = ConfigStore(redis: h.redis, library: library, logger: logger)
            let put = ApplyOperation(op: .put, kind: .upstream, id: "k", document: #"{"endpoints":[],"name":"k"}"#)
            _ = try await writer.apply([put], owner: "k8s/switchyard")
            let entry = try await h.request(.get, "/api/v1/history/1")
            #expect(entry.json["who"] == .string("k8s/switchyard"))
            #expect(entry.json["objects"]?[0]?["id"] == .string("k"))
        }
    }

    @Test func certificateKeysAreNeverAnsweredButRevertRestoresThem() async throws {
        try await withController(configure: CertificatesAPITests.encryptingKeys) { h in
            let pair = CertificatesAPITests.pair(["shop.test"])
            #expect(try await h.request(.put, "/api/v1/certificates/shop", CertificatesAPITests.body(pair)).status == 201)
            let stored = try await h.redis.send("GET", KeySchema.default.certificate("shop")).text
            #expect(try await h.request(.delete, "/api/v1/certificates/shop").status == 200)
            for path in ["/api/v1/history", "/api/v1/history/1", "/api/v1/history/2"] {
                let text = try await h.request(.get, path).json.canonical
                #expect(!text.contains("aes-256-gcm"), "\(path) shows the encrypted key")
                #expect(!text.contains("PRIVATE KEY"), "\(path) shows the key")
                #expect(text.contains("redacted"))
            }
            let revert = try await h.request(.post, "/api/v1/revert", #"{"to_version":1}"#)
            #expect(revert.status == 200)
            #expect(try await h.redis.send("GET", KeySchema.default.certificate("shop")).text == stored)
            #expect(revert.json["digest"] == revert.json["digest_at_version"])
        }
    }

    @Test func revertRestoresEveryObjectAndTheDigestInOneChange() async throws {
        try await withController { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/u", Self.upstream).status == 201)
            #expect(try await h.request(.put, "/api/v1/routes/a", #"{"host":"a.test","path":"/","upstream":"u"}"#).status == 201)
            let atTwo = try await dump(h).filter { $0.key.contains(":route:") || $0.key.contains(":upstream:") }
            let digestAtTwo = try await digest(h)
            #expect(try await h.request(.put, "/api/v1/upstreams/w", Self.upstream).status == 201)
            #expect(try await h.request(.put, "/api/v1/routes/a", #"{"host":"a.test","path":"/x","upstream":"w"}"#).status == 200)
            #expect(try await h.request(.put, "/api/v1/routes/b", #"{"host":"b.test","path":"/","upstream":"u"}"#).status == 201)
            #expect(try await h.request(.delete, "/api/v1/upstreams/u/endpoints/127.0.0.1:9001").status == 200)
            let revert = try await send(h, .post, "/api/v1/revert", #"{"to_version":2}"#)
            #expect(revert.status == 200)
            #expect(revert.json["version"] == .integer(7))
            #expect(try await h.storedVersion() == 7)
            #expect(try await digest(h) == digestAtTwo)
            #expect(string(revert.json["digest"]) == digestAtTwo)
            let now = try await dump(h).filter { $0.key.contains(":route:") || $0.key.contains(":upstream:") }
            #expect(Set(now.keys) == Set(atTwo.keys))
            #expect(try await h.redis.send("SMEMBERS", KeySchema.default.routes).array?.compactMap(\.text) == ["a"])
            let entry = try await h.request(.get, "/api/v1/history/7")
            #expect(string(entry.json["note"]) == "revert to version 2")
            #expect(entry.json["objects"]?.count == 4)
            // reverting to where it is changes nothing
            #expect(try await h.request(.post, "/api/v1/revert", #"{"to_version":7}"#).json["changed"] == .integer(0))
            #expect(try await h.request(.post, "/api/v1/revert", #"{"to_version":99}"#).errorFields == ["to_version"])
            #expect(try await h.request(.post, "/api/v1/revert", #"{"to":1}"#).status == 422)
        }
    }

    @Test func revertBeyondTheHistoryNamesTheOldestVersion() async throws {
        try await withController { h in
            // six changes kept at most three (the keep option the controller passes)
            for i in 1...6 {
                let reply = try await h.redis.send(
                    [
                        "FCALL", "sy_apply", "1", KeySchema.default.version, "keep", "3:100000", "put", "upstream", "u",
                        #"{"endpoints":[],"name":"u","weight_seed":\#(i)}"#, "", "",
                    ])
                #expect(reply.array != nil, "\(reply)")
            }
            #expect(try await h.redis.send("XLEN", KeySchema.default.history).integer == 3)
            let answer = try await h.request(.post, "/api/v1/revert", #"{"to_version":2}"#)
            #expect(answer.status == 409)
            #expect(answer.errorCode == "beyond_retention")
            #expect(answer.json["error"]?["oldest_version"] == .integer(4))
            #expect(try await h.storedVersion() == 6)
            #expect(try await h.request(.post, "/api/v1/revert", #"{"to_version":4}"#).status == 200)
        }
    }

    @Test func historyIsBoundedByBytes() async throws {
        try await withController { h in
            for i in 1...10 {
                _ = try await h.redis.send(
                    [
                        "FCALL", "sy_apply", "1", KeySchema.default.version, "keep", "1000:1000", "put", "upstream", "u",
                        #"{"endpoints":[],"name":"u","pad":"\#(String(repeating: "x", count: 200))\#(i)"}"#, "", "",
                    ])
            }
            let bytes = try #require(try await h.redis.send("GET", KeySchema.default.historyBytes).integer)
            #expect(bytes <= 1000)
            let length = try #require(try await h.redis.send("XLEN", KeySchema.default.history).integer)
            #expect(length >= 1 && length < 10)
            // the stream deleted by hand: the byte count starts over with the next entry
            _ = try await h.redis.send("DEL", KeySchema.default.history)
            #expect(try await h.request(.put, "/api/v1/upstreams/v", Self.upstream).status == 201)
            let entry = try await h.redis.send("XRANGE", KeySchema.default.history, "-", "+")
            let recorded = entry.array?.first?.array?[1].array?[1].integer
            #expect(recorded != nil)
            #expect(try await h.redis.send("GET", KeySchema.default.historyBytes).integer == recorded)
        }
    }

    @Test func ifMatchWritesOnlyAtThatVersionAndGetsCarryAnETag() async throws {
        try await withController { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/u", Self.upstream).status == 201)
            let get = try await h.request(.get, "/api/v1/upstreams")
            #expect(get.headers[.eTag] == "\"1\"")
            let ok = try await send(
                h, .put, "/api/v1/routes/a", #"{"host":"a.test","path":"/","upstream":"u"}"#, headers: ["If-Match": "\"1\""])
            #expect(ok.status == 201)
            let before = try await dump(h)
            for (method, path, body) in [
                (HTTPRequest.Method.put, "/api/v1/routes/b", #"{"host":"b.test","path":"/","upstream":"u"}"#),
                (.delete, "/api/v1/routes/a", nil), (.post, "/api/v1/apply", #"{"delete":{"routes":["a"]}}"#),
                (.post, "/api/v1/revert", #"{"to_version":1}"#),
            ] {
                let stale = try await send(h, method, path, body, headers: ["If-Match": "\"1\""])
                #expect(stale.status == 412, "\(path)")
                #expect(stale.errorCode == "precondition_failed")
                #expect(stale.json["error"]?["version"] == .integer(2))
            }
            #expect(try await dump(h) == before)
            #expect(try await send(h, .put, "/api/v1/routes/b", "{}", headers: ["If-Match": "soon"]).status == 400)
        }
    }

    @Test func concurrentWritersWithTheSameIfMatchOneWins() async throws {
        try await withController { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/u", Self.upstream).status == 201)
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<8 {
                    group.addTask {
                        try await send(
                            h, .put, "/api/v1/routes/r\(i)", #"{"host":"h\#(i).test","path":"/","upstream":"u"}"#,
                            headers: ["If-Match": "\"1\""]
                        ).status
                    }
                }
                var out: [Int] = []
                for try await status in group { out.append(status) }
                return out
            }
            #expect(statuses.filter { $0 == 201 }.count == 1)
            #expect(statuses.filter { $0 == 412 }.count == 7)
            #expect(try await h.storedVersion() == 2)
            #expect(try await h.redis.send("SCARD", KeySchema.default.routes).integer == 1)
        }
    }

    @Test func dryRunsWriteNothingAndDescribeTheChange() async throws {
        try await withController { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/u", Self.upstream).status == 201)
            #expect(
                try await h.request(.put, "/api/v1/routes/a", #"{"host":"a.test","path":"/api","match":"prefix","upstream":"u"}"#).status
                    == 201)
            let before = try await dump(h)
            // b takes every request of a (the same prefix, higher priority)
            let put = try await h.request(
                .put, "/api/v1/routes/b?dry_run=true", #"{"host":"a.test","path":"/api","match":"prefix","priority":5,"upstream":"u"}"#)
            #expect(put.status == 200)
            #expect(put.json["dry_run"] == .bool(true))
            #expect(put.json["changes"]?["created"]?[0]?["id"] == .string("b"))
            #expect(put.json["impact"]?["shadowed_routes"]?[0]?["route"] == .string("a"))
            #expect(put.json["impact"]?["shadowed_routes"]?[0]?["by"] == .string("b"))
            #expect(put.json["impact"]?["shadowed_routes"]?[0]?["new"] == .bool(true))
            let endpoint = try await h.request(.delete, "/api/v1/upstreams/u/endpoints/127.0.0.1:9001?dry_run=true")
            #expect(endpoint.json["changes"]?["updated"]?[0]?["fields"]?[0]?["field"] == .string("endpoints"))
            #expect(endpoint.json["impact"]?["upstreams_without_endpoints"] == .array([.string("u")]))
            #expect(endpoint.json["impact"]?["routes_without_healthy_endpoints"]?[0]?["route"] == .string("a"))
            let apply = try await h.request(.post, "/api/v1/apply?dry_run=true", #"{"delete":{"routes":["a"]}}"#)
            #expect(apply.json["changes"]?["deleted"]?[0]?["id"] == .string("a"))
            #expect(try await h.request(.post, "/api/v1/revert?dry_run=true", #"{"to_version":1}"#).json["changes"]?["deleted"]?.count == 1)
            let refused = try await h.request(.delete, "/api/v1/upstreams/u?dry_run=true")
            #expect(refused.status == 409)  // in use: a dry run checks what the write would
            let identical = try await h.request(.put, "/api/v1/upstreams/u?dry_run=true", Self.upstream)
            #expect(identical.json["changed"] == .integer(0))
            #expect(try await h.request(.post, "/api/v1/reseed?dry_run=true", #"{"confirm":"none"}"#).status == 422)
            #expect(try await dump(h) == before)
        }
    }

    @Test func pruneMakesOneOwnersObjectsEqualTheDocumentAndNothingElse() async throws {
        try await withController { h in
            let other = #"{"upstreams":[{"name":"ou","endpoints":[]}],"routes":[{"id":"o","host":"o.test","path":"/","upstream":"ou"}]}"#
            #expect(try await h.request(.post, "/api/v1/apply?owner=team-b", other).status == 200)
            #expect(try await h.request(.put, "/api/v1/upstreams/free", Self.upstream).status == 201)
            let first =
                #"{"upstreams":[{"name":"u","endpoints":[]}],"routes":[{"id":"x","host":"x.test","path":"/","upstream":"u"},{"id":"y","host":"y.test","path":"/","upstream":"u"}]}"#
            #expect(try await h.request(.post, "/api/v1/apply?prune=true&owner=team-a", first).status == 200)
            let otherBefore = try await dump(h).filter {
                $0.key.hasSuffix(":route:o") || $0.key.hasSuffix(":upstream:ou") || $0.key.hasSuffix(":upstream:free")
            }
            let second = #"{"upstreams":[{"name":"u","endpoints":[]}],"routes":[{"id":"x","host":"x.test","path":"/v2","upstream":"u"}]}"#
            let dry = try await h.request(.post, "/api/v1/apply?prune=true&owner=team-a&dry_run=true", second)
            #expect(dry.json["changes"]?["deleted"]?[0]?["id"] == .string("y"))
            let pruned = try await h.request(.post, "/api/v1/apply?prune=true&owner=team-a", second)
            #expect(pruned.status == 200)
            #expect(pruned.json["pruned"] == .array([.string("route:y")]))
            let routes = Set(try await h.redis.send("SMEMBERS", KeySchema.default.routes).array?.compactMap(\.text) ?? [])
            #expect(routes == ["o", "x"])
            let otherAfter = try await dump(h).filter {
                $0.key.hasSuffix(":route:o") || $0.key.hasSuffix(":upstream:ou") || $0.key.hasSuffix(":upstream:free")
            }
            #expect(otherAfter == otherBefore)
            // naming another owner's object, or an unowned one: refused, nothing written
            let version = try await h.storedVersion()
            let grab = #"{"upstreams":[{"name":"ou","endpoints":[]},{"name":"u","endpoints":[]}],"routes":[]}"#
            #expect(try await h.request(.post, "/api/v1/apply?prune=true&owner=team-a", grab).errorCode == "owned")
            #expect(try await h.storedVersion() == version)
            #expect(try await h.request(.post, "/api/v1/apply?prune=true", second).errorFields == ["owner"])
            // an empty document prunes everything team-a holds, in one change
            #expect(try await h.request(.post, "/api/v1/apply?prune=true&owner=team-a", "{}").json["pruned"]?.count == 2)
            #expect(try await h.storedVersion() == version + 1)
            #expect(Set(try await h.redis.send("SMEMBERS", KeySchema.default.upstreams).array?.compactMap(\.text) ?? []) == ["ou", "free"])
        }
    }

    @Test func certificatesTravelInApplyAndArePrunedWithTheirOwner() async throws {
        try await withController(configure: CertificatesAPITests.encryptingKeys) { h in
            let pair = CertificatesAPITests.pair(["a.test"])
            let certificate: JSONValue = ["id": "a", "cert": .string(pair.certificate), "key": .string(pair.key)]
            let document: JSONValue = [
                "certificates": .array([certificate]), "upstreams": .array([["name": "u", "endpoints": .array([])]]),
            ]
            let first = try await h.request(.post, "/api/v1/apply?prune=true&owner=team-a", document.canonical)
            #expect(first.status == 200)
            #expect(first.json["changed"] == .integer(2))
            #expect(try await h.redis.send("HGET", KeySchema.default.owners, "certificate:a").text == "team-a")
            #expect(try await h.redis.send("GET", KeySchema.default.certificate("a")).text?.contains("\"key_enc\"") == true)
            // the same document again: the key's ciphertext is kept, nothing changes
            #expect(try await h.request(.post, "/api/v1/apply?prune=true&owner=team-a", document.canonical).json["changed"] == .integer(0))
            // a bad certificate names its field; nothing written
            let bad: JSONValue = ["certificates": .array([["id": "b", "cert": "not a pem", "key": .string(pair.key)]])]
            let refused = try await h.request(.post, "/api/v1/apply", bad.canonical)
            #expect(refused.status == 422)
            #expect(refused.errorFields.first?.hasPrefix("certificates[0].cert") == true)
            #expect(try await h.storedVersion() == 1)
            // pruned with the owner's other objects
            let pruned = try await h.request(.post, "/api/v1/apply?prune=true&owner=team-a", "{}")
            #expect(pruned.json["pruned"] == .array([.string("certificate:a"), .string("upstream:u")]))
            #expect(try await h.redis.send("SCARD", KeySchema.default.certificates).integer == 0)
            // and without an owner, deleted by id
            #expect(try await h.request(.post, "/api/v1/apply", document.canonical).status == 200)
            #expect(try await h.request(.post, "/api/v1/apply", #"{"delete":{"certificates":["a"]}}"#).json["changed"] == .integer(1))
        }
    }

    @Test func revertRefusesOwnedObjectsUnlessIncluded() async throws {
        try await withController { h in
            #expect(
                try await h.request(.post, "/api/v1/apply?owner=k8s/switchyard", #"{"upstreams":[{"name":"k","endpoints":[]}]}"#).status
                    == 200)
            #expect(
                try await h.request(
                    .post, "/api/v1/apply?owner=k8s/switchyard", #"{"upstreams":[{"name":"k","endpoints":[{"address":"127.0.0.1:9"}]}]}"#
                ).status == 200)
            let refused = try await h.request(.post, "/api/v1/revert", #"{"to_version":1}"#)
            #expect(refused.status == 409)
            #expect(refused.errorCode == "owned")
            #expect(refused.json["error"]?["objects"]?[0]?["owner"] == .string("k8s/switchyard"))
            #expect(try await h.storedVersion() == 2)
            let included = try await h.request(.post, "/api/v1/revert", #"{"to_version":1,"include_owned":true}"#)
            #expect(included.status == 200)
            #expect(included.json["digest"] == included.json["digest_at_version"])
            #expect(try await h.redis.send("HGET", KeySchema.default.owners, "upstream:k").text == "k8s/switchyard")
            #expect(string(try await h.request(.get, "/api/v1/history/2").json["who"]) == "admin")
        }
    }
}
