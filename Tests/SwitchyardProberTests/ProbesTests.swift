import Foundation
import SwitchyardTestSupport
import Synchronization
import Testing

@testable import SwitchyardCore
@testable import SwitchyardProber

#if canImport(Glibc)
import Glibc
#endif

private func listenLoopback(backlog: Int32 = 64) throws -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0, listen(fd, backlog) == 0 else {
        close(fd)
        throw TestSupportError("cannot listen")
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return (fd, Int(UInt16(bigEndian: addr.sin_port)))
}

/// A loopback socket that accepts connections (in the kernel backlog) and never answers.
private final class SilentListener {
    let fd: Int32
    let port: Int

    init() throws { (fd, port) = try listenLoopback(backlog: 16) }
    deinit { close(fd) }
}

/// What the scripted server does with the n-th request it receives (0-based, over all connections).
enum Reply {
    /// Send these bytes; close the connection afterwards when `close`.
    case send(String, close: Bool = false)
    /// Send the first part, wait, then the rest.
    case split(String, String, delayMs: Int)
    /// Send after a delay.
    case late(String, delayMs: Int)
    /// Close without answering.
    case hangUp
}

/// A real HTTP-ish server on loopback, run by a thread with poll(2) for at most 20 s. It
/// records every request and answers each as `script` says.
private final class ScriptedServer: @unchecked Sendable {
    let port: Int
    private let listenFD: Int32
    private let script: @Sendable (Int) -> Reply
    private let stopped = Mutex(false)
    private let log = Mutex((connections: 0, requests: [String]()))
    private let done = Mutex(false)

