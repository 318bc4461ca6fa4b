// Rendering the edge's nginx.conf from deploy/edge.nginx.conf and the snippets it names
// (deploy/edge.d/*.conf) (pure: text in, text out).
//
// Placeholders are `{{name}}` with name from `EdgeSettings.placeholders`. Rendering fails
// on any `{{identifier}}` it does not know, and on values that could break out of an
// nginx directive (whitespace, `;`, braces, quotes), so a typo or a hostile path never
// reaches nginx half-substituted. Text such as Lua's `{{1, 2}}` is not a placeholder.

/// What `switchyard edge` substitutes into the template.
public struct EdgeSettings: Sendable, Equatable {
    /// `worker_processes`: "auto" or a positive number.
    public var workers: String = "auto"
    /// Absolute nginx prefix directory (no trailing slash).
    public var prefix: String
    /// nginx `listen` argument: `8080`, `127.0.0.1:8080` or `[::1]:8080`.
    public var listen: String
    /// Directory holding the `switchyard/` Lua package (for lua_package_path).
    public var luaDir: String
    public var redisHost: String = "127.0.0.1"
    public var redisPort: Int = 6380
    /// Redis ACL user ("" for the default user).
    public var redisUser: String = ""
    /// The group the edge serves (`--group`): its syncer reads `switchyard:{<group>}:...`
    /// (the init block hands it to lua/switchyard/sync/keys.lua before anything else).
    public var group: String = KeySchema.defaultGroup
    /// Sentinels `host:port,host:port` ("" for none: redisHost/redisPort is the master).
    public var redisSentinels: String = ""
    /// The master's name at the sentinels ("" without sentinels).
    public var redisMaster: String = ""
    /// Replicas `host:port,...` the syncer reads and subscribes at (--redis-read; "" for the master).
    public var redisRead: String = ""
    /// TLS to Redis and the sentinels (--redis-tls): the syncer's sslhandshake verifies the
    /// server's chain against `redisTLSCA` (lua_ssl_trusted_certificate) and, when a name is
    /// known, that the certificate is for it.
    public var redisTLS: Bool = false
    /// PEM CA bundle for Redis's certificate ("" : the system's).
    public var redisTLSCA: String = ""
    /// PEM client certificate and key the syncer presents (tls-auth-clients); "" for none.
    public var redisTLSCert: String = ""
    public var redisTLSKey: String = ""
    /// The name Redis's certificate must carry, sent as SNI ("" : the host when it is a name).
    public var redisTLSServerName: String = ""

