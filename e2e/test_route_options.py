"""Route options at the edge (docs/traffic-policies.md): rewrite, request and response
headers, timeouts, max_body_bytes, rate_limit, allow/deny, redirect, and a broken option
skipped without harming other routes. Real redis-server, controller and nginx edges; the
demo backend echoes the path (with query, as sent) and headers it received."""
import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from harness import BASE, BIN, Edge, Process, free_port, put_route, wait_until

HOST = "opts.example.com"


@pytest.fixture(scope="module")
def up(controller, backends):
    controller.upstream("opts", backends["b1"].port)
    return "opts"


def _route(controller, edge, rid, path, match="prefix", **options):
    body = {"host": HOST, "path": path, "match": match, **options}
    if "split" not in options and "redirect" not in options:
        body.setdefault("upstream", "opts")
    put_route(controller, rid, body)
    return body


def _wait(edge, check, what):
    wait_until(check, 5, what=what + " on " + edge.id)


def _echo(edge, path, headers=None):
    r = requests.get(edge.url + path, headers=dict(headers or {}, Host=HOST), timeout=5,
                     allow_redirects=False)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def test_rewrite_keeps_the_query_string(controller, redis, edges, up):
    e = edges[0]
    _route(controller, e, "rw-strip", "/strip", rewrite={"strip_prefix": True})
    _route(controller, e, "rw-replace", "/old-api", rewrite={"replace_prefix": "/v2"})
    _route(controller, e, "rw-regex", "^/legacy/([a-z]+)/(\\d+)$", match="regex",
           rewrite={"regex": "^/legacy/([a-z]+)/(\\d+)$", "replacement": "/new/$2/$1"})
    _wait(e, lambda: requests.get(e.url + "/legacy/ab/12", headers={"Host": HOST},
                                  timeout=5).status_code == 200, "rewrite routes")
    _wait(e, lambda: _echo(e, "/strip/x")["path"] == "/x", "strip route")
    _wait(e, lambda: _echo(e, "/old-api/x")["path"] == "/v2/x", "replace route")

    assert _echo(e, "/strip/users?q=1&x=%2F&y=a+b")["path"] == "/users?q=1&x=%2F&y=a+b"
    assert _echo(e, "/strip")["path"] == "/"
    assert _echo(e, "/strip?only=query")["path"] == "/?only=query"
    assert _echo(e, "/old-api/users/7?page=2")["path"] == "/v2/users/7?page=2"
    assert _echo(e, "/old-api")["path"] == "/v2"
    assert _echo(e, "/legacy/shop/42?ref=mail&z")["path"] == "/new/42/shop?ref=mail&z"
    # the regex does not match: the path goes up as it was
    _route(controller, e, "rw-nomatch", "/keep", rewrite={"regex": "^/other/(.*)",
                                                                 "replacement": "/x/$1"})
    _wait(e, lambda: requests.get(e.url + "/keep/a?b=1", headers={"Host": HOST},
                                  timeout=5).status_code == 200, "no-match route")
    assert _echo(e, "/keep/a?b=1")["path"] == "/keep/a?b=1"
    # routes without options are untouched
    _route(controller, e, "rw-none", "/plain")
    _wait(e, lambda: _echo(e, "/plain/a?b=%20")["path"] == "/plain/a?b=%20", "plain route")


def test_request_and_response_headers(controller, redis, edges, up):
    e = edges[0]
    _route(controller, e, "hdr", "/hdr",
           request_headers={"set": {"X-Team": "blue", "Host": "inner.example"},
                            "remove": ["X-Drop", "Authorization"]},
           response_headers={"set": {"X-Frame-Options": "DENY", "X-Backend": "hidden"},
                             "remove": ["Content-Type"]})
    _wait(e, lambda: requests.get(e.url + "/hdr", headers={"Host": HOST}, timeout=5)
          .headers.get("X-Frame-Options") == "DENY", "header route")
    r = requests.get(e.url + "/hdr/x", headers={"Host": HOST, "X-Drop": "1", "X-Keep": "2",
                                                "Authorization": "Bearer t",
                                                "X-Team": "red"}, timeout=5)
    seen = r.json()["headers"]
    assert seen["x-team"] == "blue"          # set replaces the client's value
    assert seen["host"] == "inner.example"   # Host may be set
    assert "x-drop" not in seen and "authorization" not in seen
    assert seen["x-keep"] == "2"
    assert seen["x-forwarded-host"] == HOST  # the edge's own headers stay
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Backend"] == "hidden"    # the upstream's value replaced
    assert "Content-Type" not in r.headers
    # only that route
    r = requests.get(e.url + "/plain", headers={"Host": HOST, "X-Drop": "1"}, timeout=5)
    assert "x-drop" in r.json()["headers"] and "X-Frame-Options" not in r.headers


