// Test helpers: a real redis-server on a free loopback port for the length of one test,
// and the paths of the repository's files. Everything started here is stopped here.

import Foundation
import SwitchyardRedis
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A redis-server started for one test.
public struct TemporaryRedis: Sendable {
    public let port: Int
    public let password: String?
    /// With `tls`: the server listens with TLS only and wants client certificates.
    public let certificates: TestCertificates?

    /// A client configuration for this server (short timeouts, so failures are quick); over
    /// TLS with the client certificate when the server is a TLS one.
    public func configuration(poolSize: Int = 2) -> RedisConfiguration {
        var configuration = RedisConfiguration(
            host: "127.0.0.1", port: port, password: password, connectTimeout: .seconds(1),
            commandTimeout: .seconds(2), poolSize: poolSize, reconnectBackoff: .milliseconds(20),
            maxReconnectBackoff: .milliseconds(200))
        if let certificates {
            configuration.tls = RedisTLSConfiguration(
                caFile: certificates.ca, certificateFile: certificates.clientCertificate, keyFile: certificates.clientKey,
                serverName: "localhost")
        }
        return configuration
    }
}

/// A CA, a server certificate for localhost and 127.0.0.1, and a client certificate, made
/// with the openssl CLI in a temporary directory (PEM paths).
public struct TestCertificates: Sendable {
    public let directory: String
    public var ca: String { directory + "/ca.pem" }
    public var serverCertificate: String { directory + "/server.pem" }
    public var serverKey: String { directory + "/server.key" }
    public var clientCertificate: String { directory + "/client.pem" }
    public var clientKey: String { directory + "/client.key" }

    public static func make() throws -> TestCertificates {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sy-certs-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func openssl(_ args: [String]) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = args
            process.currentDirectoryURL = URL(fileURLWithPath: dir)
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            if process.terminationStatus != 0 { throw TestSupportError("openssl \(args.first ?? "") failed") }
        }
        try openssl([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA",
        ])
        for (name, ext) in [
            ("server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
            ("client", "extendedKeyUsage=clientAuth\n"),
        ] {
            try ext.write(toFile: "\(dir)/\(name).ext", atomically: true, encoding: .utf8)
            try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(name).key", "-out", "\(name).csr", "-subj", "/CN=\(name)"])
            try openssl([
                "x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "\(name).pem",
                "-days", "2", "-extfile", "\(name).ext",
            ])
        }
        return TestCertificates(directory: dir)
    }
}

public struct TestSupportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Starts `redis-server` on a free loopback port (no persistence), runs `body`, and stops
/// the server whatever happens.
public func withTemporaryRedis<T>(
    password: String? = nil, tls certificates: TestCertificates? = nil, _ body: (TemporaryRedis) async throws -> T
) async throws -> T {
    var lastError: (any Error)?
    for _ in 0..<5 {
        let port = try freeLoopbackPort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: redisServerPath())
        // its own empty directory: a dump.rdb left in the working directory (by a test that
        // made this process a replica, say) must never be loaded into another test's server
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("sy-redis-\(port)-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var args = [
            "--port", "\(port)", "--bind", "127.0.0.1", "--dir", dir.path, "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning",
        ]
        if let password { args += ["--requirepass", password] }
        if let certificates {
            // TLS only: no plain-text port, client certificates required
            args[1] = "0"
            args += [
                "--tls-port", "\(port)", "--tls-cert-file", certificates.serverCertificate, "--tls-key-file", certificates.serverKey,
                "--tls-ca-cert-file", certificates.ca, "--tls-auth-clients", "yes",
            ]
        }
        process.arguments = args
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let exited = ExitFlag()
        process.terminationHandler = { _ in exited.set() }
        do {
            try process.run()
        } catch {
            throw TestSupportError("cannot start redis-server: \(error)")
        }
        do {
            try await waitUntilListening(port: port, exited: exited)
        } catch {
            await stop(process, exited: exited)
            lastError = error
            continue  // port taken between probe and start: try another
        }
        let server = TemporaryRedis(port: port, password: password, certificates: certificates)
        do {
            let result = try await body(server)
            await stop(process, exited: exited)
            return result
        } catch {
            await stop(process, exited: exited)
            throw error
        }
    }
    throw lastError ?? TestSupportError("could not start redis-server")
}

private func redisServerPath() -> String {
    for path in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] where FileManager.default.isExecutableFile(atPath: path) {
        return path
    }
    return "/usr/bin/redis-server"
}

/// Set by the process's termination handler (Foundation calls it on its own queue).
private final class ExitFlag: Sendable {
    private let state = Mutex(false)
    func set() { state.withLock { $0 = true } }
    var isSet: Bool { state.withLock { $0 } }
}

/// Kills the server and waits (without blocking a thread) until it is gone. SIGKILL, not
/// SIGTERM: a child started from a Dispatch worker thread inherits its blocked signal mask
/// and would ignore SIGTERM; the server persists nothing, so nothing is lost.
private func stop(_ process: Process, exited: ExitFlag) async {
    guard !exited.isSet else { return }
    kill(process.processIdentifier, SIGKILL)
    let deadline = ContinuousClock.now + .seconds(10)
    while !exited.isSet, ContinuousClock.now < deadline {
        try? await Task.sleep(for: .milliseconds(5))
    }
}

private func waitUntilListening(port: Int, exited: ExitFlag) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while ContinuousClock.now < deadline {
        if exited.isSet { throw TestSupportError("redis-server exited (port \(port) taken?)") }
        if canConnect(port: port) { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TestSupportError("redis-server did not start listening on \(port)")
}

/// A TCP socket bound to 127.0.0.1 on a port the kernel picks: its descriptor and port.
/// `backlog` nil: not listening (connections to it are refused). The caller closes `fd`.
public func boundLoopbackSocket(backlog: Int32? = nil) throws -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestSupportError("socket() failed") }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0, backlog.map({ listen(fd, $0) == 0 }) ?? true else {
        close(fd)
        throw TestSupportError("bind/listen failed")
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return (fd, Int(UInt16(bigEndian: addr.sin_port)))
}

/// A port nobody listens on right now (bind to 0, read it back, close).
public func freeLoopbackPort() throws -> Int {
    let (fd, port) = try boundLoopbackSocket()
    close(fd)
    return port
}

/// A loopback port nothing listens on and nothing else can take while this lives: a socket
/// bound to it without `listen`, so a connection is refused at once. A port from
/// `freeLoopbackPort()` is free only at that moment: a test running in parallel may start a
/// server on it (seen: a "frozen" server that accepts and never answers, turning refusals
/// into 300 ms timeouts).
public final class RefusingLoopbackPort: Sendable {
    public let port: Int
    private let fd: Int32

    public init() throws {
        (fd, port) = try boundLoopbackSocket()
    }

    deinit { close(fd) }
}

private func canConnect(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = UInt16(port).bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// The repository root (found from this source file's location).
public func repositoryRoot(file: StaticString = #filePath) -> URL {
    var url = URL(fileURLWithPath: "\(file)").deletingLastPathComponent()
    while url.path != "/" {
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        url = url.deletingLastPathComponent()
    }
    return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
}
