// The prober's own checker for `http` and `tcp` checks: non-blocking sockets on the
// epoll instance of `Probes`, driven by the engine thread only (nothing here is
// thread-safe, and nothing blocks).
//
// Why not libcurl for these: at 10,000 endpoints a second the prober's CPU went to curl's
// per-transfer bookkeeping and to allocation around it, not to the probes. A health GET
// needs none of curl's generality: connect, write one precomputed request, read until the
// status line, judge it.
//
// http: `GET <path> HTTP/1.1` with Host (the check's host, else the address), and by
// default `Connection: keep-alive`: one connection per endpoint carries every probe
// (a probe is then one send and one recv; a new connection per probe costs a handshake,
// an accept and a close on both sides, and leaves TIME_WAIT sockets — measured in
// docs/benchmarks.md). A kept connection is reused only when the previous answer was read
// exactly and completely (HTTP/1.1, Content-Length framed, no `Connection: close`; see
// HTTPProbeMessage.swift); otherwise it is closed. If a reused connection fails before any
// byte of the answer (the server closed it while idle), the probe reconnects once within
// its deadline, as curl does. An idle connection the server closes or writes to is closed.
//
// tcp: healthy when the connection is accepted; it is closed at once.
//
// Every probe has one deadline (`timeoutMs`, connect included); answers are read into a
// fixed buffer (`maxAnswer` bytes at most): a status line must arrive within it.

internal import CCurl
import SwitchyardCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

final class PlainProbes {
    /// Bytes of an answer read at most (the status line must be within them).
    static let maxAnswer = 4096
    /// epoll keys of these sockets have this bit set (curl's never do; the wake-up is all ones).
    static let keyBit: UInt64 = 1 << 62

    private enum State { case free, connecting, sending, receiving, idle }

    private struct Slot {
        var fd: Int32 = -1
        /// Bumped for every new socket in the slot: stale epoll events are ignored.
        var generation: UInt32 = 0
        /// Bumped for every probe: stale timeouts are ignored.
        var probe: UInt32 = 0
        var state = State.free
        var token = 0
        var tcp = false
        var reused = false
        var sent = 0
        var deadline: Int64 = 0
        var address: EndpointAddress?
        var request: [UInt8] = []
        var expect: [StatusRange] = []
        /// Bytes of an answer that arrived in pieces (rare: health answers fit one segment).
        var partial: [UInt8] = []
    }

    private struct Cached {
        var request: ProbeRequest
        var bytes: [UInt8]?
    }

