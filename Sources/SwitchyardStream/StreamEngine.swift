// The stream role (issue 23, docs/stream.md): TCP and UDP listeners opened and closed from Redis
// without a restart, each connection relayed to an endpoint of the service's upstream picked
// at accept time from the current rotation (endpoints minus those the prober marked down).
// Closing a listener leaves its accepted connections alone; a changed endpoint set applies to
// the next connection and never touches open ones.

import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SwitchyardCore

/// One service as the engine runs it: the validated object and its current rotation.
public struct StreamRuntime: Sendable, Equatable {
    public var service: StreamService
    public var targets: [StreamTarget]
    public init(service: StreamService, targets: [StreamTarget]) {
        self.service = service
        self.targets = targets
    }
}

/// A listener: one port of one protocol.
struct ListenKey: Hashable, Sendable {
    var proto: StreamProtocol
    var port: Int
}

public final class StreamEngine: Sendable {
    let group: MultiThreadedEventLoopGroup
    let bindHost: String
    let logger: Logger
    public let metrics: StreamMetrics
    private struct State {
        var services: [ListenKey: StreamRuntime] = [:]
        var instruments: [ListenKey: StreamInstruments] = [:]
        var listeners: [ListenKey: any Channel] = [:]
        /// UDP listeners whose port was removed: kept until their sessions end (no new ones).
        var draining: [ListenKey: any Channel] = [:]
        var fronts: [ListenKey: UDPFront] = [:]
        var counters: [String: UInt64] = [:]  // service id -> round robin sequence
        var open: [EndpointAddress: Int] = [:]  // open connections per endpoint (least_conn)
        var accepted: UInt64 = 0
    }
    private let state = NIOLockedValueBox(State())

    public init(threads: Int, bindHost: String, logger: Logger, metrics: StreamMetrics = StreamMetrics()) {
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        self.bindHost = bindHost
        self.logger = logger
        self.metrics = metrics
    }

    /// Ports with an open TCP listener.
    public var listeningPorts: [Int] { state.withLockedValue { $0.listeners.keys.filter { $0.proto == .tcp }.map(\.port).sorted() } }

    /// Makes the engine run exactly `services` (by port): new ports are bound, ports no
    /// longer wanted are closed (their connections stay), the rest take the new settings for
    /// their next connection. A port that cannot be bound is logged and tried again on the
    /// next call.
    public func apply(_ services: [StreamRuntime]) async {
        var wanted: [ListenKey: StreamRuntime] = [:]
        for s in services {
            let key = ListenKey(proto: s.service.proto, port: s.service.listen)
            if wanted[key] != nil {
                logger.error(
                    "two streams claim one port; keeping the first",
                    metadata: ["port": "\(key.port)", "protocol": "\(key.proto.rawValue)", "id": "\(s.service.id)"])
                continue
            }
            wanted[key] = s
        }
        var instruments: [ListenKey: StreamInstruments] = [:]
        for (key, s) in wanted { instruments[key] = metrics.instruments(s.service.id, key.proto.rawValue) }
        let (toClose, toOpen, toDrain, toResume) = state.withLockedValue {
            st -> ([any Channel], [ListenKey], [(any Channel, UDPFront)], [(any Channel, UDPFront)]) in
            st.services = wanted
            st.instruments = instruments
            var close: [any Channel] = []
            var drain: [(any Channel, UDPFront)] = []
            for (key, ch) in st.listeners where wanted[key] == nil {
                st.listeners[key] = nil
                if key.proto == .udp, let front = st.fronts[key] {
                    // UDP: the socket carries its sessions' replies; it closes when they end
                    st.draining[key] = ch
                    drain.append((ch, front))
                } else {
                    close.append(ch)
                }
            }
            var resume: [(any Channel, UDPFront)] = []
            for key in wanted.keys where st.listeners[key] == nil {
                if let ch = st.draining.removeValue(forKey: key), let front = st.fronts[key] {
                    st.listeners[key] = ch  // a port added back while draining takes the same socket
                    resume.append((ch, front))
                }
            }
            return (close, wanted.keys.filter { st.listeners[$0] == nil }, drain, resume)
        }
        for ch in toClose {
            try? await ch.close()
        }
        for (ch, front) in toDrain {
            ch.eventLoop.execute { front.drain(ch) }
            logger.info("udp port removed; draining its sessions", metadata: ["port": "\(front.key.port)"])
        }
        for (ch, front) in toResume {
            ch.eventLoop.execute { front.resume() }
        }
        for key in toOpen {
            do {
                let ch = try await (key.proto == .tcp ? bindTCP(key) : bindUDP(key))
                let keep = state.withLockedValue { st -> Bool in
                    guard st.services[key] != nil, st.listeners[key] == nil else { return false }
                    st.listeners[key] = ch
                    return true
                }
                if !keep {
                    try? await ch.close()
                } else {
                    logger.info("listening", metadata: ["port": "\(key.port)", "protocol": "\(key.proto.rawValue)"])
                }
            } catch {
                logger.error("cannot listen", metadata: ["port": "\(key.port)", "protocol": "\(key.proto.rawValue)", "error": "\(error)"])
            }
        }
        let (tcp, udp) = state.withLockedValue { st in
            (st.listeners.keys.filter { $0.proto == .tcp }.count, st.listeners.keys.filter { $0.proto == .udp }.count)
        }
        metrics.listening(tcp: tcp, udp: udp)
    }

