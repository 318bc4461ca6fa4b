import Foundation
import SwitchyardTestSupport
import Testing

@testable import SwitchyardRedis

/// The client against a redis-server that listens with TLS only and wants client certificates.
@Suite("Redis over TLS")
struct RedisTLSTests {
    @Test func commandsPipelinesAndPubSubWorkOverTLS() async throws {
        let certificates = try TestCertificates.make()
        defer { try? FileManager.default.removeItem(atPath: certificates.directory) }
        try await withTemporaryRedis(tls: certificates) { server async throws in
            let client = RedisClient(configuration: server.configuration())
            defer { Task { await client.close() } }
            #expect(try await client.send("SET", "k", "v") == .status("OK"))
            #expect(
                try await client.pipeline([["GET", "k"], ["INCR", "n"], ["INCR", "n"]]) == [
                    .string(Array("v".utf8)), .integer(1), .integer(2),
                ])
            let subscriber = RedisSubscriber(configuration: server.configuration(), channels: ["tls-events"])
            subscriber.start()
            defer { subscriber.stop() }
            var events = subscriber.events.makeAsyncIterator()
            #expect(await events.next() == .subscribed(reconnected: false))
            #expect(try await client.send("PUBLISH", "tls-events", "hello") == .integer(1))
            #expect(await events.next() == .message(channel: "tls-events", payload: Array("hello".utf8)))
        }
    }

    @Test func withoutAClientCertificateOrTheRightCAItIsRefused() async throws {
        let certificates = try TestCertificates.make()
        let other = try TestCertificates.make()
        defer {
            try? FileManager.default.removeItem(atPath: certificates.directory)
            try? FileManager.default.removeItem(atPath: other.directory)
        }
        try await withTemporaryRedis(tls: certificates) { server async throws in
            var noCertificate = server.configuration(poolSize: 1)
            noCertificate.tls?.certificateFile = nil
            noCertificate.tls?.keyFile = nil
            var wrongCA = server.configuration(poolSize: 1)
            wrongCA.tls?.caFile = other.ca
            var plain = server.configuration(poolSize: 1)
            plain.tls = nil
            for configuration in [noCertificate, wrongCA, plain] {
                let client = RedisClient(configuration: configuration)
                let error = await #expect(throws: RedisError.self, "\(configuration)") { try await client.send("PING") }
                #expect(error?.isUnavailable == true)
                #expect(error?.maybeExecuted == false)
                await client.close()
            }
            // the server's IP address is in its certificate: no name needed for 127.0.0.1 (and
            // swift-nio-ssl accepts a certificate listing the peer's IP address whatever name
            // is asked for: a name check needs a certificate without IP entries)
            var byAddress = server.configuration(poolSize: 1)
            byAddress.tls?.serverName = nil
            let client = RedisClient(configuration: byAddress)
            #expect(try await client.send("PING") == .status("PONG"))
            await client.close()
        }
    }
}
