// UDP streams: one listener socket per port; each client address gets a session (its own
// socket towards the endpoint picked when the session starts) that lives while datagrams
// flow either way and ends after the service's idle timeout. allow/deny and the balancer
// apply per session, like per connection for TCP. Everything of one listener runs on its
// event loop, so the session table needs no lock.

import NIOCore
import NIOPosix
import SwitchyardCore

/// A client's session: its endpoint socket once bound, and the datagrams that arrived before.
final class UDPSession {
    var channel: (any Channel)?
    var pending: [ByteBuffer] = []
    let target: SocketAddress
    init(target: SocketAddress) { self.target = target }

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

    init(engine: StreamEngine, key: ListenKey) {
        self.engine = engine
        self.key = key
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let client = envelope.remoteAddress
        if let session = sessions[client] {
            session.send(envelope.data)
            return
        }
        // a new client: refused (allow/deny) or nothing in rotation drops the datagram
        guard let (service, address) = engine.choose(key, client: StreamEngine.addressBytes(client) ?? []) else { return }
        guard let target = StreamEngine.socketAddress(address) else {
            engine.release(address)
            return
        }
        let session = UDPSession(target: target)
        session.pending.append(envelope.data)
        sessions[client] = session
        let front = context.channel
        let loop = context.eventLoop
        DatagramBootstrap(group: loop)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: .seconds(Int64(service.idleTimeoutS))))
                    try ch.pipeline.syncOperations.addHandler(UDPBack(front: front, client: client))
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
                    }
                case .failure:
                    if self.sessions[client] === session { self.sessions[client] = nil }
                    engine.release(address)
                }
            }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // the listener closed (port removed): sessions end with their idle timeout
        context.fireChannelInactive()
    }
}

/// The endpoint side of a session: replies go back to the client through the listener's socket.
final class UDPBack: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let front: any Channel
    let client: SocketAddress

    init(front: any Channel, client: SocketAddress) {
        self.front = front
        self.client = client
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
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
