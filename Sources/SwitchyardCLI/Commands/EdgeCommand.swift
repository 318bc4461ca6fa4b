// `switchyard edge`: render deploy/edge.nginx.conf (with the snippets of deploy/edge.d/ it
// names) into <prefix>/nginx.conf and exec nginx
// in the foreground, so nginx is the process that systemd/containers/shells signal.

import ArgumentParser
import Foundation
import SwitchyardController
import SwitchyardCore
import SwitchyardRedis

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct EdgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge",
        abstract: "Render an edge's nginx.conf and run nginx (foreground) with it."
    )

    @Option(help: "Where the edge listens: 8080, 127.0.0.1:8080 or [::1]:8080.")
    var listen: String = "8080"

    @OptionGroup var redis: RedisAddressOptions

    @Option(
        help: ArgumentHelp(
            "Replicas the syncer reads and subscribes at (the first that answers; the master when none does); "
                + "only the edge's registration goes to the master.", valueName: "host:port[,host:port...]"))
    var redisRead: String?

    @Option(
        name: .customLong("listen-tls"),
        help: "A TLS (HTTPS, HTTP/2) listener: 8443, 127.0.0.1:8443 or [::1]:8443. Repeatable; none: no TLS.")
    var listenTLS: [String] = []

    @Option(
        name: .customLong("listen-h2c"),
        help: ArgumentHelp(
            "A cleartext HTTP/2 (h2c, prior knowledge) listener, e.g. for gRPC clients without TLS: "
                + "8082, 127.0.0.1:8082 or [::1]:8082. It speaks only HTTP/2. Repeatable; none: no h2c."))
    var listenH2C: [String] = []

    @Option(help: "The port clients use for HTTPS, in https_redirect Locations (default: the first --listen-tls port, else 443).")
    var httpsPort: Int?

    @Option(help: "CA bundle verifying upstreams with tls_verify (default: /etc/ssl/certs/ca-certificates.crt).")
    var upstreamCa: String?

    @Option(help: "nginx prefix directory (created; holds nginx.conf, logs/, tmp/).")
    var prefix: String

    @Option(help: "nginx worker processes: auto or a number.")
    var workers: String = "auto"

    @Option(help: "Edge id in Redis (default: <hostname>-<port>).")
    var id: String?

    @Option(help: "nginx binary.")
    var nginx: String = "/usr/sbin/nginx"

    @Option(help: "Directory containing the switchyard/ Lua package (default: lua/ of the Switchyard installation).")
    var luaDir: String?

    @Option(help: "nginx.conf template (default: deploy/edge.nginx.conf of the Switchyard installation).")
    var template: String?

    @Option(help: "Access log path, or off (default: <prefix>/logs/access.log).")
    var accessLog: String?

    @Option(help: "Access log format: text, or json (one JSON object a line).")
    var accessLogFormat: String = "text"

    @Option(
        help: ArgumentHelp(
            "Where the edge serves /metrics (Prometheus), /_switchyard/status and /_switchyard/explain: "
                + "127.0.0.1:9145, [::1]:9145, a port, or off."))
    var metricsListen: String = "127.0.0.1:9145"

    @Option(
        name: .customLong("trusted-proxies"),
        help: ArgumentHelp(
            "Load balancers or proxies in front of the edge, CIDR[,CIDR...] (repeatable): their X-Forwarded-For "
                + "(or PROXY protocol header) gives the client's address. Default: none, the client is the TCP peer."))
    var trustedProxies: [String] = []

    @Flag(
        name: .customLong("proxy-protocol"),
        help: "Traffic listeners expect a PROXY protocol (v1/v2) header; needs --trusted-proxies.")
    var proxyProtocol = false

    @Option(
        name: .customLong("error-pages"),
        help: ArgumentHelp(
            "A JSON file of the edge's error pages, the shape of a route's error_pages "
                + "({\"404\":{\"body\":\"...\",\"content_type\":\"text/html\"},\"503\":{\"redirect\":\"https://...\"}}): "
                + "for requests no route matches and routes without a page of their own."))
    var errorPages: String?

    @Option(help: "Error log path, or stderr.")
    var errorLog: String = "stderr"

    @Option(help: "Size of the shared dict holding the configuration, e.g. 64m.")
    var configDictSize: String = "64m"

    @Option(help: "nginx error log level.")
    var logLevel: String = "notice"

    @Flag(help: "Only render the configuration and print its path.")
    var renderOnly = false

    func run() throws {
        let prefixDir = absolute(prefix)
        let (listenArgument, port): (String, Int)
        let redisHost: String
        let redisPort: Int
        do {
            (listenArgument, port) = try HostPort.nginxListen(listen)
        } catch {
            throw ValidationError("--listen \(error)")
        }
        (redisHost, redisPort) = try redis.endpoint()
        var metricsArgument: String? = nil
        if metricsListen != "off" {
            do {
                metricsArgument = try HostPort.nginxListen(metricsListen).listen
            } catch {
                throw ValidationError("--metrics-listen \(error) (or off)")
            }
        }
        guard EdgeSettings.accessLogFormats[accessLogFormat] != nil else {
            throw ValidationError("--access-log-format must be text or json, not '\(accessLogFormat)'")
        }
        var tlsListen: [(listen: String, port: Int)] = []
        for text in listenTLS {
            do {
                tlsListen.append(try HostPort.nginxListen(text))
            } catch {
                throw ValidationError("--listen-tls \(error)")
            }
        }
        var h2cListen: [String] = []
        for text in listenH2C {
            do {
                h2cListen.append(try HostPort.nginxListen(text).listen)
            } catch {
                throw ValidationError("--listen-h2c \(error)")
            }
        }
        var proxies: [String] = []
        for text in trustedProxies.flatMap({ $0.split(separator: ",", omittingEmptySubsequences: false) }) {
            let item = text.trimmingCharacters(in: .whitespaces)
            switch CIDR.parse(item) {
            case .success(let cidr):
                if !proxies.contains(cidr.description) { proxies.append(cidr.description) }
            case .failure(let error):
                throw ValidationError("--trusted-proxies '\(item)': \(error.message)")
            }
        }
        if proxyProtocol, proxies.isEmpty {
            throw ValidationError(
                "--proxy-protocol needs --trusted-proxies (the load balancers' addresses; 0.0.0.0/0,::/0 trusts every peer)")
        }
        // the edge decrypts certificate keys with it: a malformed value must stop it here,
        // not make every encrypted certificate fail later
        if let text = ProcessInfo.processInfo.environment[CertificateKeyCipher.environmentVariable], !text.isEmpty,
            case .failure(let error) = CertificateKeyCipher.parse(text)
        {
            throw ValidationError(error.message)
        }

        let luaDirectory: String
        if let luaDir {
            luaDirectory = absolute(luaDir)
        } else if let root = Installation.root(containing: "lua/switchyard/phases.lua") {
            luaDirectory = (root as NSString).appendingPathComponent("lua")
        } else {
            throw ValidationError("cannot find lua/switchyard/phases.lua; pass --lua-dir or set SWITCHYARD_HOME")
        }
        let templatePath: String
        if let template {
            templatePath = absolute(template)
        } else if let root = Installation.root(containing: "deploy/edge.nginx.conf") {
            templatePath = (root as NSString).appendingPathComponent("deploy/edge.nginx.conf")
        } else {
            throw ValidationError("cannot find deploy/edge.nginx.conf; pass --template or set SWITCHYARD_HOME")
        }
        guard let templateData = FileManager.default.contents(atPath: templatePath),
            let templateText = String(data: templateData, encoding: .utf8)
        else {
            throw ValidationError("cannot read the template \(templatePath)")
        }

        var settings = EdgeSettings(
            workers: workers, prefix: prefixDir, listen: listenArgument, luaDir: luaDirectory, redisHost: redisHost,
            redisPort: redisPort, edgeID: id ?? Self.defaultID(port: port), configDictSize: configDictSize,
            accessLog: accessLog.map { $0 == "off" ? "off" : absolute($0) }, errorLog: errorLog == "stderr" ? "stderr" : absolute(errorLog),
            logLevel: logLevel)
        settings.tlsListen = tlsListen.map(\.listen)
        settings.h2cListen = h2cListen
        settings.redisUser = redis.user ?? ""
        settings.group = redis.group
        settings.redisSentinels = try redis.sentinels().map(\.description).joined(separator: ",")
        settings.redisMaster = redis.redisMaster ?? ""
        if let tls = redis.tls {
            settings.redisTLS = true
            settings.redisTLSCA = tls.caFile ?? ""
            settings.redisTLSCert = tls.certificateFile ?? ""
            settings.redisTLSKey = tls.keyFile ?? ""
            settings.redisTLSServerName = tls.serverName ?? ""
        }
        if let redisRead {
            var replicas: [String] = []
            for part in redisRead.split(separator: ",") {
                do {
                    let (host, port) = try HostPort.parse(part.trimmingCharacters(in: .whitespaces))
                    replicas.append(RedisAddress(host: host, port: port).description)
                } catch {
                    throw ValidationError("--redis-read \(error)")
                }
            }
            settings.redisRead = replicas.joined(separator: ",")
        }
        settings.metricsListen = metricsArgument
        settings.trustedProxies = proxies
        if let errorPages {
            let path = absolute(errorPages)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("--error-pages \(path) is not a readable file")
            }
            let json: JSONValue
            do {
                json = try JSONValue.parse(String(decoding: data, as: UTF8.self))
            } catch {
                throw ValidationError("--error-pages \(path) is not JSON: \(error)")
            }
            if case .failure(let failure) = ErrorPages.parseEdgeDefault(json) {
                let text = failure.problems.map { "\($0.field.isEmpty ? "(the file)" : $0.field): \($0.message)" }.joined(separator: "; ")
                throw ValidationError("--error-pages \(path): \(text)")
            }
            settings.errorPages = path
        }
        settings.proxyProtocol = proxyProtocol
        settings.accessLogFormat = accessLogFormat
        settings.requestIDPrefix = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        settings.httpsPort = httpsPort ?? tlsListen.first?.port ?? 443
        if let upstreamCa {
            settings.upstreamCA = absolute(upstreamCa)
            guard FileManager.default.isReadableFile(atPath: settings.upstreamCA) else {
                throw ValidationError("--upstream-ca \(settings.upstreamCA) is not a readable file")
            }
        } else if !FileManager.default.isReadableFile(atPath: settings.upstreamCA) {
            // nginx needs a file; with the placeholder every tls_verify upstream fails (502), as it should
            FileHandle.standardError.write(
                Data(
                    "warning: \(settings.upstreamCA) does not exist: upstreams with tls_verify will fail; pass --upstream-ca\n".utf8))
            settings.upstreamCA = EdgeTLSFiles.paths(prefix: prefixDir).certificate
        }
        // the snippets the template names ({{name}}): every name.conf in edge.d/ beside it
        let snippetSource = ((templatePath as NSString).deletingLastPathComponent as NSString)
            .appendingPathComponent(EdgeTemplate.snippetDirectory)
        var snippets: [String: String] = [:]
        let snippetNames = (try? FileManager.default.contentsOfDirectory(atPath: snippetSource)) ?? []
        for name in snippetNames where name.hasSuffix(".conf") {
            let path = (snippetSource as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw ValidationError("cannot read the template snippet \(path)")
            }
            snippets[String(name.dropLast(".conf".count))] = text
        }
        let rendered: String
        do {
            rendered = try EdgeTemplate.render(templateText, settings: settings, snippets: snippets)
        } catch {
            throw ValidationError("cannot render \(templatePath): \(error)")
        }

        let fm = FileManager.default
        for dir in [prefixDir, prefixDir + "/logs", prefixDir + "/tmp"] {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        do {
            try EdgeTLSFiles.ensurePlaceholder(prefix: prefixDir)
        } catch {
            throw ValidationError("\(error)")
        }
        let confPath = prefixDir + "/nginx.conf"
        try Data(rendered.utf8).write(to: URL(fileURLWithPath: confPath), options: .atomic)

        if renderOnly {
            print(confPath)
            return
        }
        // started as root, nginx runs its workers as nobody: they must be able to enter
        // every directory down to <prefix>/state, or the snapshot is lost silently
        if geteuid() == 0, let worker = Self.workerIdentity() {
            let state = prefixDir + "/state"
            if let blocked = EdgeWorkerAccess.firstBlocked(state, for: worker, lookup: Self.directory) {
                FileHandle.standardError.write(
                    Data("error: \(EdgeWorkerAccess.message(blocked, worker: worker, state: state))\n".utf8))
                throw ExitCode(78)  // EX_CONFIG
            }
        }
        let args = [nginx, "-p", prefixDir + "/", "-c", confPath, "-g", "daemon off;"]
        fflush(nil)  // all C streams: print() output must not be lost by exec
        // exec keeps the signal mask: make sure nginx starts with none blocked, whatever
        // thread we are on (Dispatch worker threads block all signals)
        var none = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, nil)
        let cArgs = args.map { strdup($0) } + [nil]
        if nginx.contains("/") {
            execv(nginx, cArgs)
        } else {
            execvp(nginx, cArgs)
        }
        let reason = String(cString: strerror(errno))
        throw ValidationError("cannot exec \(nginx): \(reason)")
    }

    private func absolute(_ path: String) -> String {
        let url =
            path.hasPrefix("/")
            ? URL(fileURLWithPath: path) : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(path)
        var result = url.standardizedFileURL.path
        while result.count > 1, result.hasSuffix("/") { result.removeLast() }
        return result
    }

    /// nginx's worker user when the master runs as root (its built-in default, `nobody`,
    /// with its groups), or nil when the system has no such user.
    static func workerIdentity() -> EdgeWorkerAccess.Identity? {
        let name = EdgeWorkerAccess.defaultUser
        guard let pw = getpwnam(name) else { return nil }
        let uid = pw.pointee.pw_uid
        let primary = pw.pointee.pw_gid
        var gids: Set<UInt32> = [primary]
        // nginx's default group: nogroup where it exists (Debian), else the user's own
        if let group = getgrnam("nogroup") { gids.insert(group.pointee.gr_gid) }
        var count: Int32 = 64
        var list = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, primary, &list, &count) >= 0 {
            for gid in list.prefix(Int(count)) { gids.insert(gid) }
        }
        return EdgeWorkerAccess.Identity(name: name, uid: uid, gids: gids)
    }

    /// A directory's owner, group and mode, or nil when it does not exist.
    static func directory(_ path: String) -> EdgeWorkerAccess.Directory? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return EdgeWorkerAccess.Directory(uid: st.st_uid, gid: st.st_gid, mode: UInt32(st.st_mode) & 0o7777)
    }

    /// `<hostname>-<port>`, reduced to the characters an edge id may have.
    static func defaultID(port: Int) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let host =
            gethostname(&buffer, buffer.count) == 0
            ? String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self) : "edge"
        let cleaned = String(host.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_") ? $0 : "-" })
        let suffix = "-\(port)"
        return String((cleaned.isEmpty ? "edge" : cleaned).prefix(63 - suffix.count)) + suffix
    }
}

