// The only file that touches hiredis. A `HiredisConnection` is one synchronous hiredis
// context; every call blocks, so it is confined to one thread or serial DispatchQueue at a
// time (RedisClient's queues, RedisSubscriber's thread) and never used from Swift's
// cooperative pool.

internal import CHiredis

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

final class HiredisConnection {
    private var context: UnsafeMutablePointer<redisContext>?
    /// The `MasterLocator` generation this connection's address came from (0: a fixed address).
    var generation = 0
    /// host:port, for messages.
    private(set) var endpoint = ""

    private init(context: UnsafeMutablePointer<redisContext>) {
        self.context = context
    }

    deinit { close() }

    /// Connects, authenticates and sets the command timeout. Throws without leaking the
    /// context. Bounded by `connectTimeout` per step even when Redis is frozen (SIGSTOP: the
    /// kernel still accepts the TCP connection, but nothing ever answers): the TCP connect,
    /// then the handshake (AUTH and a probe, pipelined in one round trip) under the same
    /// timeout; the longer `commandTimeout` applies only to commands after that.
    /// `requireMaster`: `ROLE` rides along in the handshake and anything but a master is
    /// refused (`.connectionFailed`), so a connection to a replica is never used.
    static func connect(_ configuration: RedisConfiguration, address: RedisAddress, requireMaster: Bool) throws(RedisError)
        -> HiredisConnection
    {
        let endpoint = address.description
        guard let raw = redisConnectWithTimeout(address.host, Int32(address.port), makeTimeval(configuration.connectTimeout))
        else {
            throw RedisError(.connectionFailed, "cannot allocate a connection to \(endpoint)")
        }
        let connection = HiredisConnection(context: raw)
        connection.endpoint = endpoint
        if raw.pointee.err != 0 {
            let message = connection.errorString
            let code: RedisError.Code =
                message.lowercased().contains("timed out") || message.contains("temporarily unavailable") ? .timeout : .connectionFailed
            connection.close()
            throw RedisError(code, "cannot connect to \(endpoint): \(message)")
        }
        redisSetTimeout(raw, makeTimeval(configuration.connectTimeout))
        _ = redisEnableKeepAlive(raw)
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
            replies = try connection.pipeline(handshake)
        } catch {
            throw RedisError(error.code, "cannot connect to \(endpoint): \(error.message)", underlying: error)
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
        redisSetTimeout(raw, makeTimeval(configuration.commandTimeout))
        return connection
    }

    var isOpen: Bool { context != nil }

    var fileDescriptor: Int32 { context?.pointee.fd ?? -1 }

    /// An idle request/response connection has nothing to read. If the socket is readable
    /// the server closed it (CLIENT KILL, restart, timeout) or sent garbage: it must not be
    /// reused, or the next command would fail or read a stale reply.
    var isIdleAndHealthy: Bool {
        guard let context, context.pointee.err == 0 else { return false }
        var pfd = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
        let n = poll(&pfd, 1, 0)
        return n == 0
    }

    func close() {
        if let context {
            redisFree(context)
            self.context = nil
        }
    }