    private func bindTCP(_ key: ListenKey) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [self] child in
                child.eventLoop.makeCompletedFuture { self.accept(child, key: key) }
            }
            .bind(host: bindHost, port: key.port).get()
    }

    private func bindUDP(_ key: ListenKey) async throws -> any Channel {
        let front = UDPFront(engine: self, key: key)
        let ch = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(front) }
            }
            .bind(host: bindHost, port: key.port).get()
        state.withLockedValue { $0.fronts[key] = front }
        ch.closeFuture.whenComplete { [self] _ in
            state.withLockedValue { st in
                if st.draining[key] === ch { st.draining[key] = nil }
                // closed while being taken back from draining: the next apply binds again
                if st.listeners[key] === ch { st.listeners[key] = nil }
                if st.fronts[key] === front { st.fronts[key] = nil }
            }
        }
        return ch
    }

    /// Picks the endpoint for a new connection (or UDP session) on `key` and counts the
    /// outcome (nil: refused by allow/deny, or nothing in rotation).
    func choose(_ key: ListenKey, client: [UInt8]) -> (StreamService, EndpointAddress, StreamInstruments)? {
        state.withLockedValue { st in
            guard let rt = st.services[key], let counts = st.instruments[key] else { return nil }
            guard rt.service.admits(client) else {
                counts.refused.increment()
                return nil
            }
            let n = st.counters[rt.service.id, default: 0]
            st.counters[rt.service.id] = n &+ 1
            let open = st.open
            guard
                let i = StreamBalancer.pick(
                    rt.targets, balance: rt.service.balance, counter: n, client: client, open: { open[$0, default: 0] })
            else {
                counts.unavailable.increment()
                return nil
            }
            let address = rt.targets[i].address
            st.open[address, default: 0] += 1
            counts.accepted.increment()
            return (rt.service, address, counts)
        }
    }

    func release(_ address: EndpointAddress) {
        state.withLockedValue { st in
            let n = st.open[address, default: 1] - 1
            st.open[address] = n > 0 ? n : nil
        }
    }

    private func accept(_ inbound: any Channel, key: ListenKey) {
        let client = inbound.remoteAddress.flatMap(Self.addressBytes) ?? []
        guard let (service, address, counts) = choose(key, client: client) else {
            inbound.close(promise: nil)
            return
        }
        counts.connectionOpened()
        let released = NIOLockedValueBox(false)
        let done: @Sendable () -> Void = { [self] in
            if released.withLockedValue({
                let was = $0; $0 = true; return !was
            }) {
                release(address)
                counts.connectionClosed()
            }
        }
        inbound.closeFuture.whenComplete { _ in done() }
        let inboundRelay = Relay(bytes: counts.bytesIn)
        do {
            try inbound.pipeline.syncOperations.addHandler(
                IdleStateHandler(allTimeout: .seconds(Int64(service.idleTimeoutS))))
            try inbound.pipeline.syncOperations.addHandler(inboundRelay)
        } catch {
            inbound.close(promise: nil)
            return
        }
        guard let target = Self.socketAddress(address) else {
            inbound.close(promise: nil)
            return
        }
        let preamble = service.proxyProtocol ? Self.proxyLine(client: inbound.remoteAddress, local: inbound.localAddress) : nil
        ClientBootstrap(group: inbound.eventLoop)
            .connectTimeout(.milliseconds(Int64(service.connectTimeoutMs)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { outbound in
                outbound.eventLoop.makeCompletedFuture {
                    let relay = Relay(bytes: counts.bytesOut)
                    relay.peer = inbound
                    relay.peerRelay = inboundRelay
                    inboundRelay.peerRelay = relay
                    try outbound.pipeline.syncOperations.addHandler(relay)
                }
            }
            .connect(to: target)
            .hop(to: inbound.eventLoop)
            .whenComplete { [logger] result in
                switch result {
                case .success(let outbound):
                    if let preamble {
                        var buf = outbound.allocator.buffer(capacity: preamble.utf8.count)
                        buf.writeString(preamble)
                        outbound.write(buf, promise: nil)
                    }
                    inboundRelay.peer = outbound
                    outbound.closeFuture.whenComplete { _ in inbound.close(promise: nil) }
                    if !inbound.isActive { outbound.close(promise: nil); return }
                    inbound.setOption(.autoRead, value: true).whenComplete { _ in inbound.read() }
                case .failure(let error):
                    counts.connectFailures("\(address)").increment()
                    logger.warning(
                        "endpoint connect failed", metadata: ["endpoint": "\(address)", "stream": "\(service.id)", "error": "\(error)"])
                    inbound.close(promise: nil)
                }
            }
    }

    static func socketAddress(_ address: EndpointAddress) -> SocketAddress? {
        let text = address.description
        var host = String(text[..<(text.lastIndex(of: ":") ?? text.endIndex)])
        if host.hasPrefix("[") { host = String(host.dropFirst().dropLast()) }
        return try? SocketAddress(ipAddress: host, port: Int(address.port))
    }

    static func addressBytes(_ a: SocketAddress) -> [UInt8]? {
        switch a {
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address.sin_addr.s_addr) { Array($0) }
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            // v4-mapped addresses compare as IPv4 (allow/deny hold IPv4 ranges as IPv4)
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff { return Array(bytes[12...]) }
            return bytes
        default:
            return nil
        }
    }

    /// PROXY protocol v1 (the human-readable line) for a client connection.
    static func proxyLine(client: SocketAddress?, local: SocketAddress?) -> String {
        guard let client, let local, let cip = client.ipAddress, let lip = local.ipAddress, let cp = client.port, let lp = local.port
        else { return "PROXY UNKNOWN\r\n" }
        let family = (client.protocol == .inet) ? "TCP4" : "TCP6"
        return "PROXY \(family) \(cip) \(lip) \(cp) \(lp)\r\n"
    }

    public func shutdown() async {
        let listeners = state.withLockedValue { st in
            let l = Array(st.listeners.values) + Array(st.draining.values)
            st.listeners = [:]
            st.draining = [:]
            return l
        }
        for ch in listeners { try? await ch.close() }
        try? await group.shutdownGracefully()
    }
}

