"""The document contract between the controller and the edges (issue 16, item 3): a
generated corpus of route and upstream documents, valid and invalid, that the controller
(Swift) and the edges' decoders (Lua, in a real nginx with the PCRE its ngx.re links) must
judge the same way.

Used by scripts/gen_doc_corpus.py (`make corpus`: records Tests/Fixtures/document-corpus.json,
read by Tests/SwitchyardCoreTests/Policies/PolicyFixtureTests.swift and
lua/switchyard/route/policy_documents_spec.lua) and by e2e/test_hardening.py (which runs
the same generator live, so a decoder change that was not regenerated fails there).

Mutations start from every valid document of Tests/Fixtures/policy-documents.json plus
EXTRA_BASES: every field path (deduplicated by shape; a route's path per match kind) gets
the values specific to its name, ~80 generic values (limits +-1, wrong types, "", NBSP,
U+0085, U+2028, "%41", ...) and deletion; header objects get extra member names. Real
processes only, loopback only, every loop bounded."""
import copy
import json
import os
import re
import socket
import sys

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "e2e"))
from harness import BASE, Process, free_port, resp_command, wait_until  # noqa: E402

LUA_DIR = os.path.join(ROOT, "lua")
NGINX = "/usr/sbin/nginx"
FIXTURE = os.path.join(ROOT, "Tests/Fixtures/policy-documents.json")
CORPUS = os.path.join(ROOT, "Tests/Fixtures/document-corpus.json")


# --- a tiny nginx running the edge's decoders -------------------------------------------

_PROBE_CONF = r"""
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    access_log off;
    client_max_body_size 256m;
    client_body_buffer_size 256m;
    lua_package_path "{lua_dir}/?.lua;;";
    lua_regex_cache_max_entries 8192;
    lua_regex_match_limit 100000;
    server {{
        listen 127.0.0.1:{port};
        # [pattern, ...] -> [{{ok, err, captures}}, ...]: compiled as the edge compiles a
        # route's regex (ngx.re.find("", re, "jo")); captures: the compiled pattern's group
        # count, read through the lua module's own compile function (resty.core declares it)
        location = /regex {{
            content_by_lua_block {{
                local cjson = require "cjson"
                local ffi = require "ffi"
                require "resty.core.regex"
                local C = ffi.C
                local errbuf = ffi.new("unsigned char[256]")
                local function captures(re)
                    local compiled = C.ngx_http_lua_ffi_compile_regex(re, #re, 0, 0, errbuf, 256)
                    if compiled == nil then
                        return cjson.null
                    end
                    local n = compiled.ncaptures
                    C.ngx_http_lua_ffi_destroy_regex(compiled)
                    return n
                end
                ngx.req.read_body()
                local out = {{}}
                for i, re in ipairs(cjson.decode(ngx.req.get_body_data())) do
                    local ok, _, _, err = pcall(ngx.re.find, "", re, "jo")
                    if not ok then err = "raised: " .. tostring(_) end
                    out[i] = {{ok = err == nil, err = err or cjson.null,
                               captures = err == nil and captures(re) or cjson.null}}
                end
                ngx.say(cjson.encode(out))
            }}
        }}
        # [{{kind, id, raw}}, ...] -> [{{ok, err}}, ...] with the edge's own decoders
        location = /decode {{
            content_by_lua_block {{
                local cjson = require "cjson"
                local doc = require "switchyard.route.decode"
                local upstream = require "switchyard.balancer.upstream"
                local function check(re)
                    local _, _, err = ngx.re.find("", re, "jo")
                    if err then return nil, err end
                    return true
                end
                ngx.req.read_body()
                local out = {{}}
                for i, c in ipairs(cjson.decode(ngx.req.get_body_data())) do
                    local ok, v, err
                    if c.kind == "route" then
                        ok, v, err = pcall(doc.decode_route, c.raw, c.id, check)
                    else
                        ok, v, err = pcall(upstream.decode, c.raw, c.id)
                    end
                    if not ok then
                        out[i] = {{ok = false, err = "raised: " .. tostring(v)}}
                    else
                        out[i] = {{ok = v ~= nil, err = err or cjson.null}}
                    end
                end
                ngx.say(cjson.encode(out))
            }}
        }}
    }}
}}
"""


