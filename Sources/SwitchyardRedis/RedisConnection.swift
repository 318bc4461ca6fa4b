// One Redis connection on SwiftNIO, optionally over TLS (swift-nio-ssl). Commands are
// written as they come and their replies matched in order (RESP2 replies arrive in the order
// the commands were sent), so any number of callers pipeline on one connection without a
// thread or a lock around the socket. A connection in subscribe mode hands every reply
// nobody waits for (messages, subscribe confirmations, PONGs) to its `push` closure.
//
// Every wait is bounded: the TCP connect and the handshake (TLS, AUTH, CLIENT SETNAME, ROLE)
// by `connectTimeout`, each command by the timeout its caller gives. A timed-out command
// closes the connection: its reply may still come, and would answer the next command.

import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// TLS to Redis (`--redis-tls`): the CA that signed the server's certificate, the client's
/// certificate and key (for `tls-auth-clients yes`), and the name the server's certificate
/// must carry. Paths only: the key itself is never held or logged here.
public struct RedisTLSConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// PEM bundle of the CA(s) to trust; nil: the system's trust store.
    public var caFile: String?
    /// PEM client certificate (chain) presented to Redis; nil: none.
    public var certificateFile: String?
    /// PEM private key of `certificateFile`.
    public var keyFile: String?
    /// The name to send (SNI) and to find in the server's certificate; nil: the host when it
    /// is a name; for an IP address, the certificate must list that IP address.
    public var serverName: String?

    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, serverName: String? = nil) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serverName = serverName
    }

    public var description: String {
        "tls(ca: \(caFile ?? "system"), client certificate: \(certificateFile ?? "none"), server name: \(serverName ?? "the host"))"
    }

    /// The SNI and expected name for `host`: `serverName`, else the host unless it is an IP
    /// address (NIOSSL then checks the certificate's IP addresses against the peer's).
    func hostname(for host: String) -> String? {
        if let serverName { return serverName }
        let isIP = host.contains(":") || host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." }
        return isIP ? nil : host
    }

    private static let contexts = Mutex<[RedisTLSConfiguration: NIOSSLContext]>([:])

    /// The process's one NIOSSLContext for this configuration (files read on first use).
    func context() throws(RedisError) -> NIOSSLContext {
        if let cached = Self.contexts.withLock({ $0[self] }) { return cached }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .fullVerification
        if let caFile { tls.trustRoots = .file(caFile) }
        do {
            if let certificateFile {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
            }
            if let keyFile { tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem)) }
            let context = try NIOSSLContext(configuration: tls)
            Self.contexts.withLock { $0[self] = context }
            return context
        } catch {
            throw RedisError(.connectionFailed, "TLS settings unusable (\(self)): \(error)")
        }
    }
}

/// A command or pipeline on its way out: the encoded bytes, how many replies answer it, and
/// who waits for them (none for subscribe-mode writes, answered through `push`).
struct RedisRequest {
    var bytes: ByteBuffer
    var replies: Int
    var promise: EventLoopPromise<[RedisReply]>?
    var timeout: TimeAmount
}

/// Marks a command that never left this process (the connection had closed before it was
/// written): retrying it elsewhere cannot run it twice.
struct NotSent: Error, Sendable {}

