import Foundation
import SwitchyardTestSupport
import Testing

@testable import SwitchyardRedis

@Suite("Sentinel answers, replicas and WAIT")
struct SentinelTests {
    @Test func masterAddressReplies() {
        let reply = RedisReply.array([.string(Array("10.0.0.7".utf8)), .string(Array("6380".utf8))])
        #expect(MasterLocator.address(from: reply) == RedisAddress(host: "10.0.0.7", port: 6380))
        #expect(MasterLocator.address(from: .null) == nil)  // the sentinel does not know the name
        #expect(MasterLocator.address(from: .array([.string(Array("h".utf8)), .string(Array("0".utf8))])) == nil)
        #expect(MasterLocator.address(from: .array([.string(Array("h".utf8))])) == nil)
        #expect(MasterLocator.address(from: .error("ERR unknown")) == nil)
    }

    @Test func switchMasterMessages() {
        #expect(
            MasterLocator.switchedMaster("sy 127.0.0.1 7001 127.0.0.1 7002", masterName: "sy")
                == RedisAddress(host: "127.0.0.1", port: 7002))
        #expect(MasterLocator.switchedMaster("other 127.0.0.1 7001 127.0.0.1 7002", masterName: "sy") == nil)
        #expect(MasterLocator.switchedMaster("sy 127.0.0.1 7001 127.0.0.1", masterName: "sy") == nil)
        #expect(MasterLocator.switchedMaster("sy 127.0.0.1 7001 127.0.0.1 99999", masterName: "sy") == nil)
    }

    @Test func theSentinelPasswordIsNeverShown() {
        let configuration = RedisSentinelConfiguration(
            sentinels: [RedisAddress(host: "127.0.0.1", port: 26379)], masterName: "sy", password: "s3cret-sentinel")
        var dumped = ""
        dump(configuration, to: &dumped)
        for text in [configuration.description, dumped, String(describing: configuration), String(reflecting: configuration)] {
            #expect(!text.contains("s3cret-sentinel"), "\(text)")
        }
        #expect(configuration.description == "sentinel sy at 127.0.0.1:26379")
    }

    @Test func addressesPrintIPv6InBrackets() {
        #expect(RedisAddress(host: "::1", port: 6380).description == "[::1]:6380")
        #expect(RedisAddress(host: "127.0.0.1", port: 6380).description == "127.0.0.1:6380")
    }

    /// Without a replica WAIT cannot be satisfied: the write is applied on the master but
    /// not acknowledged; with one it is.
    @Test func writeWaitsForReplicas() async throws {
        try await withTemporaryRedis { master async throws in
            var configuration = master.configuration()
            configuration.minReplicasAck = 1
            configuration.replicaAckTimeout = .milliseconds(100)
            let client = RedisClient(configuration: configuration)
            defer { Task { await client.close() } }
            do throws(RedisError) {
                _ = try await client.write(["SET", "k", "v1"])
                Issue.record("a write without a replica must not be acknowledged")
            } catch {
                #expect(error.code == .notReplicated)
                #expect(error.maybeExecuted)
                #expect(error.isUnavailable)
            }
            #expect(try await client.send("GET", "k") == .string(Array("v1".utf8)))
            // an error reply is an answer: nothing was written, so nothing to wait for
            guard case .error = try await client.write(["INCR", "k"]) else {
                Issue.record("expected the error reply")
                return
            }
            try await withTemporaryRedis { replica async throws in
                let replicaClient = RedisClient(configuration: replica.configuration())
                defer { Task { await replicaClient.close() } }
                // straight from the socket into memory: a replica otherwise writes the
                // master's data to dump.rdb in its working directory (the tests' cwd), where
                // every later temporary Redis would load it
                _ = try await replicaClient.send("CONFIG", "SET", "repl-diskless-load", "on-empty-db")
                _ = try await client.send("CONFIG", "SET", "repl-diskless-sync-delay", "0")
                _ = try await replicaClient.send("REPLICAOF", "127.0.0.1", "\(master.port)")
                let deadline = ContinuousClock.now + .seconds(10)
                while ContinuousClock.now < deadline {
                    let info = try await replicaClient.send("INFO", "replication").text ?? ""
                    if info.contains("master_link_status:up") { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
                // (a replica just in sync may take a moment to answer its first ack)
                var patient = configuration
                patient.replicaAckTimeout = .seconds(2)
                patient.commandTimeout = .seconds(4)
                let patientClient = RedisClient(configuration: patient)
                defer { Task { await patientClient.close() } }
                #expect(try await patientClient.write(["SET", "k", "v2"]) == .status("OK"))
                #expect(try await replicaClient.send("GET", "k") == .string(Array("v2".utf8)))
                // a write sent to the replica is refused as "not the master", not answered
                do throws(RedisError) {
                    _ = try await replicaClient.send("SET", "k", "v3")
                    Issue.record("a replica must not be written to")
                } catch {
                    #expect(error.code == .readOnlyReplica)
                    #expect(error.message.contains("READONLY"))
                    #expect(!error.maybeExecuted)
                }
                _ = try await replicaClient.send("REPLICAOF", "NO", "ONE")
            }
            // min-replicas-to-write unmet (the replica is gone): refused, certainly not applied
            _ = try await client.send("CONFIG", "SET", "min-replicas-to-write", "1")
            do throws(RedisError) {
                _ = try await client.send("SET", "k", "v4")
                Issue.record("a write without enough replicas must be refused")
            } catch {
                #expect(error.code == .refusedNow)
                #expect(error.isUnavailable && !error.maybeExecuted)
            }
            #expect(try await client.send("GET", "k") == .string(Array("v2".utf8)))
        }
    }
}