    /// The CA bundle nginx verifies Redis with when none is given: Debian's.
    public static let systemCABundle = "/etc/ssl/certs/ca-certificates.crt"
    public var edgeID: String
    /// lua_shared_dict size for the configuration, e.g. `64m`.
    public var configDictSize: String = "64m"
    /// Access log path, or `off`.
    public var accessLog: String
    /// What follows the path in the `access_log` directive: the template's `switchyard`
    /// log_format, buffered (the template's `access_log {{access_log}};` expects both).
    public static let accessLogOptions = "switchyard buffer=64k flush=1s"
    /// The access log's format: `text` (the template's `switchyard` log_format) or `json`
    /// (`switchyard_json`: one JSON object a line, nginx `escape=json`).
    public var accessLogFormat: String = "text"
    public static let accessLogFormats = ["text": "switchyard", "json": "switchyard_json"]
    /// nginx `listen` argument of the metrics listener (`/metrics`, `/_switchyard/status`,
    /// `/_switchyard/explain`), e.g. `127.0.0.1:9145`; nil: none (`--metrics-listen off`),
    /// and the template's metrics lines are rendered commented out.
    public var metricsListen: String? = nil
    /// What starts the request ids the edge makes (`<prefix>-<connection>-<request>`): a
    /// random hex string per start (`switchyard edge` draws it), so ids of two edges or two
    /// runs differ while making one costs no random bytes per request.
    public var requestIDPrefix: String = "0"
    /// Error log path, or `stderr`.
    public var errorLog: String = "stderr"
    /// nginx error log level.
    public var logLevel: String = "notice"
    /// nginx `listen` arguments of the TLS listeners (`127.0.0.1:8443`); empty: no TLS, and
    /// the template's TLS lines are rendered commented out.
    public var tlsListen: [String] = []
    /// nginx `listen` arguments of the cleartext HTTP/2 listeners (h2c with prior knowledge,
    /// `--listen-h2c`: gRPC clients without TLS); empty: none. Such a listener speaks only
    /// HTTP/2 (nginx 1.22 cannot offer HTTP/1.1 and h2c on one port).
    public var h2cListen: [String] = []
    /// Options of every h2c `listen` directive.
    public static let h2cListenOptions = "http2 reuseport backlog=4096"
    /// The port clients use for HTTPS, for `https_redirect` Locations (omitted there when 443).
    public var httpsPort: Int = 443
    /// CA bundle that verifies upstreams with `"tls_verify": true` (proxy_ssl_trusted_certificate).
    public var upstreamCA: String = "/etc/ssl/certs/ca-certificates.crt"
    /// Options of every TLS `listen` directive.
    public static let tlsListenOptions = "ssl http2 reuseport backlog=4096"
    /// The peers whose word on the client's address the edge takes (`--trusted-proxies`):
    /// canonical CIDRs (`CIDR.description`). Empty: the client is the TCP peer, and an
    /// `X-Forwarded-For` it sends is only passed on, never believed.
    public var trustedProxies: [String] = []
    /// `--proxy-protocol`: every traffic listener expects a PROXY protocol (v1 or v2) header,
    /// and the client address is the one it carries (from a trusted peer only).
    public var proxyProtocol = false
    /// The edge's error pages (`--error-pages`): an absolute path of a JSON file holding an
    /// `error_pages` object, read by the edge at start; nil: none.
    public var errorPages: String? = nil

    /// The nginx realip directives of the traffic server (one a line), or a comment without
    /// trusted proxies. With them, nginx replaces the client address (`$remote_addr`,
    /// `$binary_remote_addr`: allow/deny, rate_limit by ip, ip_hash, X-Real-IP, the access
    /// log) before any phase handler runs: from the PROXY protocol header with
    /// `proxyProtocol`, else from X-Forwarded-For, walked from the right past every trusted
    /// address (`real_ip_recursive`), so a client cannot choose its address by writing one
    /// at the left.
    public var realIPDirectives: String {
        if trustedProxies.isEmpty { return "# no trusted proxies: the client is the TCP peer (switchyard edge --trusted-proxies)" }
        let header = proxyProtocol ? "proxy_protocol" : "X-Forwarded-For"
        let lines = trustedProxies.map { "set_real_ip_from \($0);" } + ["real_ip_header \(header);", "real_ip_recursive on;"]
        return lines.joined(separator: "\n")
    }

    public init(
        workers: String = "auto", prefix: String, listen: String, luaDir: String, redisHost: String = "127.0.0.1",
        redisPort: Int = 6380, edgeID: String, configDictSize: String = "64m", accessLog: String? = nil,
        errorLog: String = "stderr", logLevel: String = "notice"
    ) {
        self.workers = workers
        self.prefix = prefix
        self.listen = listen
        self.luaDir = luaDir
        self.redisHost = redisHost
        self.redisPort = redisPort
        self.edgeID = edgeID
        self.configDictSize = configDictSize
        self.accessLog = accessLog ?? prefix + "/logs/access.log"
        self.errorLog = errorLog
        self.logLevel = logLevel
    }