/// The placeholder certificate nginx needs to start a TLS listener (ssl_certificate_by_lua
/// replaces it in every handshake): a self-signed EC key pair in <prefix>/tls/, generated
/// once with libcrypto and kept across restarts.
enum EdgeTLSFiles {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Where the template expects them: <prefix>/tls/placeholder.crt and .key.
    static func paths(prefix: String) -> (certificate: String, key: String) {
        (prefix + "/tls/placeholder.crt", prefix + "/tls/placeholder.key")
    }

    /// Generates the pair unless a usable one is there; `prefix` exists.
    static func ensurePlaceholder(prefix: String) throws {
        let fm = FileManager.default
        let dir = prefix + "/tls"
        let (certificate, key) = paths(prefix: prefix)
        if let c = fm.contents(atPath: certificate), let k = fm.contents(atPath: key),
            case .success = OpenSSL.readCertificate(chain: String(decoding: c, as: UTF8.self), key: String(decoding: k, as: UTF8.self))
        {
            return
        }
        if !fm.fileExists(atPath: dir) {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        }
        let now = Int64(Date().timeIntervalSince1970)
        guard
            let pair = OpenSSL.generate(
                CertificateRequest(
                    commonName: "switchyard placeholder (never served)", notBefore: now - 86400, notAfter: now + 3650 * 86400))
        else {
            throw Failure(description: "cannot generate the placeholder certificate in \(dir)")
        }
        // the key file is created 0600 before anything is written to it
        guard fm.createFile(atPath: key + ".tmp", contents: Data(pair.key.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw Failure(description: "cannot write \(key)")
        }
        try Data(pair.certificate.utf8).write(to: URL(fileURLWithPath: certificate), options: .atomic)
        _ = try? fm.removeItem(atPath: key)
        try fm.moveItem(atPath: key + ".tmp", toPath: key)
    }
}
