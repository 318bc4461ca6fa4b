"""Requests through real nginx edges: host, path, priority and wildcard routing, the default
404, weighted balancing, and what the edge forwards to the backend."""
import collections
import http.client
import json

from harness import wait_until


def _until_served(edge, path, host, expected, timeout=5):
    wait_until(lambda: edge.backend(path, host) == expected, timeout,
               what=f"{host}{path} -> {expected} on {edge.id}")


def test_host_path_priority_and_wildcards(controller, edges, backends):
    c = controller
    for n, b in backends.items():
        c.upstream(f"rt-{n}", b.port)
    h = "shop.example.com"
    c.route("rt-exact", h, "/exact", "rt-b1", match="exact")
    c.route("rt-api", h, "/api", "rt-b2")
    c.route("rt-api-v2", h, "/api/v2", "rt-b3")
    c.route("rt-root", h, "/", "rt-b4")
    c.route("rt-wild", "*.example.com", "/", "rt-b3")
    c.route("rt-wild-eu", "*.eu.example.com", "/", "rt-b1")
    c.route("rt-only", "only.example.com", "/only", "rt-b2")
    last = c.route("rt-re-lo", "re.example.com", "^/items/[0-9]+$", "rt-b1", match="regex",
                   priority=1)
    c.route("rt-re-hi", "re.example.com", "^/items/", "rt-b2", match="regex", priority=5)
    c.route("rt-re-static", "re.example.com", "/static", "rt-b3")
    assert last["version"] > 0

    expect = [
        # exact, then longest prefix on any character boundary
        (h, "/exact", "b1"), (h, "/exact/more", "b4"), (h, "/exactly", "b4"),
        (h, "/api", "b2"), (h, "/apix", "b2"), (h, "/api/v", "b2"),
        (h, "/api/v2", "b3"), (h, "/api/v2/users?id=1", "b3"), (h, "/", "b4"),
        (h, "/other", "b4"),
        # wildcards: most specific first; any depth; never the bare parent
        ("a.example.com", "/x", "b3"), ("a.b.example.com", "/", "b3"),
        ("x.eu.example.com", "/", "b1"), ("y.z.eu.example.com", "/", "b1"),
        ("example.com", "/", 404),
        # an exact host wins over wildcards; no fall-through to a less specific host
        ("only.example.com", "/only", "b2"), ("only.example.com", "/other", 404),
        # host matching ignores case and port
        ("SHOP.Example.COM:8080", "/api", "b2"),
        # regex routes in priority order; prefix routes first
        ("re.example.com", "/items/42", "b2"), ("re.example.com", "/static/items/1", "b3"),
        ("re.example.com", "/nothing", 404),
        # unknown host: default backend
        ("unknown.test", "/", 404),
    ]
    for edge in edges:
        _until_served(edge, "/api/v2", h, "b3")
        got = [(host, path, edge.backend(path, host)) for host, path, _ in expect]
        assert got == expect, f"on {edge.id}"

    # priority breaks ties between routes with the same host, path and match
    c.route("rt-tie-lo", "tie.example.com", "/t", "rt-b1", priority=0)
    c.route("rt-tie-hi", "tie.example.com", "/t", "rt-b2", priority=10)
    for edge in edges:
        _until_served(edge, "/t", "tie.example.com", "b2")
    c.ok("DELETE", "/api/v1/routes/rt-tie-hi")
    for edge in edges:
        _until_served(edge, "/t", "tie.example.com", "b1")

    # a regex of lower priority answers once the higher one is gone
    c.ok("DELETE", "/api/v1/routes/rt-re-hi")
    for edge in edges:
        _until_served(edge, "/items/42", "re.example.com", "b1")
        assert edge.backend("/items/x", "re.example.com") == 404


def test_default_backend_is_404(edge):
    r = edge.get("/anything?x=1", host="nobody.invalid")
    assert r.status_code == 404
    assert "X-Backend" not in r.headers
    assert r.text.strip() != ""