    /// The placeholder values, by name. `tls` is "" with TLS listeners and "# " without
    /// (it starts every TLS-only line of the template, commenting them out); `tls_listen` is
    /// the `listen ... ssl http2 ...;` directives, or a comment.
    public var placeholders: [String: String] {
        let tlsDirectives = tlsListen.map { "listen \($0) \(Self.tlsListenOptions)\(proxyProtocolOption);" }
            .joined(separator: " ")
        return [
            "tls": tlsListen.isEmpty ? "# " : "",
            "tls_listen": tlsListen.isEmpty ? "# no TLS listener (switchyard edge --listen-tls ADDR)" : tlsDirectives,
            "h2c_listen": h2cListen.isEmpty
                ? "# no h2c listener (switchyard edge --listen-h2c ADDR)"
                : h2cListen.map { "listen \($0) \(Self.h2cListenOptions)\(proxyProtocolOption);" }.joined(separator: " "),
            "https_port": String(httpsPort), "upstream_ca": upstreamCA,
            "workers": workers, "prefix": prefix, "listen": listen, "lua_dir": luaDir, "redis_host": redisHost,
            "redis_port": String(redisPort), "edge_id": edgeID, "group": group,
            "redis_user": redisUser, "redis_sentinels": redisSentinels, "redis_master": redisMaster, "redis_read": redisRead,
            "config_dict_size": configDictSize,
            "redis_tls": redisTLS ? "on" : "off",
            "redis_tls_cert": redisTLSCert, "redis_tls_key": redisTLSKey, "redis_tls_server_name": redisTLSServerName,
            // the syncer's sslhandshake verifies against these (only with --redis-tls)
            "redis_tls_lines": redisTLS
                ? "lua_ssl_trusted_certificate \(redisTLSCA.isEmpty ? Self.systemCABundle : redisTLSCA); lua_ssl_verify_depth 4;"
                : "# no TLS to Redis (switchyard edge --redis-tls)",
            "access_log": accessLog == "off" ? "off" : "\(accessLog) \(accessLogDirectiveOptions)", "error_log": errorLog,
            "log_level": logLevel,
            "metrics": metricsListen == nil ? "# " : "",
            "metrics_listen": metricsListen ?? "off",
            "access_log_format": accessLogFormat,
            "request_id_prefix": requestIDPrefix,
            "real_ip": realIPDirectives,
            "error_pages": errorPages ?? "off",
            "proxy_protocol": proxyProtocolOption,
            // X-Forwarded-For upstream: nginx's "$http_x_forwarded_for, $remote_addr", unless
            // X-Forwarded-For gave the client's address: then the chain as received plus the
            // peer that sent it ($realip_remote_addr; map $sy_forwarded_for in the template),
            // not the client's address a second time
            "forwarded_for": trustedProxies.isEmpty || proxyProtocol ? "$proxy_add_x_forwarded_for" : "$sy_forwarded_for",
        ]
    }

    /// What every traffic `listen` directive gets with `proxyProtocol`.
    var proxyProtocolOption: String { proxyProtocol ? " proxy_protocol" : "" }

    /// What follows the path in the `access_log` directive for `accessLogFormat`.
    var accessLogDirectiveOptions: String {
        accessLogFormat == "json"
            ? "\(Self.accessLogFormats["json"]!) buffer=64k flush=1s" : Self.accessLogOptions
    }

    /// The values as given (before `access_log` gets its format), for checking. The TLS
    /// placeholders are built here from `tlsListen`, which is checked entry by entry.
    var rawValues: [String: String] {
        var values = placeholders
        values["access_log"] = accessLog
        values["tls"] = nil
        values["tls_listen"] = nil
        values["h2c_listen"] = nil
        values["metrics"] = nil
        values["redis_tls_lines"] = nil
        if !redisTLSCA.isEmpty { values["redis_tls_ca"] = redisTLSCA }
        // optional: empty is "none"
        for name in [
            "redis_user", "redis_sentinels", "redis_master", "redis_read", "redis_tls_cert", "redis_tls_key", "redis_tls_server_name",
        ] where values[name] == "" { values[name] = nil }
        // built from checked values (trustedProxies are parsed CIDRs, checked below)
        values["real_ip"] = nil
        values["proxy_protocol"] = nil
        values["forwarded_for"] = nil
        for (i, proxy) in trustedProxies.enumerated() { values["trusted_proxies[\(i)]"] = proxy }
        for (i, listen) in tlsListen.enumerated() { values["tls_listen[\(i)]"] = listen }
        for (i, listen) in h2cListen.enumerated() { values["h2c_listen[\(i)]"] = listen }
        return values
    }

