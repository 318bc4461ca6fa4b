import Foundation
import SwitchyardTestSupport
import Testing

@testable import SwitchyardRedis

@Suite("Redis client against a real redis-server")
struct RedisClientTests {
    @Test func basicCommandsAndReplyTypes() async throws {
        try await withTemporaryRedis { server async throws in
            let client = RedisClient(configuration: server.configuration())
            defer { Task { await client.close() } }
            #expect(try await client.send("PING") == .status("PONG"))
            #expect(try await client.send("SET", "k", "v") == .status("OK"))
            #expect(try await client.send("GET", "k") == .string(Array("v".utf8)))
            #expect(try await client.send("GET", "missing") == .null)
            #expect(try await client.send("INCR", "n") == .integer(1))
            #expect(try await client.send("RPUSH", "l", "a", "b") == .integer(2))
            #expect(try await client.send("LRANGE", "l", "0", "-1") == .array([.string([0x61]), .string([0x62])]))
            guard case .error(let message) = try await client.send("INCR", "k") else {
                Issue.record("expected an error reply")
                return
            }
            #expect(message.contains("not an integer"))
            #expect(throws: RedisError.self) { try RedisReply.error("ERR x").throwingErrorReply() }
        }
    }

    @Test func valuesAreBinarySafe() async throws {
        try await withTemporaryRedis { server async throws in
            let client = RedisClient(configuration: server.configuration())
            defer { Task { await client.close() } }
            let value: [UInt8] = [0, 1, 2, 0x0D, 0x0A, 0xFF, 0xFE, 0, 0x24, 0x2A]
            let key: [UInt8] = [0x6B, 0, 0x0A, 0xFF]
            #expect(try await client.send(bytes: [Array("SET".utf8), key, value]) == .status("OK"))
            #expect(try await client.send(bytes: [Array("GET".utf8), key]) == .string(value))
            #expect(try await client.send(bytes: [Array("SET".utf8), Array("empty".utf8), []]) == .status("OK"))
            #expect(try await client.send("GET", "empty") == .string([]))
            let big = [UInt8](repeating: 0xAB, count: 3 << 20)
            #expect(try await client.send(bytes: [Array("SET".utf8), Array("big".utf8), big]) == .status("OK"))
            #expect(try await client.send("STRLEN", "big") == .integer(Int64(big.count)))
        }
    }

    @Test func pipelineReturnsRepliesInOrder() async throws {
        try await withTemporaryRedis { server async throws in
            let client = RedisClient(configuration: server.configuration())
            defer { Task { await client.close() } }
            let commands = (0..<500).map { ["INCRBY", "counter", "\($0)"] } + [["GET", "counter"], ["BOGUS"]]
            let replies = try await client.pipeline(commands)
            #expect(replies.count == 502)
            #expect(replies[0] == .integer(0))
            #expect(replies[499] == .integer(Int64((0..<500).reduce(0, +))))
            #expect(replies[500] == .string(Array("124750".utf8)))
            if case .error = replies[501] {} else { Issue.record("an unknown command must give an error reply in place") }
            // the connection is still usable after an error reply inside a pipeline
            #expect(try await client.send("PING") == .status("PONG"))
        }
    }

