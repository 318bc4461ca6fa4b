import Foundation
import SwitchyardTestSupport
import Testing

@testable import SwitchyardRedis

#if canImport(Glibc)
import Glibc
#endif

/// A TCP listener that never accepts and never answers: the kernel completes connections
/// into its backlog, exactly like a Redis frozen with SIGSTOP. Closed by `close()`.
final class SilentListener {
    let fd: Int32
    let port: Int

    init() throws {
        (fd, port) = try boundLoopbackSocket(backlog: 64)
    }

    func close() { Glibc.close(fd) }
}

@Suite("Every Redis call is bounded")
struct BoundedCallsTests {
    @Test func connectingToAFrozenServerIsBoundedByTheConnectTimeout() async throws {
        let listener = try SilentListener()
        defer { listener.close() }
        // the command timeout is long on purpose: the handshake must not wait for it
        let configuration = RedisConfiguration(
            host: "127.0.0.1", port: listener.port, password: "pw",
            connectTimeout: .milliseconds(300), commandTimeout: .seconds(30), poolSize: 1,
            clientName: "bounded")
        let client = RedisClient(configuration: configuration)
        defer { Task { await client.close() } }
        let clock = ContinuousClock()
        let start = clock.now
        let error = await #expect(throws: RedisError.self) { try await client.send("SET", "k", "v") }
        #expect(clock.now - start < .seconds(10), "bounded by the 300 ms connect timeout, not the 30 s command timeout")
        #expect(error?.code == .timeout)
        #expect(error?.isUnavailable == true)
        #expect(error?.maybeExecuted == false, "nothing was sent: the connection never got that far")
    }

    @Test func aSubscriberToAFrozenServerGivesUpAndReports() async throws {
        let listener = try SilentListener()
        defer { listener.close() }
        let configuration = RedisConfiguration(
            host: "127.0.0.1", port: listener.port, connectTimeout: .milliseconds(300),
            commandTimeout: .seconds(30), reconnectBackoff: .milliseconds(50))
        let subscriber = RedisSubscriber(configuration: configuration, channels: ["x"])
        subscriber.start()
        defer { subscriber.stop() }
        let clock = ContinuousClock()
        let start = clock.now
        var events = subscriber.events.makeAsyncIterator()
        guard case .disconnected? = await events.next() else {
            Issue.record("expected a disconnected event")
            return
        }
        #expect(clock.now - start < .seconds(10), "bounded by the 300 ms connect timeout, not the 30 s command timeout")
    }

    @Test func aWriteToAFrozenRedisTimesOutAndMayStillBeApplied() async throws {
        try await withTemporaryRedis { server async throws in
            var configuration = server.configuration(poolSize: 1)
            configuration.commandTimeout = .milliseconds(300)
            let client = RedisClient(configuration: configuration)
            defer { Task { await client.close() } }
            let admin = RedisClient(configuration: server.configuration(poolSize: 1))
            defer { Task { await admin.close() } }
            #expect(try await client.send("PING") == .status("PONG"))
            let info = try await admin.send("INFO", "server").text ?? ""
            let pid = try #require(
                info.split(whereSeparator: \.isNewline)
                    .first { $0.hasPrefix("process_id:") }.flatMap { Int32($0.dropFirst("process_id:".count)) })
            // frozen: the kernel takes the command, Redis does not run it until it wakes up
            kill(pid, SIGSTOP)
            let clock = ContinuousClock()
            let start = clock.now
            let error = await #expect(throws: RedisError.self) { try await client.send("SET", "k", "late") }
            let took = clock.now - start
            kill(pid, SIGCONT)
            // Redis is frozen: without the 300 ms command timeout the call would wait until SIGCONT,
            // which comes after it; the bound is loose so a loaded machine does not fail it
            #expect(took < .seconds(5))
            #expect(error?.code == .timeout)
            #expect(error?.maybeExecuted == true)
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await admin.send("GET", "k") == .string(Array("late".utf8)), "the write ran after all")
            // and the client works again by itself
            #expect(try await client.send("GET", "k") == .string(Array("late".utf8)))
        }
    }

    @Test func aRefusedConnectionWasCertainlyNotExecuted() async throws {
        let refusing = try RefusingLoopbackPort()
        let port = refusing.port
        let client = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: port, poolSize: 1))
        defer { Task { await client.close() } }
        let error = await #expect(throws: RedisError.self) { try await client.send("SET", "k", "v") }
        #expect(error?.code == .connectionFailed && error?.maybeExecuted == false)
        withExtendedLifetime(refusing) {}
    }
}
