import Foundation
import SwitchyardTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `switchyard` executable (next to the test bundle in .build/<config>/).
struct Executable {
    static var path: String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [dir.appendingPathComponent("switchyard"), dir.deletingLastPathComponent().appendingPathComponent("switchyard")]
        return (candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]).path
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs to completion (with a time limit).
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(20)) async throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SWITCHYARD_HOME")
        env.merge(environment) { _, new in new }
        process.environment = env
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let done = Mutex(false)
        process.terminationHandler = { _ in done.withLock { $0 = true } }
        try process.run()
        let deadline = ContinuousClock.now + timeout
        while !done.withLock({ $0 }) {
            if ContinuousClock.now > deadline {
                kill(process.processIdentifier, SIGKILL)
                throw TestSupportError("switchyard \(arguments) did not finish")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        return Result(
            status: process.terminationStatus,
            stdout: String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
            stderr: String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

let fullTemplate = """
    worker_processes {{workers}};
    error_log {{error_log}} {{log_level}};
    pid {{prefix}}/logs/nginx.pid;
    events {}
    http {
        lua_package_path "{{lua_dir}}/?.lua;;";
        lua_shared_dict config {{config_dict_size}};
        access_log {{access_log}};
        init_worker_by_lua_block { require("switchyard.phases").init_worker({host = "{{redis_host}}", port = {{redis_port}}, id = "{{edge_id}}"}) }
        server { listen {{listen}}; }
    }

    """

@Suite("switchyard CLI", .serialized)
struct CLITests {
    @Test func executableIsBuilt() {
        #expect(FileManager.default.isExecutableFile(atPath: Executable.path), "missing \(Executable.path)")
    }

    @Test func edgeRenderOnly() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let template = dir.appendingPathComponent("edge.nginx.conf")
        try fullTemplate.write(to: template, atomically: true, encoding: .utf8)
        let prefix = dir.appendingPathComponent("edge-a")
        let result = try await Executable.run([
            "edge", "--listen", "[::1]:8081", "--redis", "10.1.2.3:6390", "--prefix", prefix.path, "--workers", "2",
            "--id", "edge-a", "--template", template.path, "--lua-dir", "/opt/sy/lua", "--access-log", "off",
            "--config-dict-size", "32m", "--log-level", "info", "--render-only",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let confPath = prefix.appendingPathComponent("nginx.conf").path
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == confPath)
        let conf = try String(contentsOfFile: confPath, encoding: .utf8)
        #expect(
            conf == """
                worker_processes 2;
                error_log stderr info;
                pid \(prefix.path)/logs/nginx.pid;
                events {}
                http {
                    lua_package_path "/opt/sy/lua/?.lua;;";
                    lua_shared_dict config 32m;
                    access_log off;
                    init_worker_by_lua_block { require("switchyard.phases").init_worker({host = "10.1.2.3", port = 6390, id = "edge-a"}) }
                    server { listen [::1]:8081; }
                }

                """)
        for sub in ["logs", "tmp"] {
            var isDir: ObjCBool = false
            #expect(FileManager.default.fileExists(atPath: prefix.appendingPathComponent(sub).path, isDirectory: &isDir) && isDir.boolValue)
        }
    }

    @Test func edgeDefaultsAndDiscoveryViaSwitchyardHome() async throws {
        let home = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: home) }
        try FileManager.default.createDirectory(at: home.appendingPathComponent("lua/switchyard"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: home.appendingPathComponent("deploy"), withIntermediateDirectories: true)
        try "return {}".write(to: home.appendingPathComponent("lua/switchyard/phases.lua"), atomically: true, encoding: .utf8)
        try
            "workers={{workers}} id={{edge_id}} listen={{listen}} access={{access_log}} redis={{redis_host}}:{{redis_port}} lua={{lua_dir}}\n"
            .write(to: home.appendingPathComponent("deploy/edge.nginx.conf"), atomically: true, encoding: .utf8)
        let prefix = home.appendingPathComponent("run")
        let result = try await Executable.run(
            ["edge", "--prefix", prefix.path, "--listen", "8088", "--render-only"],
            environment: ["SWITCHYARD_HOME": home.path])
        #expect(result.status == 0, "\(result.stderr)")
        let conf = try String(contentsOfFile: prefix.appendingPathComponent("nginx.conf").path, encoding: .utf8)
        var hostname = [CChar](repeating: 0, count: 256)
        gethostname(&hostname, 255)
        let host = String(decoding: hostname.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #expect(
            conf.hasPrefix(
                "workers=auto id=\(host)-8088 listen=8088 access=\(prefix.path)/logs/access.log switchyard buffer=64k flush=1s redis=127.0.0.1:6380 lua=\(home.path)/lua"
            ))
    }

    @Test func edgeRefusesUnknownPlaceholders() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let template = dir.appendingPathComponent("t.conf")
        try "worker_processes {{workers}};\nfoo {{no_such_thing}};\n".write(to: template, atomically: true, encoding: .utf8)
        let result = try await Executable.run([
            "edge", "--prefix", dir.appendingPathComponent("p").path, "--template", template.path,
            "--lua-dir", "/x", "--render-only",
        ])
        #expect(result.status != 0)
        #expect(result.stderr.contains("{{no_such_thing}}"))
        #expect(result.stderr.contains("line 2"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("p/nginx.conf").path))
    }

    @Test func edgeRendersTheSnippetsBesideTheTemplate() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let snippets = dir.appendingPathComponent("edge.d")
        try FileManager.default.createDirectory(at: snippets, withIntermediateDirectories: true)
        let template = dir.appendingPathComponent("t.conf")
        try "worker_processes {{workers}};\nhttp {\n    {{part}}\n}\n".write(to: template, atomically: true, encoding: .utf8)
        try "# what part is\nerror_log {{prefix}}/logs/part.log;\nfoo bar;\n"
            .write(to: snippets.appendingPathComponent("part.conf"), atomically: true, encoding: .utf8)
        try "not a snippet {{nope}}\n".write(to: snippets.appendingPathComponent("README"), atomically: true, encoding: .utf8)
        let prefix = dir.appendingPathComponent("p")
        let result = try await Executable.run([
            "edge", "--prefix", prefix.path, "--template", template.path, "--lua-dir", "/x",
            "--render-only",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let conf = try String(contentsOf: prefix.appendingPathComponent("nginx.conf"), encoding: .utf8)
        #expect(conf == "worker_processes auto;\nhttp {\n    error_log \(prefix.path)/logs/part.log;\n    foo bar;\n}\n")
        // a snippet with an unknown placeholder fails, naming it, and nothing is written
        try "x {{nope}};\n".write(to: snippets.appendingPathComponent("bad.conf"), atomically: true, encoding: .utf8)
        let other = dir.appendingPathComponent("q")
        let failed = try await Executable.run([
            "edge", "--prefix", other.path, "--template", template.path, "--lua-dir", "/x",
            "--render-only",
        ])
        #expect(failed.status != 0)
        #expect(failed.stderr.contains("snippet 'bad'"))
        #expect(failed.stderr.contains("{{nope}}"))
        #expect(!FileManager.default.fileExists(atPath: other.appendingPathComponent("nginx.conf").path))
    }

    @Test func edgeExecsNginxInTheForeground() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let template = dir.appendingPathComponent("t.conf")
        try "worker_processes {{workers}};\n".write(to: template, atomically: true, encoding: .utf8)
        let prefix = dir.appendingPathComponent("p")
        // /bin/echo stands in for nginx: it prints the arguments it was exec'd with
        let result = try await Executable.run([
            "edge", "--prefix", prefix.path, "--template", template.path, "--lua-dir", "/x",
            "--nginx", "/bin/echo",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "-p \(prefix.path)/ -c \(prefix.path)/nginx.conf -g daemon off;\n")
    }

    @Test func edgeRejectsBadArguments() async throws {
        for args in [
            ["--listen", "host:80"], ["--redis", "nohost"], ["--workers", "0"], ["--listen", "70000"],
            ["--metrics-listen", "nohost:1"], ["--access-log-format", "xml"],
            ["--listen", "127.0.0.1:9000", "--metrics-listen", "127.0.0.1:9000"],
            // Sentinel needs both flags, and addresses; replicas to read from are addresses
            ["--redis-sentinel", "127.0.0.1:26379"], ["--redis-master", "sy"],
            ["--redis-sentinel", "nohost", "--redis-master", "sy"], ["--redis-sentinel", "127.0.0.1:1,", "--redis-master", "sy"],
            ["--redis-sentinel", "127.0.0.1:1", "--redis-master", "s y"], ["--redis-read", "nohost"],
            ["--redis-user", "a b"],
            ["--trusted-proxies", "10.0.0.0/8,nonsense"], ["--trusted-proxies", "10.0.0.1/8"], ["--proxy-protocol"],
        ] {
            let result = try await Executable.run(
                [
                    "edge", "--prefix", "/tmp/unused-sy", "--template", "/dev/null", "--lua-dir", "/x",
                    "--render-only",
                ] + args)
            #expect(result.status != 0, "\(args) was accepted")
        }
    }

    /// The Redis options reach the edge's Lua as the template's placeholders.
    @Test func edgeRendersSentinelReplicasAndUser() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let prefix = dir.appendingPathComponent("edge-s")
        let template = repositoryRoot().appendingPathComponent("deploy/edge.nginx.conf").path
        let result = try await Executable.run([
            "edge", "--listen", "127.0.0.1:8089", "--prefix", prefix.path, "--template", template, "--lua-dir", "/opt/sy/lua",
            "--redis-sentinel", "127.0.0.1:26379,[::1]:26380", "--redis-master", "sy", "--redis-user", "switchyard-edge",
            "--redis-read", "127.0.0.1:7001, 127.0.0.1:7002", "--render-only",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let conf = try String(contentsOfFile: prefix.appendingPathComponent("nginx.conf").path, encoding: .utf8)
        #expect(conf.contains("redis_sentinels = [==[127.0.0.1:26379,[::1]:26380]==]"))
        #expect(conf.contains("redis_master = [==[sy]==]"))
        #expect(conf.contains("redis_user = [==[switchyard-edge]==]"))
        #expect(conf.contains("redis_read = [==[127.0.0.1:7001,127.0.0.1:7002]==]"))
        #expect(conf.contains("env SWITCHYARD_REDIS_SENTINEL_PASSWORD;"))
        // without them: empty, which the Lua reads as none
        let plain = try await Executable.run([
            "edge", "--listen", "127.0.0.1:8089", "--prefix", prefix.path, "--template", template, "--lua-dir", "/opt/sy/lua",
            "--render-only",
        ])
        #expect(plain.status == 0, "\(plain.stderr)")
        let plainConf = try String(contentsOfFile: prefix.appendingPathComponent("nginx.conf").path, encoding: .utf8)
        #expect(plainConf.contains("redis_sentinels = [==[]==], redis_master = [==[]==]"))
    }

    /// --redis-tls renders the syncer's TLS settings and the lua_ssl lines, and only then.
    @Test func edgeRendersRedisTLSOnlyWhenAskedTo() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let prefix = dir.appendingPathComponent("edge-tls")
        let template = repositoryRoot().appendingPathComponent("deploy/edge.nginx.conf").path
        let pem = dir.appendingPathComponent("x.pem").path
        try "not read at render time".write(toFile: pem, atomically: true, encoding: .utf8)
        let base = [
            "edge", "--listen", "127.0.0.1:8089", "--prefix", prefix.path, "--template", template, "--lua-dir", "/opt/sy/lua",
            "--render-only",
        ]
        let result = try await Executable.run(
            base + [
                "--redis-tls", "--redis-tls-ca", pem, "--redis-tls-cert", pem, "--redis-tls-key", pem, "--redis-tls-server-name",
                "redis.internal",
            ])
        #expect(result.status == 0, "\(result.stderr)")
        let conf = try String(contentsOfFile: prefix.appendingPathComponent("nginx.conf").path, encoding: .utf8)
        #expect(conf.contains("lua_ssl_trusted_certificate \(pem); lua_ssl_verify_depth 4;"))
        #expect(conf.contains("redis_tls = [==[on]==], redis_tls_cert = [==[\(pem)]==], redis_tls_key = [==[\(pem)]==]"))
        #expect(conf.contains("redis_tls_server_name = [==[redis.internal]==]"))
        let plain = try await Executable.run(base)
        #expect(plain.status == 0, "\(plain.stderr)")
        let plainConf = try String(contentsOfFile: prefix.appendingPathComponent("nginx.conf").path, encoding: .utf8)
        #expect(!plainConf.contains("lua_ssl_verify_depth 4;") && plainConf.contains("# no TLS to Redis"))
        #expect(plainConf.contains("redis_tls = [==[off]==]"))
        // half a client certificate, or TLS files without --redis-tls: refused
        for args in [
            ["--redis-tls", "--redis-tls-cert", pem], ["--redis-tls-ca", pem], ["--redis-tls", "--redis-tls-ca", "/nonexistent.pem"],
        ] {
            let refused = try await Executable.run(base + args)
            #expect(refused.status != 0, "\(args) was accepted")
        }
    }

    @Test func controllerRefusesAPublicBindWithoutToken() async throws {
        let result = try await Executable.run(["controller", "--listen", "0.0.0.0:1", "--redis", "127.0.0.1:1"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("without a token"))
    }

    @Test func controllerServesAndStopsOnSIGTERM() async throws {
        try await withTemporaryRedis { server async throws in
            let port = try freeLoopbackPort()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Executable.path)
            process.arguments = [
                "controller", "--listen", "127.0.0.1:\(port)", "--redis", "127.0.0.1:\(server.port)",
                "--functions", repositoryRoot().appendingPathComponent("redis/switchyard.lua").path,
            ]
            var env = ProcessInfo.processInfo.environment
            env["SWITCHYARD_ADMIN_TOKEN"] = "cli-token"
            process.environment = env
            process.standardOutput = FileHandle.nullDevice
            let err = Pipe()
            process.standardError = err
            let done = Mutex(false)
            process.terminationHandler = { _ in done.withLock { $0 = true } }
            try process.run()
            defer { if !done.withLock({ $0 }) { kill(process.processIdentifier, SIGKILL) } }

            var health: String?
            for _ in 0..<200 {
                health = httpGet(port: port, path: "/healthz")
                if health != nil { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(health?.hasPrefix("HTTP/1.1 200") == true)
            #expect(health?.contains(#""redis":true"#) == true)
            #expect(httpGet(port: port, path: "/api/v1/routes")?.hasPrefix("HTTP/1.1 401") == true)
            #expect(httpGet(port: port, path: "/api/v1/routes", token: "cli-token")?.hasPrefix("HTTP/1.1 200") == true)

            kill(process.processIdentifier, SIGTERM)
            let deadline = ContinuousClock.now + .seconds(10)
            while !done.withLock({ $0 }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(done.withLock { $0 }, "controller did not exit on SIGTERM")
            #expect(process.terminationStatus == 0)
            let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(!log.contains("cli-token"), "the token must never be logged")
        }
    }
}

/// A minimal HTTP/1.1 GET over a blocking socket (enough for a smoke test).
func httpGet(port: Int, path: String, token: String? = nil) -> String? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = UInt16(port).bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return nil }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var request = "GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    if let token { request += "Authorization: Bearer \(token)\r\n" }
    request += "\r\n"
    let bytes = Array(request.utf8)
    guard send(fd, bytes, bytes.count, 0) == bytes.count else { return nil }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = recv(fd, &buffer, buffer.count, 0)
        if n <= 0 { break }
        response.append(contentsOf: buffer[0..<n])
    }
    return response.isEmpty ? nil : String(decoding: response, as: UTF8.self)
}