class DecoderProbe:
    """nginx + lua-nginx-module with this tree's lua/: ngx.re (the PCRE the edges really
    link) and the edge's document decoders, over HTTP on a free loopback port."""

    def __init__(self, workdir, name="decoder-probe"):
        self.prefix = os.path.join(workdir, name)
        os.makedirs(os.path.join(self.prefix, "tmp"), exist_ok=True)
        self.port = free_port()
        conf = os.path.join(self.prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(_PROBE_CONF.format(prefix=self.prefix, lua_dir=LUA_DIR, port=self.port))
        self.process = Process(name, [NGINX, "-p", self.prefix, "-c", conf, "-g", "daemon off;"],
                               log_dir=workdir)
        self.url = f"http://127.0.0.1:{self.port}"

        def up():
            if not self.process.alive():
                raise AssertionError("decoder probe exited:\n" + self.process.output())
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        wait_until(up, 10, what="decoder probe nginx")

    def _post(self, path, items):
        out = []
        for i in range(0, len(items), 500):
            r = requests.post(self.url + path, data=json.dumps(items[i:i + 500]), timeout=60)
            assert r.status_code == 200, (r.status_code, r.text[:500])
            out += r.json()
        return out

    def regex_verdicts(self, patterns):
        """[(compiles, error)] for each pattern, as the edge's ngx.re sees it."""
        return [(v["ok"], v["err"]) for v in self._post("/regex", list(patterns))]

    def regex_details(self, patterns):
        """[(compiles, error, captures)] for each pattern (captures None unless it compiles)."""
        return [(v["ok"], v["err"], v["captures"]) for v in self._post("/regex", list(patterns))]

    def decode(self, cases):
        """cases: [(kind, id, raw document)] -> [(accepted, error)]."""
        return [(v["ok"], v["err"]) for v in
                self._post("/decode", [{"kind": k, "id": i, "raw": raw} for k, i, raw in cases])]

    def stop(self):
        self.process.stop()


# --- the regex corpus (issue 16, item 2) ------------------------------------------------

# Patterns around the differences between PCRE2 10.42 (libpcre2-8) and PCRE 8.39
# (libpcre.so.3, which Debian's lua-nginx-module links), plus ordinary ones both must agree
# on. None contains whitespace or control characters (route paths cannot).
REGEX_CORPUS = [
    # ordinary: both compile
    "^/users/[0-9]+/avatar$", "^/a(b|c)*d$", "(?i)^/API/", "^/(?<name>[a-z]+)/\\k<name>$",
    "^/(?P<id>\\d+)$", "(?|(a)|(b))", "^/x\\Ky", "(?=a)a", "(?<=/a)b", "(?<!x)y",
    "a++b", "a{2,3}?", "[[:alpha:]]+", "\\p{L}+", "(*UTF)^/é$", "\\o{101}", "\\x{41}",
    "(*NO_START_OPT)a", "(*NO_AUTO_POSSESS)a+b", "(*MARK:m)a", "(*COMMIT)a", "(?C1)a",
    "[[:<:]]word[[:>:]]", "(?(1)a|b)", "(a)(?(1)b|c)", "(?#comment)a", "\\Qa.b\\E",
    "(?(DEFINE)(?<d>\\d))(?&d)", "(?1)(a)", "a{,3}", "(?s).", "(*LIMIT_MATCH=100)a",
    "(?J)(?<n>a)|(?<n>b)", "(?-i)a", "(?U)a+", "(*CR)a", "(*ANYCRLF)a", "(*BSR_UNICODE)\\R",
    # both refuse
    "(", "a)", "[a", "a{2,1}", "*a", "a**", "(?<=a+)b", "\\", "(?P<1>a)", "x{65536}",
    "(?<n>a)(?<n>b)", "\\x{100}", "[z-a]", "(?z)", "\\c",
    # PCRE2 only (10.42 compiles them, 8.39 does not)
    "(*pla:a)", "(*positive_lookahead:a)", "(*nla:a)", "(*plb:a)", "(*nlb:a)",
    "(*atomic:a)", "(*napla:a)", "(*sr:a)", "(?^i)a", "(?^)a", "(?n)(a)", "(?xx)a",
    "(*LIMIT_HEAP=1000)a", "(*LIMIT_DEPTH=100)a", "(*NOTEMPTY)a", "(*NOTEMPTY_ATSTART)a",
    "(*NO_JIT)a", "(?C\"text\")a", "(?(VERSION>=10.0)a|b)", "\\N{U+0041}",
    "(*UTF)\\N{U+00E9}", "(*UCP)\\w", "\\p{Bidi_Control}", "\\p{scx:Latin}",
    "(*NO_DOTSTAR_ANCHOR).*a", "(?aD)\\d",
    # PCRE1 only (8.39 compiles them, PCRE2 refuses)
    "(*UTF8)a", "(*LIMIT_RECURSION=100)a",
    # nesting and size limits
    "(" * 200 + "a" + ")" * 200, "(" * 260 + "a" + ")" * 260, "(?:abc){5000}", "(?:abcdefgh){9000}",
    "[\\d-z]", "[a-\\d]", "\\8", "(a)\\2", "\\g{-1}(a)", "(a)\\g{-1}",
    # capture counts the edge's decoder estimates from the text (branch reset, classes,
    # quoting, comments, named groups in their three spellings)
    "(?|(a)(b)|(c))", "[(](a)", "\\Q(\\E(a)", "(?#(x)(y))(a)", "(?'n'a)(?P<m>b)(?<o>c)",
]


# --- the generated document corpus (issue 16, item 3) -----------------------------------

def _long(n, c="a"):
    return c * n


# Values tried in every field: the boundaries of every limit either side uses, wrong
# types, and characters one side may treat differently (Unicode spaces, C1 controls).
GENERIC_VALUES = [
    "", " ", "a", "A", "é", "\u00a0", "\u0085", "\u2028", "a b", "%41", "/", "//x", "*",
    "-", "_", ".", "..", "x:1", "$", "$1", "${1}", "$$", "$10", "${x}", "true", "null",
    _long(63), _long(64), _long(128), _long(129), _long(256), _long(257), _long(1024),
    _long(2048), _long(2049), _long(4096), _long(4097),
    0, -1, 1, 2, 10, 63, 64, 100, 255, 256, 1000, 1001, 65535, 65536, 100000, 100001,
    60000, 60001, 3600000, 3600001, 31536000, 31536001, 104857600, 104857601,
    2 ** 31, 2 ** 53, 2 ** 53 + 1, -(2 ** 53), 1.5, 1000.0, 1e300,
    True, False, None, [], {}, [1], ["a"], {"a": 1},
]

HOST_VALUES = [
    "a.test", "*.a.test", "A.TEST", "a.test.", "*.a.test.", "a..test", ".a.test", "-a.test",
    "a-.test", "a_b.test", "*", "*.", "*.*.test", "a.*.test", "x" * 63 + ".test",
    "x" * 64 + ".test", ".".join(["a"] * 127), ".".join(["a"] * 128), "é.test",
    "xn--caf-dma.test", "1.2.3.4", "[::1]", "a.test:80", "a b.test", "a#b.test",
]
PATH_VALUES = [
    "/", "/a", "/a/b/", "//a", "/a//b", "/./a", "/a/../b", "/%41", "/caf%C3%A9", "/café",
    "/a b", "/a\u00a0b", "/a\u0085b", "/a\u2028b", "/a?b", "/a#b", "a", "/" + "a" * 2047,
    "/" + "a" * 2048, "/" + "a" * 4096, "/a;b", "/a\\b", "/~a", "/a%",
    # normal form (issue 16, low: paths the edge can never see) and segment_prefix's slash
    "/a/", "/a/.", "/a/..", "/.", "/..", "/...", "/a/.b", "/%7e", "/%7E", "/100%", "/a%2",
    "/a%zz", "/a%2Fb", "/x//y",
]
ADDRESS_VALUES = [
    "127.0.0.1:1", "127.0.0.1:65535", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:08",
    "127.000.0.1:80", "1.2.3:80", "[::1]:80", "[::ffff:127.0.0.1]:80", "[::ffff:7f00:1]:80",
    "[1:2:3:4:5:6:7:8]:80", "[1::2::3]:80", "[fe80::1%eth0]:80", "[::]:80", "0.0.0.0:80",
    "255.255.255.255:80", "224.0.0.1:80", "169.254.169.254:80", "localhost:80",
    "[1:2:3:4:5:6:7::]:80", "[::1:2:3:4:5:6:7]:80", "[1:2:3:4:5:6::7:8]:80",
    "[0:0:0:0:0:0:0:1]:80", "[::127.0.0.1]:80", "[1:2:3:4:5:6:1.2.3.4]:80",
    # leading zeros, unusable and link-local addresses (issue 16, low)
    "127.0.0.1:080", "[::1]:08", "[::1]:0", "01.2.3.4:80", "[::ffff:01.2.3.4]:80",
    "169.254.1.1:80", "[fe80::1]:80", "[febf::1]:80", "[fec0::1]:80", "[fd00:ec2::254]:80",
    "[::ffff:0.0.0.0]:80", "[::ffff:224.0.0.1]:80", "240.0.0.1:80", "239.255.255.250:1900",
    "[ff02::1]:80", "[::ffff:169.254.169.254]:80", "1.2.3.4:80", "10.0.0.1:8080",
    "[2001:db8::1]:443", "[::1]", "127.0.0.1", "[::1]:80:1", "127.0.0.1:80:1",
]
CIDR_VALUES = [
    "10.0.0.0/8", "10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/08", "010.0.0.0/8", "::/0",
    "::ffff:127.0.0.0/104", "::ffff:0:0/96", "2001:db8::/32", "2001:db8::1/32", "::1",
    "127.0.0.1", "0.0.0.0/0", "1.2.3.4/", "/8", "fe80::1%eth0", "::ffff:1.2.3.4",
    "1:2:3:4:5:6:7::/128", "::1:2:3:4:5:6:7/128",
    # IPv4-mapped ranges are stored as IPv4 (issue 16, low)
    "::ffff:7f00:0/104", "::ffff:10.0.0.0/95", "::ffff:0:0/95", "::ffff:10.1.2.3",
    "::ffff:10.1.2.3/128", "::ffff:10.0.0.0/120",
]
HEADER_NAMES = [
    "X-A", "Host", "host", "", "a b", "X" * 128, "X" * 129, "X" * 256, "X" * 257, "é",
    "X-Forwarded-Port", "Forwarded", "Connection", "X_A", "X:A",
]
HOST_HEADER_VALUES = [
    "", "a.test", "a.test:8080", "a b", "é", "[::1]", "x" * 300, "a/b",
    # request_headers.set.Host must be host or host:port (issue 16, item 3)
    "A.TEST", "a.test.", "*.a.test", "a.test:0", "a.test:08", "a.test:65535",
    "a.test:65536", "[::1]:80", "[1::2::3]", "[::1]x", "1.2.3.4:80", "a_b.test", "a.test:",
    ":80", "a..test", "-a.test", "x" * 63 + ".test", "x" * 64 + ".test", "a.test:80:1",
    "[1.2.3.4]", "[]",
]
OWNER_VALUES = [
    "k8s/switchyard", "k8s:default/bbs", " ", "x" * 253, "x" * 254, "", "é", "a\u0001b",
    "a\u007fb", 5, True, None, ["k8s"],
]

# field name -> the values that matter to it (on top of GENERIC_VALUES)
# authentication bases (public keys and hash shapes: nothing here is a secret)
BCRYPT = "$2y$10$" + "a" * 53
SHA512_CRYPT = "$6$rounds=5000$saltsalt$" + "b" * 86
RSA_PUBLIC = '-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAh54ep/mplPOfSW14ze+w\nAG19q1R8qfaCCodGEFwZHV2Xiz7H+lnPfW0P5JaPpp5H0FSdw+7h3YJGOfqQLmFd\ntUZnLvjI8r16coEBRPtiYBc8CvRuhpRejdPzUpznBvRI6LAuxsBHtE5n5AX0edZw\nEU5++h3mnqvsih1FjlKV5lZMQH1pBX9BFWsPpv/gerSp1OV1s2XGUi1iRR0Jq2kh\nWjB6VZpD0g2BCs5yEO4ln/7YzmyHCbTGyY3KKwMRH0lR+QdH3UzAwGiwYAcEDSe3\n9fNqK0Vf591xgrm4Ycn1LbPWkpWwvKseRywW9YIXrB3FvfTtM6EV4EXNK9r6tUKQ\n3QIDAQAB\n-----END PUBLIC KEY-----\n'
EC_PUBLIC = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEc5rhaoTeKf9BOAXz9R+KdQ9MiklL\nCORvG81yG3V2SaOpV355gXLrkxCmXgKphw4BoRApHSnjw4wECW9iIaWbGw==\n-----END PUBLIC KEY-----\n'
RSA_1024_PUBLIC = '-----BEGIN PUBLIC KEY-----\nMIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQChgr5cZheVi+b7WNgT/CADtSqu\nS3IDsgohTYXAKQXSFeuli9NDZvUNKcvr2yxBdxPv3hjK5j5d7KfYYN7K8OiWQSRd\nOJr5MeRlEmaVhwNse7UjYU4s42tlYcysWTup5g1WL2uJdYhnea5PyOSB3+eBsl7v\ngPfivnu/4BF+5DvVMwIDAQAB\n-----END PUBLIC KEY-----\n'

SPECIFIC = {
    "host": HOST_VALUES, "path": PATH_VALUES, "address": ADDRESS_VALUES,
    "replace_prefix": PATH_VALUES, "replacement": PATH_VALUES + [
        "/$1", "/${1}", "/$9", "/$$", "/$0", "/${10}", "/$1234", "/${1234}", "/$", "/${}",
        "/${1", "/$a"],
    "regex": REGEX_CORPUS[:8] + ["(*pla:a)", "(?^i)a"], "to": [
        "/", "//evil.test", "http://a.test", "https://a.test/x", "http://", "https://?x",
        "http:///x", "HTTP://A.TEST", "ftp://a.test", "/a?b", "/a#b", "javascript:x",
        "http://a.test/\u00a0", "\\\\evil.test", "/\\evil.test", "https://#x", "///x"],
    "domain": HOST_VALUES, "tls_server_name": HOST_VALUES, "key": [
        "ip", "header:X-A", "header:", "header:a b", "cookie:a", "uri", "header:" + "X" * 129],
    "hash_on": ["uri", "ip", "header:X-A", "cookie:c", "header:", "cookie:", "x"],
    "cookie": ["c", "", "a b", "x" * 64, "x" * 65, "c=1", "c;"],
    "value": ["1", "", "\u00a0", "x" * 4097],
    "upstream": ["a", "A", "a" * 64, "", ".", ".."], "id": ["r", ".", "..", "R", "a" * 64, "..."],
    "name": ["a", ".", "..", "A", "..."], "balance": ["round_robin", "least_conn", "x", ""],
    "match": ["exact", "prefix", "regex", "segment_prefix", "x", "EXACT", "segment-prefix"],
    "wildcard": ["one_label", "ONE_LABEL", "any", "one-label", ""],
    "health_check": [{"type": "tcp"}],
    "origins": ["*", "https://a.test", "http://a.test:80", "https://A.TEST", "https://a.test/",
                "https://a.test:0", "https://a.test:080", "https://a.test:65536",
                "https://a.test:", "ftp://a.test", "https://[::1]", "https://1.2.3.4:8443",
                "http://[::1]:3000", "http://[::0001]:3000", "http://[::1]:0", "http://[::1",
                "http://[::ffff:1.2.3.4]", "http://[::G]",
                "https://a..test", "https://.a.test", "https://a.test.", "https://a_b.test",
                "https://", "http://a.test:1:2", "https://" + "a" * 300],
    "methods": ["GET", "get", "*", "M" * 32, "M" * 33, "PROPFIND", "G-T"],
    "headers": ["X-A", "*", "a b", "X" * 128, "X" * 129, "x-a"],
    "expose_headers": ["X-A", "*", "a b", "X" * 128, "X" * 129],
    "types": ["text/html", "Text/html", "text/html; charset=utf-8", "text", "text/", "/html",
              "*/*", "text/*", "a/b/c", "image/svg+xml", "x" * 60 + "/" + "y" * 66,
              "x" * 60 + "/" + "y" * 67],
    "min_bytes": [0, 1, 1024, 104857600, 104857601, -1],
    "body": ["", "<p>x</p>", "x" * 16384, "x" * 16385, "é" * 8192, "é" * 8193],
    "content_type": ["text/html", "", "a\tb", "application/json; charset=utf-8", "x" * 4097],
    "redirect": ["/", "/a", "//evil.test", "https://a.test/x", "http://", "https:///x",
                 "ftp://a.test", "/a b", "x" * 2049, "https://a.test/" + "x" * 2040],
    # authentication (issue 22 item 4)
    "realm": ["staff", "", "a\"b", "a\\b", "x" * 64, "x" * 65, "a b"],
    "hash": [BCRYPT, SHA512_CRYPT, "$2b$04$" + "." * 53, "$2b$13$" + "a" * 53,
             "$2a$10$" + "a" * 53, "$2y$10$" + "a" * 52, "$6$s$" + "b" * 86,
             "$6$" + "s" * 17 + "$" + "b" * 86, "$6$rounds=999$s$" + "b" * 86,
             "$6$rounds=100001$s$" + "b" * 86, "$6$rounds=01000$s$" + "b" * 86,
             "$6$$" + "b" * 86, "$1$salt$abcdefghijklmnopqrstuv", "$apr1$salt$abc", "{SHA}x",
             "plain", "$6$s$" + "b" * 85 + "*"],
    "alg": ["RS256", "ES256", "HS256", "none", "rs256", "RS384", "PS256"],
    "pem": [RSA_PUBLIC, EC_PUBLIC, "x", "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
            RSA_PUBLIC + EC_PUBLIC, RSA_PUBLIC.replace("PUBLIC KEY", "RSA PUBLIC KEY"),
            RSA_1024_PUBLIC, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"],
    "kid": ["k", "", "x" * 256, "x" * 257, "a b", "\t"],
    "issuer": ["https://id.test", "", "x" * 256, "x" * 257, "a\tb"],
    "audience": ["api", "", "x" * 256, "x" * 257],
    "leeway_s": [0, 300, 301, -1, 1.5],
    "claims_to_headers": [{}, {"sub": "X-A"}, {"sub": "Authorization"}, {"sub": "cookie"},
                          {"sub": "X-A", "email": "x-a"}, {"a b": "X-A"}, {"sub": "a b"},
                          {"x" * 64: "X-A"}, {"x" * 65: "X-A"}, {"sub": "Host"}],
    "header": ["X-Token", "", "a b", "X" * 128, "X" * 129],
    "url": ["http://127.0.0.1:9000/auth", "http://[::1]:9000/", "https://127.0.0.1:1/x",
            "http://auth.test:80/x", "http://127.0.0.1/x", "http://127.0.0.1:80",
            "http://127.0.0.1:0/x", "http://127.0.0.1:65536/x", "http://127.0.0.01:80/x",
            "http://[::1]/x", "http://::1:80/x", "http://127.0.0.1:80/a b", "http://127.0.0.1:80/#x",
            "http://127.0.0.1:80/" + "x" * 1004, "http://127.0.0.1:80/" + "x" * 1005],
    "request_headers": [["Authorization"], [], ["a b"], ["X-A", "x-a"], ["X"] * 17, ["Host"],
                        ["Content-Length"], ["X-Forwarded-Uri"], ["expect"]],
    "response_headers": [["X-User"], [], ["Host"], ["X-Forwarded-For"], ["X-A", "x-a"]],
    "cache_s": [0, 300, 301, -1], "fail_open": [True, False, 1, "true"],
    "type": ["http", "https", "tcp", "udp", "HTTP"],
    "expect_status": [["200"], ["200-399"], ["100"], ["599"], ["99"], ["600"], ["300-200"],
                      ["2xx"], [200], [], ["200", "200"], ["200-200"], [" 200"]],
    "scheme": ["http", "https", "HTTPS", "ftp"], "on_all_down": ["fail_open", "503", 503, "x"],
    "protocol": ["http", "grpc", "grpcs", "GRPC", "h2", 1],
    "hsts": [{"max_age_s": 0}, {"max_age_s": 63072000}, {"max_age_s": 63072001},
             {"preload": True}, {"preload": True, "include_subdomains": True,
                                 "max_age_s": 31536000}],
}


def _paths(node, prefix=()):
    """Every (path, value) in a JSON tree, the root excluded."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,), v
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield prefix + (i,), v
            yield from _paths(v, prefix + (i,))


_DELETE = object()


def _set(doc, path, value):
    d = copy.deepcopy(doc)
    node = d
    for p in path[:-1]:
        node = node[p]
    if value is _DELETE:
        if isinstance(node, dict):
            del node[path[-1]]
        else:
            node.pop(path[-1])
    else:
        node[path[-1]] = value
    return d


def _signature(kind, base, path):
    # a route's path is judged by its match kind (a regex path is compiled)
    match = base.get("match") if path[:1] == ("path",) else None
    return (kind, match) + tuple("#" if isinstance(p, int) else p for p in path)


# Documents the fixture lacks, so that every member both decoders know is mutated: HSTS
# and require_sni_match, wildcard hosts (any depth and one label), segment_prefix, an
# active health check with an endpoint exempt from it, an HTTPS upstream.
EXTRA_BASES = {
    "routes": [
        {"host": "*.app.test", "id": "tls-route", "match": "prefix", "path": "/", "priority": 0,
         "upstream": "blue", "https_redirect": True, "require_sni_match": True,
         "hsts": {"include_subdomains": True, "max_age_s": 31536000, "preload": False}},
        {"host": "*.one.test", "id": "one-label", "match": "prefix", "path": "/", "priority": 0,
         "upstream": "blue", "wildcard": "one_label"},
        {"host": "seg.test", "id": "seg", "match": "segment_prefix", "path": "/api",
         "priority": 0, "upstream": "blue", "rewrite": {"strip_prefix": True}},
        # cors (issue 22): listed origins with credentials, and the wildcard
        {"host": "cors.test", "id": "cors", "match": "prefix", "path": "/", "priority": 0,
         "upstream": "blue",
         "cors": {"origins": ["https://app.test", "http://a.test:8080"], "methods": ["GET", "PUT"],
                  "headers": ["X-A"], "expose_headers": ["X-B"], "credentials": True,
                  "max_age_s": 600}},
        {"host": "cors-any.test", "id": "cors-any", "match": "prefix", "path": "/", "priority": 0,
         "upstream": "blue",
         "cors": {"origins": ["*"], "methods": ["GET"], "headers": ["*"], "expose_headers": [],
                  "credentials": False, "max_age_s": 0}},
        # error_pages (issue 22): an inline page and a redirect
        {"host": "pages.test", "id": "pages", "match": "prefix", "path": "/", "priority": 0,
         "upstream": "blue",
         "error_pages": {"503": {"body": "<h1>down</h1>", "content_type": "text/html"},
                         "429": {"redirect": "https://status.test/busy"}}},
        # gzip (issue 22)
        {"host": "gzip.test", "id": "gzip", "match": "prefix", "path": "/", "priority": 0,
         "upstream": "blue", "gzip": {"min_bytes": 256, "types": ["text/html", "application/json"]}},
        # authentication (issue 22 item 4): basic_auth, jwt with two keys, forward_auth
        {"host": "basic.test", "id": "basic", "match": "prefix", "path": "/", "priority": 0,
         "upstream": "blue",
         "basic_auth": {"realm": "staff", "users": [{"name": "ann", "hash": BCRYPT},
                                                    {"name": "bob", "hash": SHA512_CRYPT}]}},
        {"host": "jwt.test", "id": "jwt", "match": "prefix", "path": "/", "priority": 0,
         "upstream": "blue",
         "jwt": {"keys": [{"alg": "RS256", "kid": "r", "pem": RSA_PUBLIC},
                          {"alg": "ES256", "kid": "e", "pem": EC_PUBLIC}],
                 "issuer": "https://id.test", "audience": "api", "leeway_s": 30,
                 "claims_to_headers": {"sub": "X-User"}, "cookie": "tok"}},
        {"host": "fwd.test", "id": "fwd", "match": "prefix", "path": "/", "priority": 0,
         "upstream": "blue",
         "forward_auth": {"url": "http://127.0.0.1:9000/auth?x=1", "request_headers": ["Authorization"],
                          "response_headers": ["X-User"], "cache_s": 10, "timeout_ms": 500,
                          "fail_open": False}},
    ],
    "upstreams": [
        {"name": "checked", "balance": "round_robin",
         "endpoints": [{"address": "127.0.0.1:9", "weight": 1},
                       {"address": "127.0.0.2:9", "health_check": False, "weight": 1}],
         "health_check": {"type": "http", "path": "/healthz", "host": "backend.internal",
                          "port": 8080, "interval_ms": 1000, "timeout_ms": 500, "rise": 2,
                          "fall": 3, "expect_status": ["200", "300-302"]},
         "passive": {"fail_timeout_ms": 10000, "max_fails": 3}, "retries": 2,
         "on_all_down": "503"},
        {"name": "secure", "balance": "round_robin",
         "endpoints": [{"address": "[::1]:8443", "weight": 1}],
         "scheme": "https", "tls_server_name": "backend.internal", "tls_verify": True},
        # gRPC (issue 22 item 5): cleartext, and over TLS with a verified name
        {"name": "grpc", "balance": "round_robin", "protocol": "grpc",
         "endpoints": [{"address": "127.0.0.1:50051", "weight": 1}]},
        {"name": "grpc-tls", "balance": "round_robin", "protocol": "grpcs",
         "endpoints": [{"address": "127.0.0.1:50052", "weight": 1}],
         "tls_server_name": "backend.internal", "tls_verify": True},
    ],
}


def generate_corpus(fixture):
    """Mutations of the valid documents of Tests/Fixtures/policy-documents.json and
    EXTRA_BASES: every field path (deduplicated by shape) gets every generic value, the
    values specific to its name, and deletion; free-form header objects also get new member
    names; every base gets `owner` and `source` members (set by writers, refused in API
    bodies). Yields (kind, label, document)."""
    seen = set()
    for kind in ("routes", "upstreams"):
        for base in fixture[kind]["valid"] + EXTRA_BASES[kind]:
            for path, current in _paths(base):
                sig = _signature(kind, base, path)
                if sig in seen:
                    continue
                seen.add(sig)
                name = next((p for p in reversed(path) if isinstance(p, str)), "")
                values = list(SPECIFIC.get(name, [])) + GENERIC_VALUES + [_DELETE]
                if kind == "routes" and name == "path" and base.get("match") == "regex":
                    values = REGEX_CORPUS + values
                if name in ("allow", "deny"):
                    values += [[c] for c in CIDR_VALUES]
                if isinstance(path[-1], int) and len(path) >= 2 and path[-2] in ("allow", "deny"):
                    values += CIDR_VALUES
                for v in values:
                    label = "/".join(str(p) for p in path) + "=" + (
                        "<deleted>" if v is _DELETE else json.dumps(v)[:40])
                    yield kind, label, _set(base, path, v)
                # free-form member names (request/response header objects)
                if name == "set" and isinstance(current, dict):
                    for h in HEADER_NAMES:
                        for hv in (["x"] + (HOST_HEADER_VALUES if h.lower() == "host" else [])):
                            d = _set(base, path, dict(current, **{h: hv}))
                            yield kind, "/".join(map(str, path)) + f"+{h!r}={hv[:20]!r}", d
                if name == "remove" and isinstance(current, list):
                    for h in HEADER_NAMES:
                        d = _set(base, path, current + [h])
                        yield kind, "/".join(map(str, path)) + f"+[{h!r}]", d
            # members a writer sets (ownership), never an API request
            for member in ("owner", "source"):
                if (kind, member) in seen:
                    continue
                seen.add((kind, member))
                for v in OWNER_VALUES:
                    yield kind, f"{member}={json.dumps(v)[:40]}", dict(base, **{member: v})


def load_fixture(path=FIXTURE):
    with open(path) as f:
        return json.load(f)


def referenced_upstreams(fixture):
    """Every upstream name a valid route of the fixture (or the corpus) refers to."""
    names = {"a", "b"}
    for d in fixture["routes"]["valid"] + EXTRA_BASES["routes"]:
        if isinstance(d.get("upstream"), str):
            names.add(d["upstream"])
        for s in d.get("split") or []:
            names.add(s["upstream"])
        if isinstance(d.get("canary"), dict):
            names.add(d["canary"]["upstream"])
    return names


def judge(controller, redis, probe, corpus):
    """Puts every document of `corpus` ((kind, label, doc)...) through the controller (one
    /apply each) and the edge's decoder. Returns one record per case:
      {kind, label, doc, status, stored (text minus the version, or None), problems
       (the controller's [{field, code, message}], field paths relative to the object),
       edge_ok, edge_err}
    The edge judges the bytes Redis stored when the controller stored the document, else
    the document itself as if typed into Redis by hand."""
    records = []
    for kind, label, doc in corpus:
        r = controller.request("POST", "/api/v1/apply", {kind: [doc]})
        rec = {"kind": kind, "label": label, "doc": doc, "status": r.status_code,
               "stored": None, "problems": []}
        if r.status_code == 200:
            # read back at once: the next document may overwrite the same key
            ident = doc["id"] if kind == "routes" else doc["name"]
            raw = resp_command(redis.port, "GET", BASE + f"{kind[:-1]}:{ident}",
                               password=redis.password)
            assert raw is not None, (label, "accepted but not stored")
            rec["stored_raw"] = raw.decode()
        else:
            assert r.status_code in (400, 404, 409, 422), (label, r.status_code, r.text[:300])
            error = r.json().get("error") or {}
            details = error.get("details") or (
                [{k: error.get(k) for k in ("field", "code", "message")}] if error.get("field") else [])
            prefix = re.compile(r"^" + kind + r"\[0\]\.?")
            rec["problems"] = [{"field": prefix.sub("", p["field"] or ""), "code": p["code"],
                                "message": p["message"]} for p in details]
            rec["error"] = error.get("code")
        records.append(rec)
    cases = []
    for rec in records:
        kind = rec["kind"][:-1]
        doc = rec["doc"]
        ident = doc.get("id") if kind == "route" else doc.get("name")
        ident = ident if isinstance(ident, str) else None
        cases.append((kind, ident, rec.get("stored_raw") or json.dumps(doc)))
    for rec, (ok, err) in zip(records, probe.decode(cases)):
        rec["edge_ok"], rec["edge_err"] = ok, err
    return records


def judge_corpus(controller, redis, probe, corpus):
    """(disagreements, accepted, refused): disagreements are (kind, label, stored bytes,
    edge error) for documents the controller stored and the edge refuses."""
    records = judge(controller, redis, probe, corpus)
    stored = [r for r in records if r["status"] == 200]
    bad = [(r["kind"][:-1], r["label"], r["stored_raw"], r["edge_err"]) for r in stored
           if not r["edge_ok"]]
    return bad, len(stored), len(records) - len(stored)
