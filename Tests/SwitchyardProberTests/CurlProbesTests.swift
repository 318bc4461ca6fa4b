import Foundation
import SwitchyardTestSupport
import Testing
@testable import SwitchyardCore
@testable import SwitchyardProber

#if canImport(Glibc)
import Glibc
#endif

/// A loopback socket that accepts connections (in the kernel backlog) and never answers.
private final class SilentListener {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw TestSupportError("cannot listen") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: addr.sin_port))
    }

    deinit { close(fd) }
}

/// Runs probes to completion (bounded) and returns their outcomes by token.
private func run(_ requests: [ProbeRequest]) throws -> [Int: ProbeOutcome] {
    let probes = try CurlProbes(reuseConnections: false)
    var out: [Int: ProbeOutcome] = [:]
    for (i, r) in requests.enumerated() {
        if let immediate = probes.start(r, token: i) { out[i] = immediate }
    }
    let deadline = ContinuousClock.now + .seconds(5)
    while out.count < requests.count, ContinuousClock.now < deadline {
        for (token, outcome) in probes.perform() { out[token] = outcome }
        probes.wait(upTo: 50)
    }
    return out
}

private func request(_ kind: HealthCheck.Kind, port: Int, timeoutMs: Int = 300) throws -> ProbeRequest {
    ProbeRequest(target: try EndpointAddress.parse("127.0.0.1:\(port)").get(),
                 check: HealthCheck(type: kind, intervalMs: 1000, timeoutMs: timeoutMs))
}

@Suite("libcurl probes against loopback sockets", .serialized)
struct CurlProbesTests {
    @Test func classifiesRefusedTimeoutAndConnected() throws {
        let silent = try SilentListener()
        let closed = try freeLoopbackPort()
        let outcomes = try run([
            try request(.http, port: closed),
            try request(.http, port: silent.port),
            try request(.tcp, port: silent.port),
            try request(.tcp, port: closed),
        ])
        #expect(outcomes[0] == .failure(reason: "refused"))
        #expect(outcomes[1] == .failure(reason: "timeout"))
        #expect(outcomes[2] == .success(reason: "connected"))
        #expect(outcomes[3] == .failure(reason: "refused"))
    }

    @Test func healthCheckPortOverridesTheEndpointPort() throws {
        var check = HealthCheck(type: .tcp, port: 9)
        check.timeoutMs = 100
        let r = ProbeRequest(target: try EndpointAddress.parse("[::1]:80").get(), check: check)
        #expect(r.address.port == 9)
        #expect(r.ipText == "[::1]")
    }
}