/// Matches replies to requests in order; everything else goes to `push`.
final class RedisHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Waiting {
        var remaining: Int
        var replies: [RedisReply]
        var promise: EventLoopPromise<[RedisReply]>
        var timer: Scheduled<Void>?
    }

    private var waiting = CircularBuffer<Waiting>()
    private var inbound: ByteBuffer?
    /// Why the connection ended (first cause wins); set once it is closing.
    private var ended: RedisError?
    private let push: (@Sendable (RedisReply) -> Void)?
    private let endpoint: String

    init(endpoint: String, push: (@Sendable (RedisReply) -> Void)?) {
        self.endpoint = endpoint
        self.push = push
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if ended != nil {
            request.promise?.fail(RedisError(.connectionLost, "connection to \(endpoint) is closed", underlying: NotSent()))
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        if let requestPromise = request.promise {
            var entry = Waiting(remaining: request.replies, replies: [], promise: requestPromise, timer: nil)
            entry.replies.reserveCapacity(request.replies)
            let loop = context.eventLoop.assumeIsolated()
            entry.timer = loop.scheduleTask(in: request.timeout) { [weak self] in
                guard let self else { return }
                self.end(
                    context: context, RedisError(.timeout, "no reply from \(self.endpoint) within the command timeout"),
                    timedOut: requestPromise)
            }
            waiting.append(entry)
        }
        context.write(wrapOutboundOut(request.bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if inbound == nil || inbound!.readableBytes == 0 {
            inbound = incoming
        } else {
            inbound!.writeBuffer(&incoming)
        }
        while ended == nil {
            let reply: RedisReply?
            do {
                reply = try RESP.parse(&inbound!)
            } catch {
                end(context: context, RedisError(.connectionLost, "protocol error from \(endpoint): \(error.description)"))
                return
            }
            guard let reply else { break }
            deliver(reply, context: context)
        }
        if let buffer = inbound, buffer.readableBytes == 0 { inbound = nil }
    }

    private func deliver(_ reply: RedisReply, context: ChannelHandlerContext) {
        guard !waiting.isEmpty else {
            if let push {
                push(reply)
            } else {
                end(context: context, RedisError(.connectionLost, "unexpected reply from \(endpoint) with no command waiting"))
            }
            return
        }
        waiting[waiting.startIndex].replies.append(reply)
        waiting[waiting.startIndex].remaining -= 1
        if waiting[waiting.startIndex].remaining <= 0 {
            let done = waiting.removeFirst()
            done.timer?.cancel()
            done.promise.succeed(done.replies)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        end(context: context, RedisError(.connectionLost, "\(endpoint) closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let message: String
        if let tls = error as? NIOSSLError {
            message = "TLS with \(endpoint) failed: \(tls)"
        } else if let redis = error as? RedisError {
            message = redis.message
        } else {
            message = "\(endpoint): \(error)"
        }
        end(context: context, RedisError(.connectionLost, message))
    }

    /// Fails every waiting request (the one that timed out with `.timeout`, the others with
    /// the cause) and closes the channel. Idempotent.
    private func end(context: ChannelHandlerContext, _ cause: RedisError, timedOut: EventLoopPromise<[RedisReply]>? = nil) {
        if ended == nil { ended = cause }
        let reason = ended ?? cause
        while let entry = waiting.popFirst() {
            entry.timer?.cancel()
            if let timedOut, entry.promise.futureResult === timedOut.futureResult {
                entry.promise.fail(cause)
            } else {
                entry.promise.fail(reason)
            }
        }
        if context.channel.isActive { context.close(promise: nil) }
    }
}

/// One open connection.
final class RedisConnection: Sendable {
    let channel: any Channel
    /// host:port, for messages.
    let endpoint: String
    /// The `MasterLocator` generation this connection's address came from (0: a fixed address).
    let generation: Int

    private init(channel: any Channel, endpoint: String, generation: Int) {
        self.channel = channel
        self.endpoint = endpoint
        self.generation = generation
    }

    var isOpen: Bool { channel.isActive }

    func close() { channel.close(promise: nil) }

    /// Sends the commands (one write) and waits for their replies, in order. A failure to
    /// write because the connection had already closed carries `NotSent` as `underlying`.
    func pipeline(_ commands: [[[UInt8]]], timeout: Duration) async throws(RedisError) -> [RedisReply] {
        var bytes = channel.allocator.buffer(capacity: commands.reduce(16) { $0 + $1.reduce(16) { $0 + $1.count + 16 } })
        for args in commands { RESP.encode(args, into: &bytes) }
        let promise = channel.eventLoop.makePromise(of: [RedisReply].self)
        let request = RedisRequest(bytes: bytes, replies: commands.count, promise: promise, timeout: .nanoseconds(timeout.nanoseconds))
        channel.writeAndFlush(request).whenFailure { _ in
            // never reached the handler (the pipeline was torn down): certainly not sent
            promise.fail(RedisError(.connectionLost, "connection to \(self.endpoint) is closed", underlying: NotSent()))
        }
        do {
            return try await promise.futureResult.get()
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(.connectionLost, "\(endpoint): \(error)")
        }
    }

    func command(_ args: [[UInt8]], timeout: Duration) async throws(RedisError) -> RedisReply {
        try await pipeline([args], timeout: timeout)[0]
    }

    /// Writes commands whose replies come through `push` (SUBSCRIBE, PING in subscribe mode).
    func send(pushed commands: [[[UInt8]]]) {
        var bytes = channel.allocator.buffer(capacity: 64)
        for args in commands { RESP.encode(args, into: &bytes) }
        channel.writeAndFlush(RedisRequest(bytes: bytes, replies: 0, promise: nil, timeout: .zero), promise: nil)
    }

    /// Connects, starts TLS if configured, authenticates and checks the server, all within
    /// `connectTimeout`; the longer command timeout applies only to commands after that.
    /// `requireMaster`: `ROLE` rides along in the handshake and anything but a master is
    /// refused (`.connectionFailed`), so a connection to a replica is never used.
    static func connect(
        _ configuration: RedisConfiguration, address: RedisAddress, requireMaster: Bool, generation: Int = 0,
        push: (@Sendable (RedisReply) -> Void)? = nil
    ) async throws(RedisError) -> RedisConnection {
        let endpoint = address.description
        let tlsContext = try configuration.tls?.context()
        let serverName = configuration.tls?.hostname(for: address.host)
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.nanoseconds(configuration.connectTimeout.nanoseconds))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture(withResultOf: {
                    let sync = channel.pipeline.syncOperations
                    if let tlsContext {
                        try sync.addHandler(NIOSSLClientHandler(context: tlsContext, serverHostname: serverName))
                    }
                    try sync.addHandler(RedisHandler(endpoint: endpoint, push: push))
                })
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: address.host, port: address.port).get()
        } catch {
            var timedOut = false
            if let channelError = error as? ChannelError, case .connectTimeout = channelError { timedOut = true }
            throw RedisError(timedOut ? .timeout : .connectionFailed, "cannot connect to \(endpoint): \(error)")
        }
        let connection = RedisConnection(channel: channel, endpoint: endpoint, generation: generation)
        var handshake: [[[UInt8]]] = []
        if let password = configuration.password {
            var auth: [[UInt8]] = [Array("AUTH".utf8)]
            if let username = configuration.username { auth.append(Array(username.utf8)) }
            auth.append(Array(password.utf8))
            handshake.append(auth)
        }
        // the probe names the connection for operators (CLIENT LIST) and, when we sent no
        // password, finds out now whether Redis wants one
        let probe = configuration.clientName.map { ["CLIENT", "SETNAME", $0] } ?? ["PING"]
        handshake.append(probe.map { Array($0.utf8) })
        let probeIndex = handshake.count - 1
        if requireMaster { handshake.append([Array("ROLE".utf8)]) }
        let replies: [RedisReply]
        do {
            replies = try await connection.pipeline(handshake, timeout: configuration.connectTimeout)
        } catch {
            connection.close()
            // a TLS failure or a server that closes at once: not reachable for us
            let code: RedisError.Code = error.code == .timeout ? .timeout : .connectionFailed
            throw RedisError(code, "cannot connect to \(endpoint): \(error.message)", underlying: error)
        }
        if configuration.password != nil, case .error(let message) = replies[0] {
            connection.close()
            // the reply names no secret; still, do not echo anything we sent
            throw RedisError(.authenticationFailed, "AUTH to \(endpoint) refused: \(message)")
        }
        if case .error(let message) = replies[probeIndex], message.hasPrefix("NOAUTH") {
            connection.close()
            throw RedisError(.authenticationFailed, "\(endpoint) requires a password: \(message)")
        }
        if requireMaster {
            let role = replies[probeIndex + 1]
            guard role.array?.first?.text == "master" else {
                connection.close()
                let what = role.array?.first?.text.map { "a \($0)" } ?? "unknown (\(role))"
                throw RedisError(.connectionFailed, "\(endpoint) is \(what), not the master")
            }
        }
        return connection
    }

    /// A connection to the server `configuration` names: its host and port, or the master
    /// the sentinels name, checked to be the master (`ROLE`). The connection carries the
    /// locator generation it was made for; a failed connect to a located master makes the
    /// locator ask again next time.
    static func connectToServer(_ configuration: RedisConfiguration, push: (@Sendable (RedisReply) -> Void)? = nil)
        async throws(RedisError) -> RedisConnection
    {
        guard let sentinel = configuration.sentinel else {
            return try await connect(
                configuration, address: RedisAddress(host: configuration.host, port: configuration.port), requireMaster: false,
                push: push)
        }
        let locator = MasterLocator.shared(sentinel, connectTimeout: configuration.connectTimeout, tls: configuration.tls)
        let (address, generation) = try await locator.master()
        do {
            return try await connect(configuration, address: address, requireMaster: true, generation: generation, push: push)
        } catch {
            locator.invalidate(generation: generation)
            throw error
        }
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