    @Test func concurrentCallersShareThePool() async throws {
        try await withTemporaryRedis { server async throws in
            let client = RedisClient(configuration: server.configuration(poolSize: 4))
            defer { Task { await client.close() } }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<200 {
                    group.addTask {
                        let reply = try await client.send("SADD", "set", "m\(i)")
                        #expect(reply == .integer(1))
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await client.send("SCARD", "set") == .integer(200))
            let clients = try await client.send("CLIENT", "LIST").text ?? ""
            #expect(clients.split(separator: "\n").count <= 5)  // pool connections (+ nothing else)
        }
    }

    @Test func authWithPassword() async throws {
        try await withTemporaryRedis(password: "s3cret pass") { server async throws in
            let client = RedisClient(configuration: server.configuration())
            defer { Task { await client.close() } }
            #expect(try await client.send("PING") == .status("PONG"))

            var wrong = server.configuration()
            wrong.password = "nope"
            let bad = RedisClient(configuration: wrong)
            defer { Task { await bad.close() } }
            let error = await #expect(throws: RedisError.self) { try await bad.send("PING") }
            #expect(error?.code == .authenticationFailed)
            #expect(error?.description.contains("nope") == false)

            var none = server.configuration()
            none.password = nil
            let anonymous = RedisClient(configuration: none)
            defer { Task { await anonymous.close() } }
            // a missing password is found at connect time, as a transport error (not a reply)
            let noauth = await #expect(throws: RedisError.self) { try await anonymous.send("GET", "x") }
            #expect(noauth?.code == .authenticationFailed)
            #expect(noauth?.isUnavailable == true)
        }
    }

    @Test func reconnectsAfterClientKill() async throws {
        try await withTemporaryRedis { server async throws in
            var configuration = server.configuration(poolSize: 1)
            configuration.clientName = "victim"
            let client = RedisClient(configuration: configuration)
            defer { Task { await client.close() } }
            let admin = RedisClient(configuration: server.configuration(poolSize: 1))
            defer { Task { await admin.close() } }
            let firstID = try await client.send("CLIENT", "ID").integer
            #expect(try await admin.send("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal").integer ?? 0 >= 1)
            // the dead connection is noticed before sending, so this command succeeds
            #expect(try await client.send("PING") == .status("PONG"))
            let secondID = try await client.send("CLIENT", "ID").integer
            #expect(firstID != nil && secondID != nil && firstID != secondID)
        }
    }

    @Test func unreachableRedisFailsFastAndBacksOff() async throws {
        let refusing = try RefusingLoopbackPort()
        var configuration = RedisConfiguration(
            host: "127.0.0.1", port: refusing.port, connectTimeout: .milliseconds(300),
            commandTimeout: .milliseconds(300), poolSize: 1)
        configuration.reconnectBackoff = .seconds(10)
        configuration.maxReconnectBackoff = .seconds(10)
        let client = RedisClient(configuration: configuration)
        defer { Task { await client.close() } }
        var messages: [String] = []
        for _ in 0..<20 {
            let error = await #expect(throws: RedisError.self) { try await client.send("PING") }
            // refused at once, or (on a loaded machine) the 300 ms connect timeout: either way unavailable
            #expect(error?.code == .connectionFailed || error?.code == .timeout)
            #expect(error?.isUnavailable == true)
            messages.append(error?.message ?? "")
        }
        // one connection attempt, then the back-off answers without trying again (a wall-clock
        // bound here failed when parallel suites starved the cooperative pool: the property is
        // "no new attempt", which the answer itself names)
        #expect(!messages[0].contains("next attempt in"), "\(messages[0])")
        #expect(messages.dropFirst().allSatisfy { $0.contains("next attempt in") }, "\(messages)")
        withExtendedLifetime(refusing) {}
    }

    @Test func commandTimeoutIsEnforced() async throws {
        try await withTemporaryRedis { server async throws in
            var configuration = server.configuration(poolSize: 1)
            configuration.commandTimeout = .milliseconds(300)
            let client = RedisClient(configuration: configuration)
            defer { Task { await client.close() } }
            let admin = RedisClient(configuration: server.configuration(poolSize: 1))
            defer { Task { await admin.close() } }
            #expect(try await client.send("PING") == .status("PONG"))
            // Redis holds every client's commands for 3 s
            #expect(try await admin.send("CLIENT", "PAUSE", "3000", "ALL") == .status("OK"))
            let clock = ContinuousClock()
            let start = clock.now
            let error = await #expect(throws: RedisError.self) { try await client.send("PING") }
            #expect(error?.code == .timeout)
            #expect(error?.isUnavailable == true)
            // the 300 ms timeout, not the 3 s pause (loose: a loaded machine must not fail it)
            #expect(clock.now - start < .milliseconds(2500))
            // and the client recovers once Redis answers again
            // (CLIENT UNPAUSE would wait out the pause itself: every client is paused)
            try await Task.sleep(for: .milliseconds(3000) - (clock.now - start))
            #expect(try await client.send("PING") == .status("PONG"))
        }
    }

    @Test func closedClientRefusesCommands() async throws {
        try await withTemporaryRedis { server async throws in
            let client = RedisClient(configuration: server.configuration())
            #expect(try await client.send("PING") == .status("PONG"))
            await client.close()
            let error = await #expect(throws: RedisError.self) { try await client.send("PING") }
            #expect(error?.code == .closed)
        }
    }

    @Test func backoffGrowsWithJitterUpToTheMaximum() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(1))
        #expect(backoff.delay(afterFailures: 1, random: 1) == .milliseconds(100))
        #expect(backoff.delay(afterFailures: 1, random: 0) == .milliseconds(50))
        #expect(backoff.delay(afterFailures: 3, random: 1) == .milliseconds(400))
        #expect(backoff.delay(afterFailures: 10, random: 1) == .seconds(1))
        #expect(backoff.delay(afterFailures: 1000, random: 0.5) == .milliseconds(750))
    }
}

