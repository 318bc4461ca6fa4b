import Foundation
import SwitchyardTestSupport
import Testing

/// `switchyard edge --listen-tls`: the real template renders into a configuration nginx
/// accepts, with and without TLS listeners, and the placeholder certificate is made once.
@Suite("switchyard edge: TLS listeners")
struct EdgeTLSTests {
    static let nginx = "/usr/sbin/nginx"

    func nginxAccepts(_ prefix: URL) throws -> (Bool, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.nginx)
        process.arguments = ["-t", "-p", prefix.path + "/", "-c", prefix.appendingPathComponent("nginx.conf").path]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus == 0, text)
    }

    func render(_ extra: [String], prefix: URL, environment: [String: String] = [:]) async throws -> Executable.Result {
        try await Executable.run(
            [
                "edge", "--prefix", prefix.path, "--listen", "127.0.0.1:18080", "--render-only",
                "--lua-dir", repositoryRoot().appendingPathComponent("lua").path,
                "--template", repositoryRoot().appendingPathComponent("deploy/edge.nginx.conf").path,
            ] + extra,
            environment: environment)
    }

    @Test func rendersTLSListenersThatNginxAccepts() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let prefix = dir.appendingPathComponent("edge")
        let result = try await render(["--listen-tls", "127.0.0.1:18443", "--listen-tls", "[::1]:18443"], prefix: prefix)
        #expect(result.status == 0, "\(result.stderr)")
        let conf = try String(contentsOf: prefix.appendingPathComponent("nginx.conf"), encoding: .utf8)
        #expect(conf.contains("listen 127.0.0.1:18443 ssl http2 reuseport backlog=4096; listen [::1]:18443 ssl http2"))
        #expect(conf.contains("\n        ssl_certificate_by_lua_block"))
        #expect(conf.contains("https_port = [==[18443]==]"))
        let key = prefix.appendingPathComponent("tls/placeholder.key").path
        let attributes = try FileManager.default.attributesOfItem(atPath: key)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let before = try Data(contentsOf: URL(fileURLWithPath: key))
        if FileManager.default.isExecutableFile(atPath: Self.nginx) {
            let (ok, text) = try nginxAccepts(prefix)
            #expect(ok, "\(text)")
        }
        // rendering again keeps the placeholder
        #expect(try await render(["--listen-tls", "18443"], prefix: prefix).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: key)) == before)
    }

    @Test func trustedProxiesAndProxyProtocolRenderWhatNginxAccepts() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let prefix = dir.appendingPathComponent("edge")
        let result = try await render(["--trusted-proxies", "10.0.0.0/8,2001:db8::/32", "--proxy-protocol"], prefix: prefix)
        #expect(result.status == 0, "\(result.stderr)")
        let conf = try String(contentsOf: prefix.appendingPathComponent("nginx.conf"), encoding: .utf8)
        #expect(conf.contains("set_real_ip_from 2001:db8::/32;"))
        #expect(conf.contains("real_ip_header proxy_protocol;"))
        #expect(conf.contains(" proxy_protocol;"))
        if FileManager.default.isExecutableFile(atPath: Self.nginx) {
            let (ok, text) = try nginxAccepts(prefix)
            #expect(ok, "\(text)")
        }
    }

    @Test func withoutTLSTheTLSLinesAreCommentedOut() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let prefix = dir.appendingPathComponent("edge")
        let result = try await render([], prefix: prefix)
        #expect(result.status == 0, "\(result.stderr)")
        let conf = try String(contentsOf: prefix.appendingPathComponent("nginx.conf"), encoding: .utf8)
        #expect(conf.contains("# ssl_certificate_by_lua_block"))
        #expect(!conf.contains(" ssl http2"))
        // the snippets it names are written out where it names them: one flat file
        // location /, @sy_full, @sy_https_verified, @sy_gzip
        #expect(conf.components(separatedBy: "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;").count == 5)
        #expect(!conf.contains("{{"))
        #expect(!conf.contains("include "))
        if FileManager.default.isExecutableFile(atPath: Self.nginx) {
            let (ok, text) = try nginxAccepts(prefix)
            #expect(ok, "\(text)")
        }
    }

    @Test func refusesBadTLSArguments() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let prefix = dir.appendingPathComponent("edge")
        for args in [
            ["--listen-tls", "somehost:443"], ["--listen-tls", "127.0.0.1:18080"],
            ["--listen-tls", "8443", "--listen-tls", "8443"], ["--upstream-ca", "/no/such/bundle.pem"],
        ] {
            let result = try await render(args, prefix: prefix)
            #expect(result.status != 0, "\(args) was accepted")
        }
        let badKey = try await render([], prefix: prefix, environment: ["SWITCHYARD_CERT_KEY": "short"])
        #expect(badKey.status != 0)
        #expect(badKey.stderr.contains("SWITCHYARD_CERT_KEY"))
        #expect(!badKey.stderr.contains("short"))
    }
}