    public static let logLevels = ["debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"]

    /// Every problem with the settings (empty when they are usable).
    public func problems() -> [String] {
        var out: [String] = []
        if workers != "auto", Int(workers).map({ $0 < 1 || $0 > 1024 }) ?? true {
            out.append("workers must be 'auto' or a number 1-1024, not '\(workers)'")
        }
        if !prefix.hasPrefix("/") { out.append("prefix must be an absolute path, not '\(prefix)'") }
        if !luaDir.hasPrefix("/") { out.append("lua dir must be an absolute path, not '\(luaDir)'") }
        if !(1...65535).contains(redisPort) { out.append("redis port must be 1-65535") }
        if !Self.isValidEdgeID(edgeID) {
            out.append("edge id '\(edgeID)' must be 1-63 characters from A-Z a-z 0-9 . _ -")
        }
        if let problem = KeySchema.problem(group: group) { out.append(problem) }
        if !Self.logLevels.contains(logLevel) {
            out.append("log level must be one of \(Self.logLevels.joined(separator: ", "))")
        }
        if !(1...65535).contains(httpsPort) { out.append("https port must be 1-65535") }
        if !upstreamCA.hasPrefix("/") { out.append("upstream CA bundle must be an absolute path, not '\(upstreamCA)'") }
        if Set(tlsListen).count != tlsListen.count { out.append("a TLS listen address is given twice") }
        if tlsListen.contains(listen) { out.append("'\(listen)' is both the HTTP and a TLS listen address") }
        if Set(h2cListen).count != h2cListen.count { out.append("an h2c listen address is given twice") }
        for address in h2cListen where address == listen || tlsListen.contains(address) {
            out.append("'\(address)' is both an h2c and another listen address")
        }
        if Self.accessLogFormats[accessLogFormat] == nil {
            out.append("access log format must be text or json, not '\(accessLogFormat)'")
        }
        if let metricsListen, metricsListen == listen || tlsListen.contains(metricsListen) || h2cListen.contains(metricsListen) {
            out.append("'\(metricsListen)' is both the metrics and a traffic listen address")
        }
        for proxy in trustedProxies {
            if case .failure(let error) = CIDR.parse(proxy) { out.append("trusted proxy '\(proxy)': \(error.message)") }
        }
        if let errorPages {
            if !errorPages.hasPrefix("/") { out.append("error pages file must be an absolute path, not '\(errorPages)'") }
            // it is written into a Lua long string ([==[...]==]) in init_by_lua
            if errorPages.contains("]") { out.append("error pages file '\(errorPages)' must not contain ']'") }
        }
        for (name, path) in [("redis TLS CA", redisTLSCA), ("redis TLS certificate", redisTLSCert), ("redis TLS key", redisTLSKey)]
        where !path.isEmpty {
            if !path.hasPrefix("/") { out.append("\(name) must be an absolute path, not '\(path)'") }
            // written into Lua long strings ([==[...]==]) in init_by_lua
            if path.contains("]") { out.append("\(name) '\(path)' must not contain ']'") }
            if !redisTLS { out.append("\(name) needs TLS to Redis") }
        }
        if redisTLSCert.isEmpty != redisTLSKey.isEmpty { out.append("redis TLS certificate and key go together") }
        if redisTLSServerName.contains("]") { out.append("redis TLS server name must not contain ']'") }
        if proxyProtocol, trustedProxies.isEmpty {
            out.append("proxy protocol needs the trusted proxies (the load balancers' addresses) whose header the edge believes")
        }
        if !Self.isSize(configDictSize) { out.append("config dict size must look like 64m, 512k or 1g, not '\(configDictSize)'") }
        for (name, value) in rawValues.sorted(by: { $0.key < $1.key }) {
            if value.isEmpty { out.append("\(name) must not be empty") }
            if value.unicodeScalars.contains(where: {
                $0.properties.isWhitespace || $0.value < 0x20 || "\";'{}\\$#".unicodeScalars.contains($0)
            }) {
                out.append("\(name) '\(value)' contains characters nginx would misread (spaces, quotes, ; { } $ #)")
            }
        }
        return out
    }