    let keepAlive: Bool
    private let epfd: Int32
    private var slots: [Slot] = []
    private var freeSlots: [Int] = []
    /// Kept-alive connections waiting for their target's next probe, by token.
    private var idleByToken: [Int: Int] = [:]
    /// Request bytes per target (http), rebuilt when the target's request changes.
    private var requests: [Int: Cached] = [:]
    private var timeouts = DeadlineHeap<(slot: Int, probe: UInt32)>()  // stale: finished probes
    private var done: [(token: Int, outcome: ProbeOutcome)] = []
    private let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: PlainProbes.maxAnswer)
    private(set) var inFlight = 0

    init(epfd: Int32, keepAlive: Bool) {
        self.epfd = epfd
        self.keepAlive = keepAlive
    }

    deinit {
        for slot in slots where slot.fd >= 0 { close(slot.fd) }
        buffer.deallocate()
    }

    /// Connections open (kept-alive idle ones included).
    var openConnections: Int { slots.count - freeSlots.count }

    // MARK: Starting

    /// Starts a probe; returns its outcome at once when it is already decided.
    func start(_ request: ProbeRequest, token: Int) -> ProbeOutcome? {
        var bytes: [UInt8] = []
        if request.kind != .tcp {
            guard let built = requestBytes(request, token: token) else { return .failure(reason: "error: invalid request") }
            bytes = built
        } else if !idleByToken.isEmpty || !requests.isEmpty {
            forget(token)  // the check was http before: its kept connection is not needed
        }
        let deadline = monotonicMilliseconds() + Int64(max(1, request.timeoutMs))
        if request.kind != .tcp, let index = idleByToken.removeValue(forKey: token) {
            starting = index
            defer { starting = nil }
            slots[index].probe &+= 1
            slots[index].state = .sending
            slots[index].reused = true
            slots[index].sent = 0
            slots[index].deadline = deadline
            slots[index].request = bytes
            slots[index].expect = request.expectStatus
            begin(index)
            send(index)
            return takeImmediate(index)
        }
        let index = allocate()
        starting = index
        defer { starting = nil }
        slots[index].token = token
        slots[index].tcp = request.kind == .tcp
        slots[index].address = request.address
        slots[index].request = bytes
        slots[index].expect = request.expectStatus
        slots[index].deadline = deadline
        slots[index].probe &+= 1
        begin(index)
        connect(index)
        return takeImmediate(index)
    }

    /// Forgets a target: its kept connection and cached request.
    func forget(_ token: Int) {
        requests[token] = nil
        if let index = idleByToken.removeValue(forKey: token) { release(index) }
    }

    /// Closes every kept-alive connection (a standby prober keeps none); probes still in
    /// flight close theirs when they finish.
    func closeIdle() {
        for index in idleByToken.values { release(index) }
        idleByToken.removeAll()
        requests.removeAll()
    }

    private func requestBytes(_ request: ProbeRequest, token: Int) -> [UInt8]? {
        if let cached = requests[token], cached.request == request { return cached.bytes }
        // the target changed (address, host, path): its kept connection may point elsewhere
        if let index = idleByToken.removeValue(forKey: token) { release(index) }
        let bytes = httpProbeRequest(path: request.path, host: request.host ?? request.address.description, keepAlive: keepAlive)
        requests[token] = Cached(request: request, bytes: bytes)
        return bytes
    }

    private func allocate() -> Int {
        if let index = freeSlots.popLast() { return index }
        slots.append(Slot())
        return slots.count - 1
    }

    private func begin(_ index: Int) {
        inFlight += 1
        timeouts.push(due: slots[index].deadline, item: (slot: index, probe: slots[index].probe))
    }

    /// When a probe finished inside `start`, its outcome is the last one recorded.
    private var immediate: (index: Int, outcome: ProbeOutcome)?

    private func takeImmediate(_ index: Int) -> ProbeOutcome? {
        guard let found = immediate, found.index == index else { return nil }
        immediate = nil
        return found.outcome
    }

    private func connect(_ index: Int) {
        guard let address = slots[index].address else { return finish(index, .failure(reason: "connect failed"), keep: false) }
        let family = address.isIPv6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            return finish(
                index, .failure(reason: errno == EMFILE || errno == ENFILE ? "error: too many open files" : "connect failed"), keep: false)
        }
        slots[index].fd = fd
        slots[index].generation = (slots[index].generation &+ 1) & 0x3FFF_FFFF
        slots[index].reused = false
        slots[index].sent = 0
        slots[index].partial = []
        let result = address.withSockaddr { sa, length in Glibc.connect(fd, sa, length) }
        let error = result == 0 ? 0 : errno
        if error != 0, error != EINPROGRESS { return finish(index, connectFailure(error), keep: false) }
        let key = Self.keyBit | (UInt64(slots[index].generation) << 32) | UInt64(UInt32(index))
        guard sy_epoll_watch_socket(epfd, fd, key) == 0 else {
            return finish(index, .failure(reason: "error: epoll_ctl failed"), keep: false)
        }
        if error == 0 {
            connected(index)
        } else {
            slots[index].state = .connecting
        }
    }

    private func connected(_ index: Int) {
        if slots[index].tcp { return finish(index, .success(reason: "connected"), keep: false) }
        slots[index].state = .sending
        send(index)
    }

    private func send(_ index: Int) {
        let fd = slots[index].fd
        while slots[index].sent < slots[index].request.count {
            let sent = slots[index].sent
            let n = slots[index].request.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                slots[index].sent += n
                continue
            }
            let error = n < 0 ? errno : EPIPE
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK { return }  // EPOLLOUT resumes
            return failed(index, error, sendSide: true)
        }
        slots[index].state = .receiving  // the answer can only come after the request: its arrival is an edge
    }

    // MARK: Events

    /// A socket of ours is ready (`key` from epoll, `flags` CURL_CSELECT_*).
    func socketEvent(key: UInt64, flags: Int32) {
        let index = Int(UInt32(truncatingIfNeeded: key))
        let generation = UInt32(truncatingIfNeeded: key >> 32) & 0x3FFF_FFFF
        guard index < slots.count, slots[index].fd >= 0, slots[index].generation == generation else { return }
        switch slots[index].state {
        case .free:
            return
        case .idle:
            // the server closed a kept connection (or wrote unasked): drop it
            idleByToken[slots[index].token] = nil
            release(index)
        case .connecting:
            let error = sy_socket_error(slots[index].fd)
            if error != 0 { return finish(index, connectFailure(error), keep: false) }
            if flags & Int32(CURL_CSELECT_OUT) != 0 { connected(index) }
        case .sending:
            send(index)
        case .receiving:
            receive(index)
        }
    }

    private func receive(_ index: Int) {
        let fd = slots[index].fd
        var have = slots[index].partial.count
        if have > 0 { slots[index].partial.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: have) } }
        var eof = false
        var readNothing = true
        while have < Self.maxAnswer {
            let n = recv(fd, buffer + have, Self.maxAnswer - have, 0)
            if n > 0 {
                have += n
                readNothing = false
                continue
            }
            if n == 0 {
                eof = true
                break
            }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK { break }
            if have > 0 { break }  // judge what arrived before the error
            return failed(index, error, sendSide: false)
        }
        if readNothing, !eof, have == slots[index].partial.count { return }  // spurious wake-up
        let answer = HTTPAnswerReader.read(UnsafeBufferPointer(start: buffer, count: have))
        switch answer {
        case .status(let code, let reusable):
            let reason = "status \(code)"
            let ok = slots[index].expect.contains { $0.contains(code) }
            finish(
                index, ok ? .success(reason: reason) : .failure(reason: reason),
                keep: keepAlive && reusable && !eof && have < Self.maxAnswer)
        case .invalid:
            finish(index, .failure(reason: "bad response"), keep: false)
        case .incomplete:
            if eof, have == 0 {
                if slots[index].reused { return reconnect(index) }
                return finish(index, .failure(reason: "empty reply"), keep: false)
            }
            if eof || have >= Self.maxAnswer { return finish(index, .failure(reason: "bad response"), keep: false) }
            slots[index].partial = Array(UnsafeBufferPointer(start: buffer, count: have))
        }
    }

    /// A send or receive error before any byte of the answer.
    private func failed(_ index: Int, _ error: Int32, sendSide: Bool) {
        let beforeAnswer = slots[index].partial.isEmpty
        if slots[index].reused, beforeAnswer, error == ECONNRESET || error == EPIPE || error == ENOTCONN {
            return reconnect(index)
        }
        finish(index, .failure(reason: error == ECONNRESET || error == EPIPE ? "reset" : "connection error"), keep: false)
    }

    /// A kept connection turned out closed: the same probe again on a new connection.
    private func reconnect(_ index: Int) {
        close(slots[index].fd)
        slots[index].fd = -1
        connect(index)
    }

    // MARK: Finishing

    private func finish(_ index: Int, _ outcome: ProbeOutcome, keep: Bool) {
        let token = slots[index].token
        inFlight -= 1
        slots[index].partial = []
        if keep, slots[index].fd >= 0, requests[token] != nil, idleByToken[token] == nil {
            slots[index].state = .idle
            idleByToken[token] = index
        } else {
            release(index)
        }
        if starting == index {
            immediate = (index, outcome)  // returned by `start`, not queued
        } else {
            done.append((token, outcome))
        }
    }

    /// The slot `start` is working on.
    private var starting: Int?

    private func release(_ index: Int) {
        if slots[index].fd >= 0 { close(slots[index].fd) }  // close also leaves the epoll set
        slots[index].fd = -1
        slots[index].state = .free
        slots[index].partial = []
        slots[index].request = []
        slots[index].expect = []
        slots[index].address = nil
        freeSlots.append(index)
    }

    /// Times out due probes and returns every probe finished since the last call.
    func collect(now: Int64) -> [(token: Int, outcome: ProbeOutcome)] {
        while let (_, entry) = timeouts.popDue(now: now) {
            let state = slots[entry.slot].state
            guard slots[entry.slot].probe == entry.probe, state != .free, state != .idle else { continue }
            finish(entry.slot, .failure(reason: "timeout"), keep: false)
        }
        let out = done
        done.removeAll(keepingCapacity: true)
        return out
    }

    /// The earliest probe deadline (monotonic ms), nil when none is pending.
    var nextDeadline: Int64? { timeouts.nextDue }

    private func connectFailure(_ error: Int32) -> ProbeOutcome {
        switch error {
        case ECONNREFUSED: return .failure(reason: "refused")
        case EHOSTUNREACH, ENETUNREACH: return .failure(reason: "unreachable")
        case ETIMEDOUT: return .failure(reason: "timeout")
        default: return .failure(reason: "connect failed")
        }
    }
}

extension EndpointAddress {
    var isIPv6: Bool {
        if case .ipv6 = host { return true }
        return false
    }

    /// Calls `body` with this address as a sockaddr.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        switch host {
        case .ipv4(let a, let b, let c, let d):
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sa.sin_addr) { raw in
                raw[0] = a; raw[1] = b; raw[2] = c; raw[3] = d
            }
            return withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .ipv6(let bytes):
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sa.sin6_addr) { raw in
                for i in 0..<min(16, bytes.count) { raw[i] = bytes[i] }
            }
            return withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }
}
