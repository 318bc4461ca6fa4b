// The Kubernetes API-server double (e2e/kubeapi) started for one test on a free loopback port,
// and stopped (SIGKILL, directory removed) whatever happens.

import Foundation
import NIOHTTP1
import Synchronization
import Testing

@testable import SwitchyardKube

#if canImport(Glibc)
import Glibc
#endif

struct TemporaryKubeAPI: Sendable {
    struct Info: Decodable, Sendable {
        var port: Int
        var server: String
        var token: String
        var ca: String
        var wrongCA: String
        var kubeconfig: String
        var kubeconfigClientCert: String
        var dir: String
    }
    let info: Info

    func connection() throws -> KubeConnection { try KubeConnection.kubeconfig(path: info.kubeconfig) }

    /// Calls an admin endpoint (/_kubeapi/...) with `client`.
    @discardableResult
    func admin(_ client: KubeClient, _ method: HTTPMethodName, _ path: String, _ body: JSONValue? = nil) async throws -> JSONValue {
        let response = try await client.request(method.nio, "/_kubeapi/" + path, body: try body?.jsonData())
        return try JSONDecoder().decode(JSONValue.self, from: response.body)
    }

    struct Request: Decodable, Sendable {
        var method: String
        var path: String
        var query: [String: String]
        var code: Int?
        var watch: Bool?
        var at: Double
    }

    func requests(_ client: KubeClient) async throws -> [Request] {
        let response = try await client.request(.GET, "/_kubeapi/requests")
        struct Log: Decodable { var requests: [Request] }
        return try JSONDecoder().decode(Log.self, from: response.body).requests
    }
}

enum HTTPMethodName {
    case get, post, delete
    var nio: HTTPMethod {
        switch self {
        case .get: .GET;
        case .post: .POST;
        case .delete: .DELETE
        }
    }
}

private final class Flag: Sendable {
    private let state = Mutex(false)
    func set() { state.withLock { $0 = true } }
    var isSet: Bool { state.withLock { $0 } }
}

private final class Output: Sendable {
    private let state = Mutex(Data())
    func append(_ d: Data) { state.withLock { $0.append(d) } }
    var firstLine: Data? {
        state.withLock { data in data.firstIndex(of: 10).map { Data(data[..<$0]) } }
    }
}

func repositoryRoot(file: StaticString = #filePath) -> String {
    var url = URL(fileURLWithPath: "\(file)").deletingLastPathComponent()
    while url.path != "/" {
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        url = url.deletingLastPathComponent()
    }
    return FileManager.default.currentDirectoryPath
}

func withTemporaryKubeAPI<T>(bookmarkInterval: Double = 0.2, host: String = "127.0.0.1", _ body: (TemporaryKubeAPI) async throws -> T)
    async throws -> T
{
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kubeapi-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [
        "python3", "-m", "kubeapi", "--host", host, "--port", "0", "--dir", dir, "--bookmark-interval", String(bookmarkInterval),
    ]
    process.currentDirectoryURL = URL(fileURLWithPath: repositoryRoot() + "/e2e")
    let stdout = Pipe()
    let output = Output()
    process.standardOutput = stdout
    process.standardError = FileHandle.nullDevice
    stdout.fileHandleForReading.readabilityHandler = { handle in output.append(handle.availableData) }
    let exited = Flag()
    process.terminationHandler = { _ in exited.set() }
    try process.run()
    func stop() async {
        if !exited.isSet { kill(process.processIdentifier, SIGKILL) }
        let deadline = ContinuousClock.now + .seconds(10)
        while !exited.isSet, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(5)) }
        stdout.fileHandleForReading.readabilityHandler = nil
    }
    do {
        let deadline = ContinuousClock.now + .seconds(30)
        var line: Data?
        while line == nil {
            line = output.firstLine
            if line != nil { break }
            if exited.isSet { throw KubeConfigError(file: "kubeapi", field: "", "the double exited before it was ready") }
            if ContinuousClock.now > deadline { throw KubeConfigError(file: "kubeapi", field: "", "the double did not start in 30 s") }
            try await Task.sleep(for: .milliseconds(20))
        }
        let api = TemporaryKubeAPI(info: try JSONDecoder().decode(TemporaryKubeAPI.Info.self, from: line!))
        let result = try await body(api)
        await stop()
        return result
    } catch {
        await stop()
        throw error
    }
}

/// Polls `check` every 20 ms until it is true; fails the test after `timeout`.
func eventually(_ what: String, timeout: Duration = .seconds(10), _ check: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await check() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out after \(timeout) waiting for \(what)")
    throw CancellationError()
}
