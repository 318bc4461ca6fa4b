import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import SwitchyardController
import SwitchyardCore
import SwitchyardRedis
import SwitchyardTestSupport
import Testing

// Ownership (docs: /work/notes/k8s-model.md section 4; redis/README.md, "Owners"): an object
// written by an owning writer (the Kubernetes source) is changed or deleted only by that
// writer; the admin API (no owner) gets 409 naming the owner and the source, and nothing
// is written. A real redis-server (withTemporaryRedis, through withController) and the
// Function library of this checkout.

@Suite("Ownership: owned objects are changed only by their owner")
struct OwnershipTests {
    static let owner = "k8s/switchyard"
    /// What the Kubernetes source writes: the document carries its provenance.
    static let ownedUpstream =
        #"{"balance":"round_robin","endpoints":[{"address":"127.0.0.1:9","weight":1}],"name":"u","source":"k8s:default/bbs"}"#

    /// A second writer on the same Redis, as the Kubernetes source is.
    func store(_ h: Harness) throws -> ConfigStore {
        let library = try String(contentsOf: repositoryRoot().appendingPathComponent("redis/switchyard.lua"), encoding: .utf8)
        var logger = Logger(label: "test.owner")
        logger.logLevel = .critical
        return ConfigStore(redis: h.redis, library: library, logger: logger)
    }

    func snapshot(_ h: Harness) async throws -> (version: Int64, document: String?, owners: String) {
        let version = try await h.storedVersion()
        let document = try await h.redis.send("GET", KeySchema.default.upstream("u")).text
        let owners = "\(try await h.redis.send("HGETALL", KeySchema.default.owners).array?.compactMap(\.text) ?? [])"
        return (version, document, owners)
    }

    func upstream(_ json: String) throws -> Upstream {
        try Validator().upstream(try JSONValue.parse(json), name: "u").get()
    }

    @Test func anOwnedObjectIsChangedAndDeletedOnlyByItsOwner() async throws {
        try await withController { h in
            let writer = try store(h)
            let put = ApplyOperation(op: .put, kind: .upstream, id: "u", document: Self.ownedUpstream)
            _ = try await writer.apply([put], owner: Self.owner)
            #expect(try await h.redis.send("HGET", KeySchema.default.owners, "upstream:u").text == Self.owner)
            let before = try await snapshot(h)

            // the admin API (no owner): PUT, endpoint join, DELETE, a batch: 409, nothing written
            let attempts: [(HTTPRequest.Method, String, String?, String)] = [
                (.put, "/api/v1/upstreams/u", #"{"endpoints":[{"address":"127.0.0.1:10"}]}"#, "name"),
                (.put, "/api/v1/upstreams/u/endpoints/127.0.0.1:11", nil, "name"),
                (.delete, "/api/v1/upstreams/u", nil, "name"),
                (.post, "/api/v1/apply", #"{"upstreams":[{"name":"u","endpoints":[]}]}"#, "upstreams[0]"),
                (.post, "/api/v1/apply", #"{"delete":{"upstreams":["u"]}}"#, "delete.upstreams[0]"),
            ]
            for (method, path, body, field) in attempts {
                let answer = try await h.request(method, path, body)
                #expect(answer.status == 409 && answer.errorCode == "owned", "\(method) \(path): \(answer.json)")
                #expect(answer.json["error"]?["owner"] == .string(Self.owner), "\(answer.json)")
                #expect(answer.json["error"]?["source"] == .string("k8s:default/bbs"), "\(answer.json)")
                #expect(answer.json["error"]?["field"] == .string(field), "\(answer.json)")
                let after = try await snapshot(h)
                #expect(after.version == before.version && after.document == before.document && after.owners == before.owners)
            }
            // another owning writer: refused the same way
            await #expect(throws: StoreError.self) {
                _ = try await writer.put(try upstream(#"{"endpoints":[]}"#), owner: "k8s/other")
            }
            #expect(try await snapshot(h).version == before.version)

            // its owner changes it, then deletes it; the owners entry goes with it
            let (stored, created) = try await writer.put(try upstream(#"{"endpoints":[]}"#), owner: Self.owner)
            #expect(!created && stored.version == before.version + 1)
            #expect(try await h.redis.send("HGET", KeySchema.default.owners, "upstream:u").text == Self.owner)
            let deleted = try await writer.delete(.upstream, "u", owner: Self.owner)
            #expect(deleted == before.version + 2)
            #expect(try await h.redis.send("HGET", KeySchema.default.owners, "upstream:u").text == nil)
            // unowned again: the admin API may create it
            #expect(try await h.request(.put, "/api/v1/upstreams/u", #"{"endpoints":[]}"#).status == 201)
        }
    }

    @Test func anUnownedObjectCannotBeTouchedByAnOwningWriter() async throws {
        try await withController { h in
            #expect(try await h.request(.put, "/api/v1/upstreams/u", #"{"endpoints":[]}"#).status == 201)
            let writer = try store(h)
            let before = try await snapshot(h)
            do {
                _ = try await writer.put(try upstream(#"{"endpoints":[{"address":"127.0.0.1:12"}]}"#), owner: Self.owner)
                Issue.record("an owning writer changed an object the admin API owns")
            } catch let error as StoreError {
                guard case .other(let code, _)? = error.apply else {
                    Issue.record("unexpected error \(error)")
                    return
                }
                #expect(code == "owned")
            }
            await #expect(throws: StoreError.self) { _ = try await writer.delete(.upstream, "u", owner: Self.owner) }
            let after = try await snapshot(h)
            #expect(after.version == before.version && after.document == before.document && after.owners == "[]")
            // and the admin API still can
            #expect(try await h.request(.delete, "/api/v1/upstreams/u").status == 200)
        }
    }

    @Test func anOwningWriterCreatesWhatDoesNotExistAndOwnsIt() async throws {
        try await withController { h in
            let writer = try store(h)
            let (stored, created) = try await writer.put(try upstream(#"{"endpoints":[]}"#), owner: Self.owner)
            #expect(created && stored.version == 1)
            #expect(try await h.redis.send("HGET", KeySchema.default.owners, "upstream:u").text == Self.owner)
            // an identical put by its owner changes nothing
            let (again, createdAgain) = try await writer.put(try upstream(#"{"endpoints":[]}"#), owner: Self.owner)
            #expect(!createdAgain && again.version == 1)
        }
    }
}