    init(_ script: @escaping @Sendable (Int) -> Reply) throws {
        (listenFD, port) = try listenLoopback()
        self.script = script
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    var connections: Int { log.withLock { $0.connections } }
    var requests: [String] { log.withLock { $0.requests } }

    func stop() {
        stopped.withLock { $0 = true }
        let deadline = ContinuousClock.now + .seconds(3)
        while !done.withLock({ $0 }), ContinuousClock.now < deadline { usleep(5_000) }
        close(listenFD)
    }

    private func serve() {
        var clients: [Int32: [UInt8]] = [:]
        var pending: [(due: ContinuousClock.Instant, fd: Int32, bytes: [UInt8], close: Bool)] = []
        let end = ContinuousClock.now + .seconds(20)
        func drop(_ fd: Int32) {
            close(fd)
            clients[fd] = nil
            pending.removeAll { $0.fd == fd }  // a later connection may get the same number
        }
        func write(_ fd: Int32, _ text: String) {
            _ = Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        while !stopped.withLock({ $0 }), ContinuousClock.now < end {
            let now = ContinuousClock.now
            for item in pending where item.due <= now {
                if clients[item.fd] != nil {
                    _ = item.bytes.withUnsafeBytes { Glibc.send(item.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if item.close { drop(item.fd) }
                }
            }
            pending.removeAll { $0.due <= now }
            var fds =
                [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
                + clients.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            guard poll(&fds, nfds_t(fds.count), 5) > 0 else { continue }
            if fds[0].revents != 0 {
                let client = accept(listenFD, nil, nil)
                if client >= 0 {
                    clients[client] = []
                    log.withLock { $0.connections += 1 }
                }
            }
            for p in fds.dropFirst() where p.revents != 0 {
                var chunk = [UInt8](repeating: 0, count: 4096)
                let n = recv(p.fd, &chunk, chunk.count, 0)
                if n <= 0 {
                    drop(p.fd)
                    continue
                }
                clients[p.fd]!.append(contentsOf: chunk[0..<n])
                while let end = find(clients[p.fd]!, "\r\n\r\n") {
                    let request = String(decoding: clients[p.fd]![..<end], as: UTF8.self)
                    clients[p.fd]!.removeFirst(end + 4)
                    let index = log.withLock { l -> Int in
                        l.requests.append(request)
                        return l.requests.count - 1
                    }
                    switch script(index) {
                    case .send(let text, let closeAfter):
                        write(p.fd, text)
                        if closeAfter { drop(p.fd) }
                    case .split(let first, let rest, let delay):
                        write(p.fd, first)
                        pending.append((now + .milliseconds(delay), p.fd, Array(rest.utf8), false))
                    case .late(let text, let delay):
                        pending.append((now + .milliseconds(delay), p.fd, Array(text.utf8), false))
                    case .hangUp:
                        drop(p.fd)
                    }
                    if clients[p.fd] == nil { break }
                }
            }
        }
        for fd in clients.keys { close(fd) }
        done.withLock { $0 = true }
    }

    private func find(_ bytes: [UInt8], _ text: String) -> Int? {
        let needle = Array(text.utf8)
        guard bytes.count >= needle.count else { return nil }
        for i in 0...(bytes.count - needle.count) where Array(bytes[i..<(i + needle.count)]) == needle { return i }
        return nil
    }
}

private let ok = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"

/// Runs probes to completion (bounded) and returns their outcomes by token.
private func run(_ probes: Probes, _ requests: [ProbeRequest]) -> [Int: ProbeOutcome] {
    var out: [Int: ProbeOutcome] = [:]
    for (i, r) in requests.enumerated() {
        if let immediate = probes.start(r, token: i) { out[i] = immediate }
    }
    let deadline = ContinuousClock.now + .seconds(5)
    while out.count < requests.count, ContinuousClock.now < deadline {
        for (token, outcome) in probes.perform() { out[token] = outcome }
        if out.count < requests.count { probes.wait(upTo: 50) }
    }
    return out
}

/// One probe of one target (token 0), `times` times in a row on the same Probes.
private func probe(_ probes: Probes, _ request: ProbeRequest, times: Int = 1) -> [ProbeOutcome?] {
    (0..<times).map { _ in
        var outcome = probes.start(request, token: 0)
        let deadline = ContinuousClock.now + .seconds(5)
        while outcome == nil, ContinuousClock.now < deadline {
            outcome = probes.perform().first(where: { $0.token == 0 })?.outcome
            if outcome == nil { probes.wait(upTo: 50) }
        }
        return outcome
    }
}

private func request(
    _ kind: HealthCheck.Kind, port: Int, timeoutMs: Int = 300, host: String? = nil,
    expect: [StatusRange] = HealthCheck.defaultExpectStatus
) throws -> ProbeRequest {
    ProbeRequest(
        target: try EndpointAddress.parse("127.0.0.1:\(port)").get(),
        check: HealthCheck(
            type: kind, path: "/healthz", host: host, intervalMs: 1000, timeoutMs: timeoutMs,
            expectStatus: expect))
}

@Suite("Probes against real loopback sockets", .serialized)
struct ProbesTests {
    @Test func classifiesRefusedTimeoutAndConnected() throws {
        let silent = try SilentListener()
        let closed = try freeLoopbackPort()
        let outcomes = run(
            try Probes(reuseConnections: true),
            [
                try request(.http, port: closed),
                try request(.http, port: silent.port),
                try request(.tcp, port: silent.port),
                try request(.tcp, port: closed),
                try request(.https, port: closed),
                try request(.https, port: silent.port),
            ])
        #expect(outcomes[0] == .failure(reason: "refused"))
        #expect(outcomes[1] == .failure(reason: "timeout"))
        #expect(outcomes[2] == .success(reason: "connected"))
        #expect(outcomes[3] == .failure(reason: "refused"))
        #expect(outcomes[4] == .failure(reason: "refused"))
        #expect(outcomes[5] == .failure(reason: "timeout"))
    }

    @Test func judgesTheStatusAgainstExpectStatus() throws {
        let server = try ScriptedServer { i in
            i == 0 ? .send(ok) : .send("HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\n\r\n")
        }
        defer { server.stop() }
        let probes = try Probes(reuseConnections: true)
        let outcomes = run(
            probes,
            [
                try request(.http, port: server.port)
            ])
        #expect(outcomes[0] == .success(reason: "status 200"))
        #expect(probe(probes, try request(.http, port: server.port)) == [.failure(reason: "status 503")])
        #expect(
            probe(probes, try request(.http, port: server.port, expect: [StatusRange(500, 503)]))
                == [.success(reason: "status 503")])
    }

    @Test func keepsOneConnectionPerEndpointAndSendsHost() throws {
        let server = try ScriptedServer { _ in .send(ok) }
        defer { server.stop() }
        let probes = try Probes(reuseConnections: true)
        let outcomes = probe(probes, try request(.http, port: server.port), times: 3)
        #expect(outcomes == Array(repeating: .success(reason: "status 200"), count: 3))
        #expect(server.connections == 1)
        #expect(server.requests.count == 3)
        let first = try #require(server.requests.first)
        #expect(first.hasPrefix("GET /healthz HTTP/1.1\r\n"))
        #expect(first.contains("\r\nHost: 127.0.0.1:\(server.port)\r\n"))
        #expect(first.contains("\r\nConnection: keep-alive"))
        // a check with a host name sends it, on a new connection (the request changed)
        #expect(probe(probes, try request(.http, port: server.port, host: "svc.example")) == [.success(reason: "status 200")])
        #expect(server.requests.last?.contains("\r\nHost: svc.example\r\n") == true)
        #expect(server.connections == 2)
    }

    @Test func freshConnectionsModeOpensOnePerProbe() throws {
        let server = try ScriptedServer { _ in .send("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", close: true) }
        defer { server.stop() }
        let probes = try Probes(reuseConnections: false)
        #expect(
            probe(probes, try request(.http, port: server.port), times: 3) == Array(repeating: .success(reason: "status 200"), count: 3))
        #expect(server.connections == 3)
        #expect(server.requests.allSatisfy { $0.contains("\r\nConnection: close") })
    }

    @Test func anAnswerThatAsksToCloseIsNotReused() throws {
        let server = try ScriptedServer { _ in .send("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n") }
        defer { server.stop() }
        let probes = try Probes(reuseConnections: true)
        #expect(
            probe(probes, try request(.http, port: server.port), times: 2) == Array(repeating: .success(reason: "status 200"), count: 2))
        #expect(server.connections == 2)
    }

    @Test func aKeptConnectionClosedByTheServerIsRetriedOnceOnANewOne() throws {
        // the second request arrives on the kept connection and is hung up on: the probe
        // must reconnect and succeed, not report the server's idle close as a failure
        let server = try ScriptedServer { i in i == 1 ? .hangUp : .send(ok) }
        defer { server.stop() }
        let probes = try Probes(reuseConnections: true)
        #expect(
            probe(probes, try request(.http, port: server.port), times: 2) == Array(repeating: .success(reason: "status 200"), count: 2))
        #expect(server.connections == 2)
        #expect(server.requests.count == 3)
    }

    @Test func aFreshConnectionHungUpOnIsAnEmptyReply() throws {
        let server = try ScriptedServer { _ in .hangUp }
        defer { server.stop() }
        let probes = try Probes(reuseConnections: true)
        #expect(probe(probes, try request(.http, port: server.port)) == [.failure(reason: "empty reply")])
        #expect(server.connections == 1)  // no retry: the connection was not a reused one
    }

    @Test func garbageSlowAndEndlessAnswersFail() throws {
        let server = try ScriptedServer { i in
            switch i {
            case 0: return .send("hello there\r\n\r\n")
            case 1: return .late(ok, delayMs: 600)
            case 2: return .send("HTTP/1.1 200 " + String(repeating: "x", count: 5000))
            default: return .split("HTTP/1.1 2", "00 OK\r\nContent-Length: 0\r\n\r\n", delayMs: 40)
            }
        }
        defer { server.stop() }
        let probes = try Probes(reuseConnections: true)
        let r = try request(.http, port: server.port, timeoutMs: 200)
        #expect(probe(probes, r) == [.failure(reason: "bad response")])
        #expect(probe(probes, r) == [.failure(reason: "timeout")])
        #expect(probe(probes, r) == [.failure(reason: "bad response")])
        #expect(probe(probes, r) == [.success(reason: "status 200")])  // an answer in two pieces
        #expect(probes.inFlight == 0)
    }

    @Test func forgettingATargetClosesItsConnection() throws {
        let server = try ScriptedServer { _ in .send(ok) }
        defer { server.stop() }
        let probes = try Probes(reuseConnections: true)
        #expect(probe(probes, try request(.http, port: server.port)) == [.success(reason: "status 200")])
        #expect(probes.plainConnections == 1)
        probes.forget(0)
        #expect(probes.plainConnections == 0)
        // the same target switched from http to tcp: its kept connection goes, and tcp
        // checks close theirs at once
        #expect(probe(probes, try request(.http, port: server.port)) == [.success(reason: "status 200")])
        #expect(probes.plainConnections == 1)
        #expect(probe(probes, try request(.tcp, port: server.port)) == [.success(reason: "connected")])
        #expect(probes.plainConnections == 0)
        // a standby prober keeps no connections
        #expect(probe(probes, try request(.http, port: server.port)) == [.success(reason: "status 200")])
        probes.closeIdle()
        #expect(probes.plainConnections == 0)
    }

    @Test func healthCheckPortOverridesTheEndpointPort() throws {
        var check = HealthCheck(type: .tcp, port: 9)
        check.timeoutMs = 100
        let r = ProbeRequest(target: try EndpointAddress.parse("[::1]:80").get(), check: check)
        #expect(r.address.port == 9)
        #expect(r.ipText == "[::1]")
    }

    @Test func probesTheOverriddenPort() throws {
        let server = try ScriptedServer { _ in .send(ok) }
        defer { server.stop() }
        let closed = try freeLoopbackPort()
        var check = HealthCheck(type: .http, path: "/healthz", port: UInt16(server.port), intervalMs: 1000, timeoutMs: 300)
        let r = ProbeRequest(target: try EndpointAddress.parse("127.0.0.1:\(closed)").get(), check: check)
        #expect(probe(try Probes(reuseConnections: true), r) == [.success(reason: "status 200")])
        check.port = nil
        let direct = ProbeRequest(target: try EndpointAddress.parse("127.0.0.1:\(closed)").get(), check: check)
        #expect(probe(try Probes(reuseConnections: true), direct) == [.failure(reason: "refused")])
    }
}

private let opensslPath = "/usr/bin/openssl"

@Suite(
    "https probes (libcurl) against a real TLS listener", .serialized,
    .enabled(if: FileManager.default.isExecutableFile(atPath: opensslPath)))
struct HTTPSProbesTests {
    /// `openssl s_server -www` with a fresh self-signed certificate, on a free loopback port.
    private func withTLSServer(_ body: (Int) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sy-tls-\(getpid())-\(Int.random(in: 0..<1_000_000))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cert = dir.appendingPathComponent("cert.pem").path
        let key = dir.appendingPathComponent("key.pem").path
        let req = Process()
        req.executableURL = URL(fileURLWithPath: opensslPath)
        req.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=probe.test",
        ]
        req.standardOutput = FileHandle.nullDevice
        req.standardError = FileHandle.nullDevice
        try req.run()
        let made = ContinuousClock.now + .seconds(20)
        while req.isRunning, ContinuousClock.now < made { usleep(10_000) }
        guard !req.isRunning, req.terminationStatus == 0 else {
            if req.isRunning { kill(req.processIdentifier, SIGKILL) }
            throw TestSupportError("openssl req failed")
        }
        let port = try freeLoopbackPort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: opensslPath)
        server.arguments = ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", cert, "-key", key, "-www", "-quiet"]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer {
            kill(server.processIdentifier, SIGKILL)  // s_server does not always stop on SIGTERM
            let end = ContinuousClock.now + .seconds(5)
            while server.isRunning, ContinuousClock.now < end { usleep(10_000) }
        }
        let deadline = ContinuousClock.now + .seconds(10)
        var listening = false
        while !listening, ContinuousClock.now < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = UInt16(port).bigEndian
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            listening = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            close(fd)
            if !listening { usleep(20_000) }
        }
        guard listening else { throw TestSupportError("openssl s_server did not listen") }
        try body(port)
    }

    @Test func httpsChecksGoThroughCurlOnTheSharedEpoll() throws {
        try withTLSServer { port in
            let probes = try Probes(reuseConnections: true)
            // one https and one http probe at once on the same Probes: curl's sockets and the
            // plain checker's share the epoll instance
            let http = try ScriptedServer { _ in .send(ok) }
            defer { http.stop() }
            let outcomes = run(
                probes,
                [
                    try request(.https, port: port, timeoutMs: 2000),
                    try request(.http, port: http.port),
                    try request(.https, port: port, timeoutMs: 2000, expect: [StatusRange(500, 599)]),
                ])
            #expect(outcomes[0] == .success(reason: "status 200"))
            #expect(outcomes[1] == .success(reason: "status 200"))
            #expect(outcomes[2] == .failure(reason: "status 200"))
        }
    }
}