    /// One command, blocking until the reply (or the command timeout).
    func command(_ args: [[UInt8]]) throws(RedisError) -> RedisReply {
        guard let context else { throw RedisError(.closed, "connection is closed") }
        let raw: UnsafeMutableRawPointer? = withArgv(args) { argc, argv, lengths in
            redisCommandArgv(context, argc, argv, lengths)
        }
        guard let raw else { throw failure() }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Sends all commands, then reads all replies (one round trip).
    func pipeline(_ commands: [[[UInt8]]]) throws(RedisError) -> [RedisReply] {
        for args in commands { try append(args) }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands { replies.append(try readReply()) }
        return replies
    }

    /// Queues a command in the output buffer (sent by the next read or `flush`).
    func append(_ args: [[UInt8]]) throws(RedisError) {
        guard let context else { throw RedisError(.closed, "connection is closed") }
        let status = withArgv(args) { argc, argv, lengths in
            redisAppendCommandArgv(context, argc, argv, lengths)
        }
        if status != REDIS_OK { throw failure() }
    }

    /// Writes the output buffer completely (blocking, bounded by the command timeout).
    func flush() throws(RedisError) {
        guard let context else { throw RedisError(.closed, "connection is closed") }
        var done: Int32 = 0
        repeat {
            if redisBufferWrite(context, &done) != REDIS_OK { throw failure() }
        } while done == 0
    }

    /// Flushes pending commands and blocks for the next reply.
    func readReply() throws(RedisError) -> RedisReply {
        guard let context else { throw RedisError(.closed, "connection is closed") }
        var raw: UnsafeMutableRawPointer?
        if redisGetReply(context, &raw) != REDIS_OK { throw failure() }
        guard let raw else { throw failure() }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// A reply already in the input buffer, without touching the socket; nil if none.
    func bufferedReply() throws(RedisError) -> RedisReply? {
        guard let context else { throw RedisError(.closed, "connection is closed") }
        var raw: UnsafeMutableRawPointer?
        if redisGetReplyFromReader(context, &raw) != REDIS_OK { throw failure() }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Reads what the socket has into the input buffer (call when poll says readable).
    func fill() throws(RedisError) {
        guard let context else { throw RedisError(.closed, "connection is closed") }
        if redisBufferRead(context) != REDIS_OK { throw failure() }
    }

    /// Waits up to `milliseconds` for the socket to become readable.
    func waitReadable(milliseconds: Int32) -> Bool {
        guard let context else { return false }
        var pfd = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, milliseconds) > 0
    }

    // MARK: - Internals

    private var errorString: String {
        guard let context else { return "closed" }
        return withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    /// The error of a failed call. hiredis leaves a context unusable after any error, so
    /// the connection is closed here.
    private func failure() -> RedisError {
        let savedErrno = errno
        guard let context else { return RedisError(.closed, "connection is closed") }
        let err = context.pointee.err
        let message = errorString
        close()
        let timedOut =
            savedErrno == EAGAIN || savedErrno == EWOULDBLOCK || savedErrno == ETIMEDOUT
            || message.contains("temporarily unavailable") || message.contains("timed out")
        if err == REDIS_ERR_IO, timedOut {
            return RedisError(.timeout, "no reply within the command timeout")
        }
        if err == REDIS_ERR_EOF { return RedisError(.connectionLost, "server closed the connection") }
        if err == 0 { return RedisError(.connectionLost, "no reply") }
        return RedisError(.connectionLost, message.isEmpty ? "hiredis error \(err)" : message)
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            return .string(bytes(r.str, r.len))
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: bytes(r.str, r.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(r.integer))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_ARRAY:
            var items: [RedisReply] = []
            items.reserveCapacity(Int(r.elements))
            for i in 0..<Int(r.elements) {
                if let element = r.element[i] { items.append(convert(element)) } else { items.append(.null) }
            }
            return .array(items)
        default:
            return .error("unsupported reply type \(r.type)")
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> [UInt8] {
        guard let pointer, length > 0 else { return [] }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
    }

    private static func makeTimeval(_ duration: Duration) -> timeval {
        let (seconds, attoseconds) = duration.components
        var tv = timeval()
        tv.tv_sec = .init(seconds)
        tv.tv_usec = .init(attoseconds / 1_000_000_000_000)
        return tv
    }
}

/// Calls `body` with C argv/argvlen arrays pointing into one contiguous copy of `args`.
private func withArgv<R>(
    _ args: [[UInt8]], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
) -> R {
    var storage: [UInt8] = []
    storage.reserveCapacity(args.reduce(0) { $0 + $1.count } + 1)
    var offsets: [Int] = []
    var lengths: [Int] = []
    for arg in args {
        offsets.append(storage.count)
        lengths.append(arg.count)
        storage.append(contentsOf: arg)
    }
    storage.append(0)  // so even an empty buffer has a valid base address
    return storage.withUnsafeBufferPointer { buf in
        let base = UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: CChar.self)
        var argv: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
        return argv.withUnsafeMutableBufferPointer { argvBuf in
            lengths.withUnsafeBufferPointer { lenBuf in
                body(Int32(args.count), argvBuf.baseAddress!, lenBuf.baseAddress!)
            }
        }
    }
}