@Suite("Redis subscriber")
struct RedisSubscriberTests {
    /// Waits for the next event matching `predicate`, failing after `timeout`.
    func next(
        _ iterator: inout AsyncStream<RedisSubscriber.Event>.Iterator, timeout: Duration = .seconds(5),
        where predicate: (RedisSubscriber.Event) -> Bool
    ) async throws -> RedisSubscriber.Event? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let event = await iterator.next() else { return nil }
            if predicate(event) { return event }
        }
        return nil
    }

    @Test func receivesMessagesAndResubscribesAfterKill() async throws {
        try await withTemporaryRedis(password: "pw") { server async throws in
            let subscriber = RedisSubscriber(
                configuration: server.configuration(), channels: ["events", "other"],
                pingInterval: .milliseconds(500))
            let publisher = RedisClient(configuration: server.configuration())
            defer {
                subscriber.stop()
                Task { await publisher.close() }
            }
            subscriber.start()
            var events = subscriber.events.makeAsyncIterator()
            #expect(await events.next() == .subscribed(reconnected: false))

            #expect(try await publisher.send(bytes: [Array("PUBLISH".utf8), Array("events".utf8), [0, 0xFF, 0x37]]) == .integer(1))
            #expect(
                try await next(&events) { if case .message = $0 { true } else { false } }
                    == .message(channel: "events", payload: [0, 0xFF, 0x37]))

            _ = try await publisher.send("CLIENT", "KILL", "TYPE", "pubsub")
            #expect(try await next(&events) { $0 == .subscribed(reconnected: true) } != nil)
            #expect(try await publisher.send("PUBLISH", "other", "8") == .integer(1))
            #expect(
                try await next(&events) { if case .message = $0 { true } else { false } }
                    == .message(channel: "other", payload: Array("8".utf8)))
        }
    }

    @Test func keepsTryingWhileRedisIsDownAndStopsCleanly() async throws {
        let port = try freeLoopbackPort()
        let configuration = RedisConfiguration(
            host: "127.0.0.1", port: port, connectTimeout: .milliseconds(200),
            reconnectBackoff: .milliseconds(20), maxReconnectBackoff: .milliseconds(100))
        let subscriber = RedisSubscriber(configuration: configuration, channels: ["x"])
        subscriber.start()
        var events = subscriber.events.makeAsyncIterator()
        guard case .disconnected? = await events.next() else {
            Issue.record("expected a disconnected event")
            return
        }
        subscriber.stop()
        let clock = ContinuousClock()
        let elapsed = await clock.measure {
            while await events.next() != nil {}
        }
        // a guard against hanging, not a timing: stop() must end the stream even though
        // the subscriber is between reconnect attempts (a hang would never finish)
        #expect(elapsed < .seconds(10))
    }
}