    static func isValidEdgeID(_ id: String) -> Bool {
        (1...63).contains(id.utf8.count)
            && id.utf8.allSatisfy { b in
                (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x5F || b == 0x2D
            }
    }

    static func isSize(_ s: String) -> Bool {
        guard let last = s.last, "kKmMgG".contains(last) else { return false }
        let digits = s.dropLast()
        return !digits.isEmpty && digits.allSatisfy(\.isASCII) && digits.allSatisfy(\.isNumber)
    }
}

/// Why a template could not be rendered.
public struct TemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    public var problems: [String]
    public var description: String { problems.joined(separator: "; ") }
}

public enum EdgeTemplate {
    /// The directory beside the template holding its snippets: each `<name>.conf` in it is the
    /// placeholder `{{<name>}}`, what several blocks of the template share, said once. A
    /// snippet is rendered with the settings' placeholders (its comment lines left out) and
    /// put where the template names it, so nginx reads one flat nginx.conf, as if the lines
    /// were written out in each place (an nginx `include` instead made every request's pool
    /// allocation dearer: bench/instructions.py).
    public static let snippetDirectory = "edge.d"

    /// Replaces every `{{name}}` in `template` with the settings' value or the snippet of that
    /// name (`snippets`: name -> text). Throws listing every unknown placeholder (with its
    /// line), every bad setting and every bad snippet.
    public static func render(_ template: String, settings: EdgeSettings, snippets: [String: String] = [:])
        throws(TemplateError) -> String
    {
        let problems = settings.problems()
        if !problems.isEmpty { throw TemplateError(problems: problems) }
        var values = settings.placeholders
        var snippetProblems: [String] = []
        for (name, text) in snippets.sorted(by: { $0.key < $1.key }) {
            let bytes = Array("{{\(name)}}".utf8)
            guard let (parsed, _) = placeholder(in: bytes, at: 0), parsed == name else {
                snippetProblems.append("snippet '\(name)' is not a placeholder name (letters, digits, _)")
                continue
            }
            if values[name] != nil {
                snippetProblems.append("snippet '\(name)' has the name of a setting")
                continue
            }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.drop(while: { $0 == " " || $0 == "\t" }).hasPrefix("#") }
            var body = lines.joined(separator: "\n")
            while body.hasSuffix("\n") { body.removeLast() }
            do throws(TemplateError) {
                values[name] = try render(body, values: settings.placeholders)
            } catch {
                snippetProblems += error.problems.map { "snippet '\(name)': \($0)" }
            }
        }
        if !snippetProblems.isEmpty { throw TemplateError(problems: snippetProblems) }
        return try render(template, values: values)
    }

    /// Replaces every `{{name}}` (name: letters, digits, `_`; spaces inside the braces
    /// allowed) with `values[name]`; throws on names not in `values`.
    public static func render(_ template: String, values: [String: String]) throws(TemplateError) -> String {
        let bytes = Array(template.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 256)
        var unknown: [String] = []
        var line = 1
        var lineStart = 0  // where the current line starts in out
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x0A {
                line += 1
                lineStart = out.count + 1
            }
            if bytes[i] == UInt8(ascii: "{"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "{"),
                let (name, end) = placeholder(in: bytes, at: i)
            {
                if let value = values[name] {
                    // a value of several lines keeps the indentation of the line it starts on
                    let indent = out[lineStart...].allSatisfy { $0 == 0x20 || $0 == 0x09 } ? Array(out[lineStart...]) : []
                    for (n, piece) in value.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                        if n > 0 {
                            out.append(0x0A)
                            if !piece.isEmpty { out.append(contentsOf: indent) }
                        }
                        out.append(contentsOf: Array(piece.utf8))
                    }
                } else {
                    unknown.append("unknown placeholder {{\(name)}} on line \(line)")
                }
                i = end
                continue
            }
            out.append(bytes[i])
            i += 1
        }
        if !unknown.isEmpty { throw TemplateError(problems: unknown) }
        return String(decoding: out, as: UTF8.self)
    }

    /// `{{ name }}` starting at `start`: the name and the index after the closing braces.
    static func placeholder(in bytes: [UInt8], at start: Int) -> (String, Int)? {
        var i = start + 2
        while i < bytes.count, bytes[i] == 0x20 { i += 1 }
        let nameStart = i
        while i < bytes.count,
            bytes[i] == 0x5F || (bytes[i] >= 0x30 && bytes[i] <= 0x39)
                || (bytes[i] | 0x20 >= 0x61 && bytes[i] | 0x20 <= 0x7A)
        {
            i += 1
        }
        guard i > nameStart else { return nil }
        let name = String(decoding: bytes[nameStart..<i], as: UTF8.self)
        // a name must start with a letter or "_" (so Lua's {{1, 2}} is left alone)
        guard let first = name.utf8.first, first == 0x5F || (first | 0x20 >= 0x61 && first | 0x20 <= 0x7A) else { return nil }
        while i < bytes.count, bytes[i] == 0x20 { i += 1 }
        guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "}"), bytes[i + 1] == UInt8(ascii: "}") else { return nil }
        return (name, i + 2)
    }
}