class _Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802
        delay = float(self.path.rsplit("/", 1)[-1] or 0)
        time.sleep(min(delay, 5))
        body = b"slow\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test_timeouts_504_from_a_slow_backend(controller, redis, edges):
    slow = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    slow.daemon_threads = True
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    try:
        controller.upstream("slow", slow.server_address[1])
        e = edges[0]
        put_route(controller, "slow-short", {"host": HOST, "path": "/slow-short",
                                                    "match": "prefix", "upstream": "slow",
                                                    "timeouts": {"read_ms": 300}})
        put_route(controller, "slow-long", {"host": HOST, "path": "/slow-long",
                                                   "match": "prefix", "upstream": "slow",
                                                   "timeouts": {"read_ms": 5000,
                                                                "connect_ms": 1000}})
        _wait(e, lambda: requests.get(e.url + "/slow-short/0", headers={"Host": HOST},
                                      timeout=5).status_code == 200, "slow routes")
        _wait(e, lambda: requests.get(e.url + "/slow-long/0", headers={"Host": HOST},
                                      timeout=5).status_code == 200, "slow routes")
        t0 = time.monotonic()
        r = requests.get(e.url + "/slow-short/1.5", headers={"Host": HOST}, timeout=10)
        took = time.monotonic() - t0
        assert r.status_code == 504
        assert took < 1.4, took      # cut at ~0.3 s, long before the backend answers
        r = requests.get(e.url + "/slow-long/1.0", headers={"Host": HOST}, timeout=10)
        assert r.status_code == 200 and r.text == "slow\n"
    finally:
        slow.shutdown()
        slow.server_close()


def _post(edge, path, data, headers=None):
    return requests.post(edge.url + path, data=data, headers=dict(headers or {}, Host=HOST),
                         timeout=10)


def test_max_body_bytes(controller, redis, edges, up):
    e = edges[0]
    _route(controller, e, "body", "/body", max_body_bytes=1000)
    _route(controller, e, "body0", "/nobody", max_body_bytes=0)
    _wait(e, lambda: _post(e, "/body", b"x" * 2000).status_code == 413, "body route")
    _wait(e, lambda: _post(e, "/nobody", b"x").status_code == 413, "body route")
    assert _post(e, "/body", b"x" * 1000).status_code == 200
    assert _post(e, "/body", b"").status_code == 200
    r = _post(e, "/body", b"x" * 1001)
    assert r.status_code == 413 and r.headers["X-Switchyard-Route"] == "body"
    assert _post(e, "/nobody", b"").status_code == 200
    assert e.get("/nobody", HOST).status_code == 200

    # chunked (a generator body): read and measured
    def chunks(n, size=100):
        for _ in range(n):
            yield b"y" * size
    r = _post(e, "/body", chunks(5))
    assert r.status_code == 200, r.text
    r = _post(e, "/body", chunks(11))
    assert r.status_code == 413, r.text
    r = _post(e, "/body", chunks(300, 1000))        # larger than nginx's body buffer
    assert r.status_code == 413, r.text
    # without an option, large bodies pass
    assert _post(e, "/plain", b"z" * 200000).status_code == 200


def test_rate_limit_429_with_retry_after(controller, redis, edges, up):
    e = edges[0]
    _route(controller, e, "rl", "/rl", rate_limit={"rps": 5, "burst": 5},
           response_headers={"set": {"X-Limited-Route": "rl"}})
    _route(controller, e, "rlh", "/rlh",
           rate_limit={"rps": 2, "burst": 0, "key": "header:X-Api-Key"})
    _wait(e, lambda: e.get("/rl", HOST).status_code in (200, 429), "rate route")
    _wait(e, lambda: e.get("/rlh", HOST).status_code in (200, 429), "rate route")
    time.sleep(2.5)   # let the buckets drain

    s = requests.Session()
    codes = []
    retry = set()
    t0 = time.monotonic()
    for _ in range(60):
        r = s.get(e.url + "/rl", headers={"Host": HOST}, timeout=5)
        codes.append(r.status_code)
        if r.status_code == 429:
            retry.add(r.headers.get("Retry-After"))
            assert r.headers["X-Switchyard-Route"] == "rl"
            assert r.headers["X-Limited-Route"] == "rl"   # response_headers on 429 too
    took = time.monotonic() - t0
    ok = codes.count(200)
    assert set(codes) == {200, 429}, codes
    # burst + 1 at once, then 5 per second; one extra per worker for the accepted race
    assert ok >= 6, codes
    assert ok <= 6 + 5 * took + 2, (ok, took, codes)
    assert retry == {"1"}, retry

    # header keys are limited apart; requests without the header share the "" key
    for key in ("alice", "bob"):
        r = s.get(e.url + "/rlh", headers={"Host": HOST, "X-Api-Key": key}, timeout=5)
        assert r.status_code == 200, key
    limited = [s.get(e.url + "/rlh", headers={"Host": HOST, "X-Api-Key": "alice"},
                     timeout=5).status_code for _ in range(5)]
    assert 429 in limited, limited