def test_weighted_round_robin(controller, edge, backends):
    b1, b2 = backends["b1"], backends["b2"]
    controller.upstream("wrr", b1.port, b2.port, weights={b1.port: 3, b2.port: 1})
    controller.route("wrr", "wrr.example.com", "/", "wrr")
    wait_until(lambda: edge.backend("/", "wrr.example.com") in ("b1", "b2"), 5, what="wrr route")
    counts = collections.Counter(edge.backend("/", "wrr.example.com") for _ in range(400))
    assert set(counts) == {"b1", "b2"}, counts
    share = counts["b1"] / 400
    # smooth WRR is exact per worker cycle; two workers split the requests unevenly
    assert 0.70 <= share <= 0.80, counts


def test_forwarded_headers_path_and_query_as_sent(controller, edge, backends):
    controller.upstream("hdr", backends["b1"].port)
    controller.route("hdr", "hdr.example.com", "/", "hdr")
    wait_until(lambda: edge.backend("/", "hdr.example.com") == "b1", 5, what="hdr route")
    raw_path = "/a%20b/./c//d?x=1&y=%2F&z=%zz"
    # http.client sends the path byte for byte (requests would normalise it)
    conn = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=5)
    conn.request("GET", raw_path, headers={"Host": "hdr.example.com:1234",
                                           "X-Forwarded-For": "203.0.113.9"})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    assert r.status == 200, body
    seen = json.loads(body)
    assert seen["path"] == raw_path
    hdrs = seen["headers"]
    assert hdrs["host"] == "hdr.example.com:1234"
    assert hdrs["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert hdrs["x-real-ip"] == "127.0.0.1"
    assert hdrs["x-forwarded-proto"] == "http"
    assert hdrs["x-forwarded-host"] == "hdr.example.com"


def test_http10_without_host_header_sends_the_request_host(controller, edge, backends):
    """An HTTP/1.0 client may send no Host header; the host then comes from an absolute
    request URI. The edge routes by it and sends it upstream as Host (the cheap location
    sends the client's Host header as is, so such a request must take @sy_full)."""
    import socket
    controller.upstream("h10", backends["b1"].port)
    controller.route("h10", "h10.example.com", "/", "h10")
    wait_until(lambda: edge.backend("/", "h10.example.com") == "b1", 5, what="h10 route")
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as s:
        s.sendall(b"GET http://h10.example.com/x?q=1 HTTP/1.0\r\n\r\n")
        data = b""
        while True:   # HTTP/1.0: the edge closes after the answer
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"200", data[:300]
    seen = json.loads(body)
    assert seen["headers"]["host"] == "h10.example.com"
    assert seen["path"] == "/x?q=1"


def test_upstream_without_endpoints_answers_503(controller, edge):
    controller.ok("PUT", "/api/v1/upstreams/empty", {"endpoints": []})
    controller.route("empty", "empty.example.com", "/", "empty")
    wait_until(lambda: edge.get("/", "empty.example.com").status_code == 503, 5,
               what="503 for an upstream without endpoints")


def test_endpoint_joins_and_leaves(controller, edges, backends):
    b1, b2 = backends["b1"], backends["b2"]
    controller.upstream("join", b1.port)
    controller.route("join", "join.example.com", "/", "join")
    for e in edges:
        _until_served(e, "/", "join.example.com", "b1")
    controller.ok("PUT", f"/api/v1/upstreams/join/endpoints/127.0.0.1:{b2.port}", {"weight": 1})
    for e in edges:
        wait_until(lambda e=e: {e.backend("/", "join.example.com") for _ in range(6)} ==
                   {"b1", "b2"}, 5, what="new endpoint in rotation")
    controller.ok("DELETE", f"/api/v1/upstreams/join/endpoints/127.0.0.1:{b1.port}")
    for e in edges:
        wait_until(lambda e=e: {e.backend("/", "join.example.com") for _ in range(6)} == {"b2"},
                   5, what="removed endpoint out of rotation")
