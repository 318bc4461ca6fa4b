"""Split, canary and sticky split at the edge (docs/traffic-policies.md, route fields
`split`, `split_sticky`, `canary`), and a WebSocket across a route change. Real
redis-server, controller and nginx edges; backends name themselves in X-Backend."""
import time

import requests

from harness import (RequestLoop, WebSocketClient, WebSocketEcho, put_route, wait_until)

HOST = "split.example.com"


def _setup_upstreams(controller, backends):
    controller.upstream("blue", backends["b1"].port)
    controller.upstream("green", backends["b2"].port)


def _count(edge, host, path, n, headers=None, cookies=None):
    """X-Backend (or status) -> how many of n requests went there."""
    counts = {}
    s = requests.Session()
    for _ in range(n):
        r = s.get(edge.url + path, headers=dict(headers or {}, Host=host), cookies=cookies,
                  timeout=5, allow_redirects=False)
        k = r.headers.get("X-Backend") if r.status_code == 200 else r.status_code
        counts[k] = counts.get(k, 0) + 1
        s.cookies.clear()   # no cookie carried over between requests
    return counts


def test_canary_by_header_and_cookie(controller, edges, backends):
    _setup_upstreams(controller, backends)
    put_route(controller, "canary", {
        "host": HOST, "path": "/canary", "match": "prefix", "upstream": "blue",
        "canary": {"upstream": "green", "header": "X-Canary", "value": "1",
                   "cookie": "canary"}})
    for e in edges:
        wait_until(lambda e=e: e.get("/canary", HOST, headers={"X-Canary": "1"})
                   .headers.get("X-Backend") == "b2", 5, what="canary route on " + e.id)
    e = edges[0]
    assert _count(e, HOST, "/canary", 20) == {"b1": 20}
    assert _count(e, HOST, "/canary/x", 20, headers={"X-Canary": "1"}) == {"b2": 20}
    assert _count(e, HOST, "/canary", 10, headers={"X-Canary": "2"}) == {"b1": 10}
    assert _count(e, HOST, "/canary", 10, headers={"X-Canary": ""}) == {"b1": 10}
    assert _count(e, HOST, "/canary", 10, cookies={"canary": "1"}) == {"b2": 10}
    assert _count(e, HOST, "/canary", 10, cookies={"canary": "0"}) == {"b1": 10}

    # without "value": any non-empty header value goes to the canary
    put_route(controller, "canary", {
        "host": HOST, "path": "/canary", "match": "prefix", "upstream": "blue",
        "canary": {"upstream": "green", "header": "X-Beta"}})
    wait_until(lambda: e.get("/canary", HOST, headers={"X-Beta": "yes"})
               .headers.get("X-Backend") == "b2", 5, what="canary without value")
    assert _count(e, HOST, "/canary", 10, headers={"X-Beta": "anything"}) == {"b2": 10}
    assert _count(e, HOST, "/canary", 10, headers={"X-Canary": "1"}) == {"b1": 10}


def test_split_shares_over_1000_requests(controller, edges, backends):
    _setup_upstreams(controller, backends)
    put_route(controller, "split", {
        "host": HOST, "path": "/split", "match": "prefix",
        "split": [{"upstream": "blue", "weight": 90}, {"upstream": "green", "weight": 10}]})
    e = edges[0]
    wait_until(lambda: e.get("/split", HOST).status_code == 200, 5, what="split route")
    counts = _count(e, HOST, "/split", 1000)
    # binomial(1000, 0.1): mean 100, sd 9.5; 50..160 is more than 5 sd either way
    assert set(counts) <= {"b1", "b2"}, counts
    assert 50 <= counts.get("b2", 0) <= 160, counts
    assert counts["b1"] + counts.get("b2", 0) == 1000


def test_cutover_by_one_put_with_zero_failed_requests(controller, edges, backends):
    _setup_upstreams(controller, backends)
    route = {"host": HOST, "path": "/cut", "match": "prefix",
             "split": [{"upstream": "blue", "weight": 100}, {"upstream": "green", "weight": 0}]}
    put_route(controller, "cut", route)
    for e in edges:
        wait_until(lambda e=e: e.backend("/cut", HOST) == "b1", 5, what="100/0 split")
        assert _count(e, HOST, "/cut", 50) == {"b1": 50}

    loop = RequestLoop([(e, HOST, "/cut") for e in edges], max_requests=3000,
                       max_seconds=30).start()
    time.sleep(1.0)
    route["split"] = [{"upstream": "blue", "weight": 0}, {"upstream": "green", "weight": 100}]
    put_route(controller, "cut", route)
    for e in edges:
        wait_until(lambda e=e: e.backend("/cut", HOST) == "b2", 5, what="cutover on " + e.id)
    time.sleep(1.0)
    loop.stop()
    assert loop.sent > 50
    assert loop.failures == [], loop.failures[:5]
    for e in edges:
        assert _count(e, HOST, "/cut", 50) == {"b2": 50}