/// `host:port` for Redis and `port | ipv4:port | [ipv6]:port` for listen addresses.
public enum HostPort {
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// Parses `host:port` (host a name, IPv4 or `[ipv6]`). The host is returned without brackets.
    public static func parse(_ text: String, defaultHost: String? = nil) throws(ParseError) -> (host: String, port: Int) {
        var host: Substring
        var portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw ParseError(description: "'\(text)': missing ']'") }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw ParseError(description: "'\(text)': expected [ipv6]:port") }
            portText = rest.dropFirst()
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            if host.contains(":") { throw ParseError(description: "'\(text)': write IPv6 addresses in brackets, [::1]:port") }
            portText = text[text.index(after: colon)...]
        } else if let defaultHost, text.allSatisfy(\.isNumber) {
            host = Substring(defaultHost)
            portText = Substring(text)
        } else {
            throw ParseError(description: "'\(text)': expected host:port")
        }
        guard !host.isEmpty else { throw ParseError(description: "'\(text)': missing host") }
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw ParseError(description: "'\(text)': port must be 1-65535")
        }
        return (String(host), port)
    }

    /// The nginx `listen` argument for `8080`, `127.0.0.1:8080` or `[::1]:8080`, and its port.
    public static func nginxListen(_ text: String) throws(ParseError) -> (listen: String, port: Int) {
        if !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) {
            guard let port = Int(text), (1...65535).contains(port) else {
                throw ParseError(description: "'\(text)': port must be 1-65535")
            }
            return (String(port), port)
        }
        let (host, port) = try parse(text)
        if host.contains(":") {
            guard case .success = EndpointAddress.parse("[\(host)]:\(port)") else {
                throw ParseError(description: "'\(text)': '\(host)' is not an IPv6 address")
            }
            return ("[\(host)]:\(port)", port)
        }
        if host != "*", host != "localhost", EndpointAddress.parseIPv4(Substring(host)) == nil {
            throw ParseError(description: "'\(text)': listen on an IP address (e.g. 0.0.0.0:\(port)), not '\(host)'")
        }
        return ("\(host):\(port)", port)
    }
}