/// Copies what one side of a relayed connection reads to the other side, with backpressure
/// (a peer that cannot take more pauses reading here) and closes the peer when this side ends
/// or stays idle past the service's idle timeout. A half-close passes through: when this side
/// stops sending, the peer's sending side is shut once everything before it was written, and
/// the connection closes when both sides have stopped. Both sides run on one event loop.
final class Relay: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    /// Bytes this side reads (the stream's `in` for the client side, `out` for the endpoint's).
    let bytes: Metrics.Counter
    var peer: (any Channel)?
    /// The other side's relay (both on one event loop).
    weak var peerRelay: Relay?
    var inputClosed = false

    init(bytes: Metrics.Counter) { self.bytes = bytes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes.increment(by: Int64(unwrapInboundIn(data).readableBytes))
        peer?.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        peer?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        peer?.close(promise: nil)
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // this side's send buffer filled up (or drained): pause (or resume) reading the other
        peer?.setOption(.autoRead, value: context.channel.isWritable).whenSuccess {
            if context.channel.isWritable { self.peer?.read() }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        if let e = event as? ChannelEvent, e == .inputClosed {
            inputClosed = true
            guard let peer else {
                context.close(promise: nil)
                return
            }
            let channel = context.channel
            // an empty write completes after every earlier one reached the socket
            peer.writeAndFlush(channel.allocator.buffer(capacity: 0)).whenComplete { _ in
                if self.peerRelay?.inputClosed ?? true {
                    peer.close(promise: nil)
                    channel.close(promise: nil)
                } else {
                    peer.close(mode: .output).whenFailure { _ in peer.close(promise: nil) }
                }
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
