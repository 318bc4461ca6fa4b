import Testing

@testable import SwitchyardCore

@Suite("Edge nginx.conf rendering")
struct EdgeConfigTests {
    let settings = EdgeSettings(
        prefix: "/var/lib/sy", listen: "127.0.0.1:8080", luaDir: "/opt/sy/lua", redisHost: "10.0.0.5",
        redisPort: 6380, edgeID: "host-8080")

    @Test func replacesEveryPlaceholder() throws {
        let template = """
            worker_processes {{workers}};
            error_log {{error_log}} {{log_level}};
            pid {{prefix}}/logs/nginx.pid;
            http {
              lua_package_path "{{lua_dir}}/?.lua;;";
              lua_shared_dict switchyard_config {{config_dict_size}};
              access_log {{access_log}};
              init_by_lua_block { local t = {{1, 2}}; require("switchyard.phases").init({redis_host = "{{redis_host}}", redis_port = {{ redis_port }}, id = "{{edge_id}}"}) }
              server { listen {{listen}}; }
            }
            """
        let out = try EdgeTemplate.render(template, settings: settings)
        #expect(
            out == """
                worker_processes auto;
                error_log stderr notice;
                pid /var/lib/sy/logs/nginx.pid;
                http {
                  lua_package_path "/opt/sy/lua/?.lua;;";
                  lua_shared_dict switchyard_config 64m;
                  access_log /var/lib/sy/logs/access.log switchyard buffer=64k flush=1s;
                  init_by_lua_block { local t = {{1, 2}}; require("switchyard.phases").init({redis_host = "10.0.0.5", redis_port = 6380, id = "host-8080"}) }
                  server { listen 127.0.0.1:8080; }
                }
                """)
        #expect(!out.contains("{{w"))
    }

    /// The group reaches the init block (where keys.lua is configured before anything else);
    /// the default group's edge renders `cfg`; a bad name is refused before rendering.
    @Test func theGroupIsRenderedIntoTheInitBlock() throws {
        let template = #"init_by_lua_block { require("switchyard.phases").init({ group = [==[{{group}}]==] }) }"#
        #expect(try EdgeTemplate.render(template, settings: settings).contains("group = [==[cfg]==]"))
        var s = settings
        s.group = "tenant-a"
        #expect(try EdgeTemplate.render(template, settings: s).contains("group = [==[tenant-a]==]"))
        s.group = "Tenant}"
        #expect(throws: TemplateError.self) { try EdgeTemplate.render(template, settings: s) }
        #expect(s.problems().contains { $0.contains("group") })
    }

    @Test func unknownPlaceholdersFailWithTheirLines() {
        let template = "a {{workers}}\nb {{wrokers}}\nc {{ nope }}\n"
        #expect(throws: TemplateError(problems: ["unknown placeholder {{wrokers}} on line 2", "unknown placeholder {{nope}} on line 3"])) {
            try EdgeTemplate.render(template, settings: settings)
        }
    }

    @Test func badSettingsAreRefusedBeforeRendering() {
        var s = settings
        s.workers = "0"
        s.prefix = "relative"
        s.accessLog = "/tmp/a b.log"
        s.logLevel = "loud"
        s.configDictSize = "64"
        s.edgeID = "bad id;"
        #expect(throws: TemplateError.self) { try EdgeTemplate.render("x", settings: s) }
        #expect(s.problems().count >= 6)
        #expect(settings.problems().isEmpty)
    }

    @Test func snippetsAreWrittenOutWhereTheTemplateNamesThem() throws {
        let snippets = [
            "headers": "# the headers\nproxy_set_header A $a;\n\nproxy_set_header B {{edge_id}};\n",
            "peer": "server 0.0.0.1;",
        ]
        let out = try EdgeTemplate.render(
            "upstream u {\n    {{peer}}\n}\nlocation / {\n        {{headers}}\n    x {{peer}}\n}\n",
            settings: settings, snippets: snippets)
        #expect(
            out == """
                upstream u {
                    server 0.0.0.1;
                }
                location / {
                        proxy_set_header A $a;

                        proxy_set_header B host-8080;
                    x server 0.0.0.1;
                }

                """)
    }

    @Test func badSnippetsAreRefused() {
        #expect(throws: TemplateError(problems: ["snippet 'part': unknown placeholder {{nope}} on line 1"])) {
            try EdgeTemplate.render("{{part}}", settings: settings, snippets: ["part": "x {{nope}};"])
        }
        #expect(throws: TemplateError(problems: ["snippet 'workers' has the name of a setting"])) {
            try EdgeTemplate.render("{{workers}}", settings: settings, snippets: ["workers": "x;"])
        }
        #expect(throws: TemplateError(problems: ["snippet 'a-b' is not a placeholder name (letters, digits, _)"])) {
            try EdgeTemplate.render("x", settings: settings, snippets: ["a-b": "x;"])
        }
        // a snippet cannot name another one: snippets are rendered with the settings only
        #expect(throws: TemplateError.self) {
            try EdgeTemplate.render("{{a}}", settings: settings, snippets: ["a": "{{b}}", "b": "x;"])
        }
    }

    @Test func accessLogCanBeOff() throws {
        var s = settings
        s.accessLog = "off"
        #expect(try EdgeTemplate.render("access_log {{access_log}};", settings: s) == "access_log off;")
    }

    @Test func jsonAccessLogUsesTheJSONFormat() throws {
        var s = settings
        s.accessLogFormat = "json"
        #expect(
            try EdgeTemplate.render("access_log {{access_log}};", settings: s)
                == "access_log /var/lib/sy/logs/access.log switchyard_json buffer=64k flush=1s;")
        s.accessLogFormat = "xml"
        #expect(s.problems() == ["access log format must be text or json, not 'xml'"])
    }

    @Test func metricsListenerLinesAreCommentedOutWhenOff() throws {
        let template = "{{metrics}}listen {{metrics_listen}};\nm = [==[{{metrics_listen}}]==]"
        #expect(try EdgeTemplate.render(template, settings: settings) == "# listen off;\nm = [==[off]==]")
        var s = settings
        s.metricsListen = "127.0.0.1:9145"
        #expect(try EdgeTemplate.render(template, settings: s) == "listen 127.0.0.1:9145;\nm = [==[127.0.0.1:9145]==]")
        s.metricsListen = "127.0.0.1:8080"
        #expect(s.problems() == ["'127.0.0.1:8080' is both the metrics and a traffic listen address"])
    }

    @Test func trustedProxiesRenderTheRealIPDirectives() throws {
        let template = "server {\n    listen {{listen}} reuseport{{proxy_protocol}};\n    {{real_ip}}\n    xff {{forwarded_for}};\n}"
        // none: a comment, nginx's own X-Forwarded-For, no proxy_protocol
        #expect(
            try EdgeTemplate.render(template, settings: settings)
                == "server {\n    listen 127.0.0.1:8080 reuseport;\n    # no trusted proxies: the client is the TCP peer "
                + "(switchyard edge --trusted-proxies)\n    xff $proxy_add_x_forwarded_for;\n}")
        var s = settings
        s.trustedProxies = ["10.0.0.0/8", "2001:db8::/32"]
        #expect(
            try EdgeTemplate.render(template, settings: s)
                == "server {\n    listen 127.0.0.1:8080 reuseport;\n    set_real_ip_from 10.0.0.0/8;\n"
                + "    set_real_ip_from 2001:db8::/32;\n    real_ip_header X-Forwarded-For;\n    real_ip_recursive on;\n"
                + "    xff $sy_forwarded_for;\n}")
        s.proxyProtocol = true
        s.tlsListen = ["127.0.0.1:8443"]
        let out = try EdgeTemplate.render(template + "\n{{tls_listen}}", settings: s)
        #expect(out.contains("listen 127.0.0.1:8080 reuseport proxy_protocol;"))
        #expect(out.contains("real_ip_header proxy_protocol;"))
        #expect(out.contains("xff $proxy_add_x_forwarded_for;"))
        #expect(out.contains("listen 127.0.0.1:8443 ssl http2 reuseport backlog=4096 proxy_protocol;"))
    }

    @Test func badTrustedProxiesAndProxyProtocolAloneAreRefused() {
        var s = settings
        s.trustedProxies = ["10.0.0.1/8", "10.0.0.0/8;"]
        #expect(s.problems().count == 3)  // host bits, not an address, and the ';'
        s.trustedProxies = []
        s.proxyProtocol = true
        #expect(s.problems().count == 1)
        #expect(s.problems().first?.contains("trusted proxies") == true)
    }

    @Test(arguments: [
        ("8080", "8080", 8080), ("127.0.0.1:8080", "127.0.0.1:8080", 8080), ("[::1]:8080", "[::1]:8080", 8080),
        ("0.0.0.0:80", "0.0.0.0:80", 80), ("[::]:443", "[::]:443", 443),
    ])
    func listenForms(_ input: String, _ listen: String, _ port: Int) throws {
        let parsed = try HostPort.nginxListen(input)
        #expect(parsed.listen == listen)
        #expect(parsed.port == port)
    }

    @Test(arguments: ["", "0", "70000", "host:80", "::1:80", "[::1]", "127.0.0.1:", "[zz]:80"])
    func badListenForms(_ input: String) {
        #expect(throws: HostPort.ParseError.self) { try HostPort.nginxListen(input) }
    }

    @Test func redisHostPort() throws {
        #expect(try HostPort.parse("127.0.0.1:6380") == ("127.0.0.1", 6380))
        #expect(try HostPort.parse("redis.internal:6379") == ("redis.internal", 6379))
        #expect(try HostPort.parse("[::1]:6380") == ("::1", 6380))
        #expect(throws: HostPort.ParseError.self) { try HostPort.parse("redis") }
        #expect(throws: HostPort.ParseError.self) { try HostPort.parse(":6380") }
    }
}
