// UDP streams: one listener socket per port; each client address gets a session (its own
// socket towards the endpoint picked when the session starts) that lives while datagrams
// flow either way and ends after the service's idle timeout. A removed port drains: its
// socket stays open for the sessions it has (their replies go out through it) and takes no
// new client; it closes when the last session ended. allow/deny and the balancer
// apply per session, like per connection for TCP. Everything of one listener runs on its
// event loop, so the session table needs no lock.

import Metrics
import NIOCore
import NIOPosix
import SwitchyardCore

/// A client's session: its endpoint socket once bound, and the datagrams that arrived before.
final class UDPSession {
    var channel: (any Channel)?
    var pending: [ByteBuffer] = []
    let target: SocketAddress
    let counts: StreamInstruments
    init(target: SocketAddress, counts: StreamInstruments) {
        self.target = target
        self.counts = counts
    }

    /// Datagrams held while the session's socket is being bound, at most.
    static let maxPending = 64

    func send(_ data: ByteBuffer) {
        if let channel {
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: data), promise: nil)
        } else if pending.count < Self.maxPending {
            pending.append(data)
        }
    }
}

final class UDPFront: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let engine: StreamEngine
    let key: ListenKey
    private var sessions: [SocketAddress: UDPSession] = [:]
    /// The port was removed: new clients are dropped (the engine no longer has a service for
    /// `key`), and the socket closes once the last session ended.
    private var drainingChannel: (any Channel)?

    /// Starts draining (on the listener's event loop).
    func drain(_ channel: any Channel) {
        drainingChannel = channel
        if sessions.isEmpty { channel.close(promise: nil) }
    }

    /// The port was added back before the socket closed (on the listener's event loop).
    func resume() { drainingChannel = nil }

    private func sessionEnded() {
        if let ch = drainingChannel, sessions.isEmpty { ch.close(promise: nil) }
    }

    init(engine: StreamEngine, key: ListenKey) {
        self.engine = engine
        self.key = key
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let client = envelope.remoteAddress
        if let session = sessions[client] {
            session.counts.bytesIn.increment(by: Int64(envelope.data.readableBytes))
            session.send(envelope.data)
            return
        }
        // a new client: refused (allow/deny) or nothing in rotation drops the datagram
        guard let (service, address, counts) = engine.choose(key, client: StreamEngine.addressBytes(client) ?? []) else { return }
        guard let target = StreamEngine.socketAddress(address) else {
            engine.release(address)
            return
        }
        counts.bytesIn.increment(by: Int64(envelope.data.readableBytes))
        counts.sessionOpened()
        let session = UDPSession(target: target, counts: counts)
        session.pending.append(envelope.data)
        sessions[client] = session
        let front = context.channel
        let loop = context.eventLoop
        DatagramBootstrap(group: loop)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: .seconds(Int64(service.idleTimeoutS))))
                    try ch.pipeline.syncOperations.addHandler(UDPBack(front: front, client: client, bytes: counts.bytesOut))
                }
            }
            .bind(host: target.protocol == .inet6 ? "::" : "0.0.0.0", port: 0)
            .hop(to: loop)
            .whenComplete { [engine] result in
                switch result {
                case .success(let ch):
                    session.channel = ch
                    for d in session.pending { ch.write(AddressedEnvelope(remoteAddress: target, data: d), promise: nil) }
                    session.pending = []
                    ch.flush()
                    ch.closeFuture.hop(to: loop).whenComplete { _ in
                        if self.sessions[client] === session { self.sessions[client] = nil }
                        engine.release(address)
                        counts.sessionClosed()
                        self.sessionEnded()
                    }
                case .failure:
                    if self.sessions[client] === session { self.sessions[client] = nil }
                    engine.release(address)
                    counts.sessionClosed()
                    self.sessionEnded()
                }
            }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // the listener closed (shutdown, or drained): sessions still open end with their idle timeout
        context.fireChannelInactive()
    }
}

/// The endpoint side of a session: replies go back to the client through the listener's socket.
final class UDPBack: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let front: any Channel
    let client: SocketAddress
    let bytes: Metrics.Counter

    init(front: any Channel, client: SocketAddress, bytes: Metrics.Counter) {
        self.front = front
        self.client = client
        self.bytes = bytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        bytes.increment(by: Int64(envelope.data.readableBytes))
        front.writeAndFlush(AddressedEnvelope(remoteAddress: client, data: envelope.data), promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // an ICMP unreachable from a dead endpoint: the session ends, the client's next datagram starts a new one
        context.close(promise: nil)
    }
}
