// The stream role against a real redis-server and real loopback sockets: the follower hears
// of changes through pub/sub (its poll is a minute here, so nothing else could apply them in
// time), the metrics count what passed, and a removed UDP port drains its sessions.

import Foundation
import Logging
import NIOCore
import NIOPosix
import SwitchyardCore
import SwitchyardRedis
import SwitchyardStream
import SwitchyardTestSupport
import Synchronization
import Testing

@Suite(.serialized) struct StreamRoleTests {
    static let library = try! String(contentsOf: repositoryRoot().appendingPathComponent("redis/switchyard.lua"), encoding: .utf8)

    /// Redis with the library, a TCP echo endpoint, an engine and its follower running.
    func withRole(
        _ body: (_ redis: RedisClient, _ engine: StreamEngine, _ echo: Int, _ loads: Loads) async throws -> Void
    ) async throws {
        try await withTemporaryRedis { server in
            let redis = RedisClient(configuration: server.configuration())
            _ = try await redis.send(["FUNCTION", "LOAD", "REPLACE", Self.library]).throwingErrorReply()
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let echo = try await ServerBootstrap(group: group)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Echo()) } }
                .bind(host: "127.0.0.1", port: 0).get()
            let engine = StreamEngine(threads: 1, bindHost: "127.0.0.1", logger: Logger(label: "test"))
            let loads = Loads()
            let follower = StreamFollower(
                redis: redis, subscriberConfiguration: server.configuration(), engine: engine, poll: .seconds(60),
                logger: Logger(label: "test")
            ) { _ in loads.count.add(1, ordering: .relaxed) }
            let task = Task { await follower.run() }
            do {
                try await body(redis, engine, echo.localAddress!.port!, loads)
            } catch {
                task.cancel()
                await task.value
                await engine.shutdown()
                try? await echo.close()
                try? await group.shutdownGracefully()
                await redis.close()
                throw error
            }
            task.cancel()
            await task.value
            await engine.shutdown()
            try await echo.close()
            try await group.shutdownGracefully()
            await redis.close()
        }
    }

    func putUpstream(_ redis: RedisClient, _ name: String, port: Int) async throws {
        let u = Upstream(name: name, endpoints: [Endpoint(address: try EndpointAddress.parse("127.0.0.1:\(port)").get())])
        _ = try await redis.send(ApplyCall.command([.put(u)])).throwingErrorReply()
    }

    func putStream(_ redis: RedisClient, _ s: StreamService) async throws {
        _ = try await redis.send(ApplyCall.command([.put(s)])).throwingErrorReply()
    }

    /// Polls `check` every 5 ms for at most `seconds`.
    func eventually(_ seconds: Double, _ check: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if await check() { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    @Test func aNewStreamListensThroughPubSubNotThePoll() async throws {
        try await withRole { redis, engine, echo, loads in
            // after the follower's first load (at start), only a message can make it load again
            // within the test: the poll is a minute
            #expect(await eventually(5) { loads.count.load(ordering: .relaxed) >= 1 })
            try await putUpstream(redis, "echo", port: echo)
            let port = try freeLoopbackPort()
            try await putStream(redis, StreamService(id: "s1", listen: port, upstream: "echo"))
            #expect(await eventually(5) { engine.listeningPorts == [port] })
            try await redis.send(ApplyCall.command([.delete(.stream, "s1")])).throwingErrorReply()
            #expect(await eventually(5) { engine.listeningPorts.isEmpty })
        }
    }

    @Test func bytesAndConnectionsAreCounted() async throws {
        try await withRole { redis, engine, echo, _ in
            try await putUpstream(redis, "echo", port: echo)
            let port = try freeLoopbackPort()
            try await putStream(redis, StreamService(id: "counted", listen: port, upstream: "echo"))
            #expect(await eventually(5) { engine.listeningPorts == [port] })
            let reply = try roundTrip(port: port, Array("hello".utf8))
            #expect(reply == Array("hello".utf8))
            let text = { String(decoding: engine.metrics.registry.exposition(), as: UTF8.self) }
            #expect(
                await eventually(5) {
                    MetricsText.value(text(), "switchyard_stream_connections_active", ["stream": "counted"]) == 0
                })
            #expect(
                MetricsText.value(
                    text(), "switchyard_stream_connections_total", ["stream": "counted", "protocol": "tcp", "result": "accepted"]) == 1)
            #expect(MetricsText.value(text(), "switchyard_stream_bytes_total", ["stream": "counted", "direction": "in"]) == 5)
            #expect(MetricsText.value(text(), "switchyard_stream_bytes_total", ["stream": "counted", "direction": "out"]) == 5)
        }
    }

    /// Connects, sends, half-closes and reads until the peer closes (blocking; loopback only).
    func roundTrip(port: Int, _ bytes: [UInt8]) throws -> [UInt8] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket") }
        defer { close(fd) }
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { throw TestSupportError("connect") }
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        shutdown(fd, Int32(SHUT_WR))
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<100 {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }
}

final class Loads: Sendable {
    let count = Atomic<Int>(0)
}

/// Echoes what it reads and closes after the peer's half-close.
final class Echo: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.writeAndFlush(data, promise: nil) }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed { context.close(promise: nil) }
    }
}