def _ipv6_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_allow_and_deny(controller, redis, edges, up):
    e = edges[0]
    _route(controller, e, "acl-allow", "/acl/allow", allow=["127.0.0.0/8"])
    _route(controller, e, "acl-other", "/acl/other", allow=["10.0.0.0/8", "2001:db8::/32"],
           response_headers={"set": {"X-Acl": "refused"}})
    _route(controller, e, "acl-deny", "/acl/deny", deny=["127.0.0.1"])
    _route(controller, e, "acl-both", "/acl/both", allow=["127.0.0.0/8"],
           deny=["127.0.0.0/30"])
    _route(controller, e, "acl-deny-other", "/acl/deny-other", deny=["192.0.2.0/24"])
    _wait(e, lambda: e.get("/acl/both", HOST).status_code == 403, "acl routes")
    assert e.get("/acl/allow", HOST).status_code == 200
    r = e.get("/acl/other", HOST)
    assert r.status_code == 403 and r.headers["X-Switchyard-Route"] == "acl-other"
    assert r.headers["X-Acl"] == "refused"
    assert e.get("/acl/deny", HOST).status_code == 403
    assert e.get("/acl/deny-other", HOST).status_code == 200

    if not _ipv6_available():
        pytest.skip("no IPv6 loopback")
    # an edge listening on [::1]: the client address is ::1
    port = free_port()
    prefix = os.path.join(os.path.dirname(e.prefix), "edge-v6")
    proc = Process("edge-v6", [BIN, "edge", "--listen", f"[::1]:{port}", "--redis",
                               redis.address, "--prefix", prefix, "--id", "edge-v6",
                               "--workers", "1", "--metrics-listen", f"[::1]:{free_port()}"],
                   log_dir=os.path.dirname(e.prefix))
    try:
        url = f"http://[::1]:{port}"

        def get(path):
            return requests.get(url + path, headers={"Host": HOST}, timeout=5).status_code
        wait_until(lambda: get("/acl/allow") == 403, 20, what="IPv6 edge")
        _route(controller, e, "acl-v6", "/acl/v6", allow=["::1"])
        _route(controller, e, "acl-v6-deny", "/acl/v6deny", deny=["::/0"])
        wait_until(lambda: get("/acl/v6") == 200, 5, what="IPv6 allow")
        assert get("/acl/allow") == 403          # ::1 is not in 127.0.0.0/8
        assert get("/acl/other") == 403
        assert get("/acl/deny") == 200           # 127.0.0.1 is not ::1
        assert get("/acl/v6deny") == 403
        assert e.get("/acl/v6", HOST).status_code == 403   # IPv4 client, IPv6-only allow
        assert e.get("/acl/v6deny", HOST).status_code == 200
    finally:
        proc.stop()


def test_redirect(controller, redis, edges, up):
    e = edges[0]
    put_route(controller, "redir", {"host": HOST, "path": "/moved", "match": "prefix",
                                           "redirect": {"to": "https://example.com/new"}})
    put_route(controller, "redir-keep", {
        "host": HOST, "path": "/keep-moved", "match": "prefix",
        "redirect": {"to": "https://example.com/base/", "status": 307, "keep_path": True},
        "response_headers": {"set": {"Cache-Control": "no-store"}}})
    put_route(controller, "redir-path", {"host": HOST, "path": "/rel", "match": "exact",
                                                "redirect": {"to": "/elsewhere", "status": 302}})
    _wait(e, lambda: e.get("/rel", HOST).status_code == 302, "redirect routes")
    r = e.get("/moved/a?b=1", HOST)
    assert r.status_code == 301 and r.headers["Location"] == "https://example.com/new"
    r = e.get("/keep-moved/a/b?c=1&d=%2F", HOST)
    assert r.status_code == 307
    assert r.headers["Location"] == "https://example.com/base/keep-moved/a/b?c=1&d=%2F"
    assert r.headers["Cache-Control"] == "no-store"
    r = e.get("/rel", HOST)
    assert r.headers["Location"] == "/elsewhere"