def _get(edge, path, host, cookies=None):
    """One request without a session: no cookie but the ones given."""
    return requests.get(edge.url + path, headers={"Host": host}, cookies=cookies, timeout=5,
                        allow_redirects=False)


def test_split_sticky(controller, edges, backends):
    _setup_upstreams(controller, backends)
    controller.upstream("red", backends["b3"].port)
    put_route(controller, "sticky", {
        "host": HOST, "path": "/sticky", "match": "prefix",
        "split": [{"upstream": "blue", "weight": 50}, {"upstream": "green", "weight": 50},
                  {"upstream": "red", "weight": 0}],
        "split_sticky": {"cookie": "sy_split", "ttl_s": 120}})
    e = edges[0]
    wait_until(lambda: _get(e, "/sticky", HOST).status_code == 200, 5, what="sticky route")

    # a first request chooses and gets the cookie naming the upstream it went to
    seen = {}
    for _ in range(40):
        r = _get(e, "/sticky", HOST)
        cookie = r.headers.get("Set-Cookie")
        assert cookie and cookie.startswith("sy_split="), r.headers
        assert "Max-Age=120" in cookie and "Path=/" in cookie
        name = cookie.split(";")[0].split("=", 1)[1]
        assert {"blue": "b1", "green": "b2"}[name] == r.headers["X-Backend"]
        seen[name] = seen.get(name, 0) + 1
    assert set(seen) == {"blue", "green"}, seen   # 50/50: both within 40 tries

    # requests carrying the cookie stay there and get no new cookie
    for name, backend in (("blue", "b1"), ("green", "b2")):
        for _ in range(20):
            r = _get(e, "/sticky", HOST, cookies={"sy_split": name})
            assert r.headers["X-Backend"] == backend
            assert "Set-Cookie" not in r.headers
    # a cookie naming a weight-0 upstream, or none of the split, chooses again
    for stale in ("red", "nope"):
        r = _get(e, "/sticky", HOST, cookies={"sy_split": stale})
        assert r.headers["X-Backend"] in ("b1", "b2")
        assert r.headers["Set-Cookie"].split(";")[0] in ("sy_split=blue", "sy_split=green")


def test_websocket_across_a_route_change(controller, edges, backends):
    ws1, ws2 = WebSocketEcho("ws1"), WebSocketEcho("ws2")
    try:
        controller.upstream("ws-one", ws1.port)
        controller.upstream("ws-two", ws2.port)
        # per-route timeouts shorter than the connection lives: it must stay open as long
        # as messages flow within read_ms
        route = {"host": "ws.example.com", "path": "/ws", "match": "prefix",
                 "upstream": "ws-one", "timeouts": {"read_ms": 2000, "send_ms": 2000}}
        put_route(controller, "ws", route)
        e = edges[0]

        def upgraded():
            c = WebSocketClient(e.port, "ws.example.com", "/ws")
            c.close()
            return True
        wait_until(upgraded, 5, what="websocket route")

        old = WebSocketClient(e.port, "ws.example.com", "/ws/chat")
        assert old.echo("hello") == "ws1:hello"

        route["upstream"] = "ws-two"
        put_route(controller, "ws", route)
        wait_until(lambda: e.backend("/ws", "ws.example.com") == 400 and
                   WebSocketClient(e.port, "ws.example.com", "/ws").echo("x") == "ws2:x",
                   5, what="new connections on the new upstream")

        new = WebSocketClient(e.port, "ws.example.com", "/ws/chat")
        assert new.echo("hi") == "ws2:hi"
        # the old connection keeps its upstream, both stay open for longer than read_ms
        # in total as long as messages flow within it
        started = time.monotonic()
        for i in range(10):
            assert old.echo(f"m{i}") == f"ws1:m{i}"
            assert new.echo(f"n{i}") == f"ws2:n{i}"
            time.sleep(0.5)
        assert time.monotonic() - started > 4.5
        new.close()
        # idle for longer than the route's read_ms: the edge closes it (its idle limit)
        time.sleep(3.5)
        assert old.echo("late") is None
        old.close()
    finally:
        ws1.close()
        ws2.close()