def test_broken_option_is_skipped_and_logged(controller, redis, edges, up):
    e = edges[0]
    _route(controller, e, "fine", "/fine", rate_limit={"rps": 1000})
    _wait(e, lambda: e.get("/fine", HOST).status_code == 200, "fine route")
    doc = {"id": "broken-opt", "host": HOST, "path": "/broken", "match": "prefix",
           "upstream": "opts", "priority": 0, "rate_limit": {"rps": 0}}
    redis.cli("FCALL", "sy_apply", "1", BASE + "version", "put", "route", "broken-opt",
              json.dumps(doc), "opts", "")
    wait_until(lambda: "skipping malformed route:broken-opt" in e.process.output(), 5,
               what="log line for the broken route")
    assert "rate_limit.rps" in e.process.output()
    r = e.get("/broken", HOST)   # left out: no other route of the host matches
    assert r.status_code == 404 and r.headers["X-Switchyard-Route"] == "none"
    assert e.get("/fine", HOST).status_code == 200
    assert e.process.alive()


def test_options_run_once_for_a_verified_https_upstream(controller, redis, workdir):
    """tls_verify upstreams take a second pass through access() (ngx.exec to
    @sy_https_verified): the rewrite must not apply twice, nor the rate limit count twice,
    and the response headers must still be set."""
    from test_tls import CA, _tls_backend
    ca = CA(os.path.join(workdir, "ca-opts"))
    backend = _tls_backend(ca.leaf("backend", ["backend.internal"])[2])
    e = Edge(redis, workdir, "edge-verify", workers=1, extra=["--upstream-ca", ca.cert])
    try:
        controller.ok("PUT", "/api/v1/upstreams/verified", {
            "endpoints": [{"address": f"127.0.0.1:{backend.port}"}], "scheme": "https",
            "tls_server_name": "backend.internal", "tls_verify": True})
        put_route(controller, "tv", {
            "host": HOST, "path": "/tv", "match": "prefix", "upstream": "verified",
            "rewrite": {"strip_prefix": True}, "rate_limit": {"rps": 1, "burst": 2},
            "response_headers": {"set": {"X-Verified-Route": "tv"}}})

        def get(path):
            return requests.get(e.url + path, headers={"Host": HOST}, timeout=5)
        wait_until(lambda: get("/tv/ready").status_code in (200, 429), 10, what="tv route")
        time.sleep(3.5)   # the bucket drains
        answers = [get("/tv/x/y?q=1") for _ in range(5)]
        codes = [r.status_code for r in answers]
        assert codes[:3] == [200, 200, 200], codes    # burst 2: three at once
        assert 429 in codes[3:], codes
        first = answers[0]
        assert first.json()["path"] == "/x/y?q=1"      # stripped once
        assert first.json()["sni"] == "backend.internal"
        assert all(r.headers.get("X-Verified-Route") == "tv" for r in answers)
    finally:
        e.stop()
        backend.stop()


def test_split_with_a_verified_https_upstream_is_drawn_once(controller, redis, workdir, up):
    """A split between a tls_verify upstream and a plain one: a request drawn for the
    verified upstream takes the second pass through @sy_https_verified, which must keep the
    first draw ($sy_pick) — a second draw could send it over HTTPS to the plain backend
    (502) — and must re-issue the split_sticky cookie the first pass queued."""
    from test_tls import CA, _tls_backend
    ca = CA(os.path.join(workdir, "ca-split"))
    backend = _tls_backend(ca.leaf("backend", ["backend.internal"])[2])
    e = Edge(redis, workdir, "edge-split-verify", workers=1, extra=["--upstream-ca", ca.cert])
    try:
        controller.ok("PUT", "/api/v1/upstreams/verified-split", {
            "endpoints": [{"address": f"127.0.0.1:{backend.port}"}], "scheme": "https",
            "tls_server_name": "backend.internal", "tls_verify": True})
        put_route(controller, "split-tv", {
            "host": HOST, "path": "/stv", "match": "prefix",
            "split": [{"upstream": "verified-split", "weight": 1}, {"upstream": up, "weight": 1}],
            "split_sticky": {"cookie": "stv", "ttl_s": 60}})

        def get(path):
            return requests.get(e.url + path, headers={"Host": HOST}, timeout=5)
        wait_until(lambda: get("/stv/ready").status_code == 200, 10, what="split-tv route")
        seen = {}
        for i in range(60):
            r = get(f"/stv/{i}")
            assert r.status_code == 200, (i, r.status_code, r.text)
            cookie = r.cookies.get("stv")
            assert cookie in ("verified-split", up), r.headers.get("Set-Cookie")
            tls = "sni" in r.json()
            assert tls == (cookie == "verified-split"), (cookie, r.json())
            seen[cookie] = seen.get(cookie, 0) + 1
        assert len(seen) == 2, seen   # 60 draws at 50/50 reach both
    finally:
        e.stop()
        backend.stop()
