"""Endpoint health at the edges, end to end: real redis-server, controller, `switchyard
prober` processes, two nginx edges (2 workers each) and loopback backends. The prober's
verdicts take endpoints out of rotation on every edge and bring them back; retries and
passive health hide a dead endpoint from clients before any prober notices; a prober whose
heartbeat expired is ignored; the all-down policies do what they say.

Timing bounds are generous (SLACK): they catch an edge that does not follow, not one that
is a little slow on a busy machine."""
import collections
import json
import socket
import time
from http.server import BaseHTTPRequestHandler

import pytest
import requests

from harness import BASE, KillableServer, Prober, RequestLoop, edge_status, wait_until

# fast checks: marked down within 200 x 2 + 100 = 500 ms, up again within 500 ms
CHECK = {"type": "http", "path": "/healthz", "interval_ms": 200, "timeout_ms": 100,
         "rise": 2, "fall": 2}
LEASE_MS = 1000
SLACK = 2.5      # seconds on top of every bound (edge sync, 1 s checks, a busy machine)
N = 40           # requests per probe of "who gets traffic"


def bound(n):
    """Seconds within which n probes decide (interval x n + timeout), plus slack."""
    return (CHECK["interval_ms"] * n + CHECK["timeout_ms"]) / 1000 + SLACK


# --- a backend whose health answer, normal answer and liveness are controlled apart ---


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body leave in one write (flushed after each request), so kill() lands
    # between answers, never inside one: a crash mid-answer truncates it and no proxy can
    # hide that, which is not what the kill tests are about
    wbufsize = 1 << 16

    def _answer(self):
        server = self.server
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        probe = self.path.startswith("/healthz")
        status = server.health_status if probe else server.status
        if not probe:
            with server.lock:
                server.hits += 1
                server.methods[self.command] += 1
        body = json.dumps({"backend": server.name, "path": self.path}).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", server.name)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, fmt, *args):
        pass


class HealthBackend(KillableServer):
    """`status` answers requests, `health_status` answers /healthz; `hits` counts the
    requests that are not probes. kill(): harness.KillableServer (a process dying)."""

    def __init__(self, name):
        super().__init__(_Handler)
        self.name = name
        self.status = 200
        self.health_status = 200
        self.hits = 0
        self.methods = collections.Counter()


@pytest.fixture
def make_backend():
    made = []

    def make(name):
        b = HealthBackend(name)
        made.append(b)
        return b
    yield make
    for b in made:
        b.kill()


@pytest.fixture
def probers(redis, workdir):
    """Start probers with start(name); every one still running is stopped afterwards."""
    started = []

    def start(name):
        p = Prober(redis, workdir, name, lease_ms=LEASE_MS)
        started.append(p)
        return p
    yield start
    for p in started:
        p.stop()


@pytest.fixture
def prober(probers):
    p = probers("p-edge")
    wait_until(p.holds_lease, 2 * LEASE_MS / 1000 + SLACK, what="p-edge holds the lease")
    return p


def put_upstream(controller, name, backends, **fields):
    body = {"endpoints": [{"address": b.address} for b in backends]}
    body.update(fields)
    return controller.ok("PUT", f"/api/v1/upstreams/{name}", body)


def route_to(controller, name, edges):
    """A route <name>.eh.test/ -> upstream <name>, applied on every edge."""
    host = f"{name}.eh.test"
    r = controller.ok("PUT", f"/api/v1/routes/{name}",
                      {"host": host, "path": "/", "match": "prefix", "upstream": name})
    for e in edges:
        wait_until(lambda: edge_status(e)["version"] >= r["version"], 10,
                   what=f"{e.id} at version {r['version']}")
    return host


def served_by(edge, host, n=N, method="GET", timeout=5):
    """Counter of X-Backend (or the status code when no backend answered) over n requests."""
    got = collections.Counter()
    s = requests.Session()
    for i in range(n):
        r = s.request(method, edge.url + f"/x?{i}", headers={"Host": host}, timeout=timeout)
        got[r.headers.get("X-Backend") if r.status_code == 200 else r.status_code] += 1
    return got


def down_on(edge, upstream):
    """The addresses the edge holds as marked down by the prober."""
    return set((edge_status(edge)["health"]["down"].get(upstream) or "").split())


def state_of(redis, upstream, address):
    raw = redis.cli("HGET", BASE + "health:" + upstream, address, raw=True)
    return json.loads(raw)["state"] if raw else None


def out_on(edge, upstream, address):
    """The edge holds the prober's down verdict for address, and applies it (fresh)."""
    health = edge_status(edge)["health"]
    return health["prober_fresh"] and address in (health["down"].get(upstream) or "").split()


def wait_down_everywhere(edges, upstream, address, timeout):
    t0 = time.monotonic()
    for e in edges:
        wait_until(lambda: out_on(e, upstream, address),
                   max(0.5, timeout - (time.monotonic() - t0)), what=f"{address} down on {e.id}")
    return time.monotonic() - t0


def fresh_on(edge):
    return edge_status(edge)["health"]["prober_fresh"]


# --- the prober's verdicts ---------------------------------------------------------------


def test_unhealthy_endpoint_leaves_every_edge_and_comes_back(controller, edges, prober,
                                                             make_backend, redis):
    a, b = make_backend("a"), make_backend("b")
    put_upstream(controller, "eh-active", [a, b], health_check=CHECK)
    host = route_to(controller, "eh-active", edges)
    wait_until(lambda: state_of(redis, "eh-active", a.address) == "up", bound(2) + 2,
               what="a up")
    for e in edges:
        wait_until(lambda: fresh_on(e), 2 * LEASE_MS / 1000 + SLACK, what=f"{e.id} fresh")
        assert set(served_by(e, host)) == {"a", "b"}

    a.health_status = 500   # probes fail; real requests would still be answered
    took = wait_down_everywhere(edges, "eh-active", a.address, bound(CHECK["fall"]))
    print(f"marked down on both edges {took * 1000:.0f} ms after /healthz turned 500 "
          f"(bound {bound(2) * 1000:.0f} ms with slack)")
    hits = a.hits
    for e in edges:
        assert served_by(e, host) == {"b": N}, f"{e.id} still sends to a"
    assert a.hits == hits

    a.health_status = 200
    t0 = time.monotonic()
    for e in edges:
        wait_until(lambda: a.address not in down_on(e, "eh-active"),
                   bound(CHECK["rise"]), what=f"a back on {e.id}")
    print(f"back on both edges after {(time.monotonic() - t0) * 1000:.0f} ms")
    for e in edges:
        assert served_by(e, host)["a"] == N // 2   # smooth WRR over both again


def test_hanging_endpoint_is_marked_down_and_gets_nothing(controller, edges, prober,
                                                          make_backend, redis):
    # accepts connections (the kernel backlog) and never answers: a request sent there
    # would wait for proxy_read_timeout (60 s); the prober's timeout takes it out first
    hang = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hang.bind(("127.0.0.1", 0))
    hang.listen(64)
    try:
        b = make_backend("b")
        hang_addr = f"127.0.0.1:{hang.getsockname()[1]}"
        controller.ok("PUT", "/api/v1/upstreams/eh-hang", {
            "endpoints": [{"address": b.address}, {"address": hang_addr}],
            "health_check": CHECK})
        wait_down_everywhere(edges, "eh-hang", hang_addr, bound(CHECK["fall"]))
        rec = json.loads(redis.cli("HGET", BASE + "health:eh-hang", hang_addr, raw=True))
        assert rec["reason"] == "timeout", rec
        host = route_to(controller, "eh-hang", edges)
        for e in edges:
            t0 = time.monotonic()
            assert served_by(e, host, timeout=3) == {"b": N}
            assert time.monotonic() - t0 < 5
    finally:
        hang.close()


# --- retries and passive health: a dead endpoint costs clients nothing ---------------------


@pytest.mark.parametrize("with_prober", [False, True], ids=["passive-only", "with-prober"])
def test_killed_endpoint_causes_no_client_errors(controller, edges, probers, make_backend,
                                                 redis, with_prober):
    name = "eh-kill-" + ("p" if with_prober else "n")
    a, b = make_backend("a"), make_backend("b")
    fields = {"health_check": CHECK} if with_prober else {}
    put_upstream(controller, name, [a, b], **fields)
    host = route_to(controller, name, edges)
    if with_prober:
        p = probers("p-kill")
        wait_until(p.holds_lease, 2 * LEASE_MS / 1000 + SLACK, what="p-kill active")
        wait_until(lambda: state_of(redis, name, a.address) == "up", bound(2) + 2, what="a up")
    for e in edges:
        assert set(served_by(e, host, n=10)) == {"a", "b"}

    loop = RequestLoop([(e, host, "/k") for e in edges], max_requests=400, max_seconds=30,
                       pause=0.005).start()
    wait_until(lambda: loop.sent >= 100, 10, what="100 requests sent")
    a.kill()   # connection refused from now on; kept-alive connections are reset
    wait_until(lambda: loop.sent >= 400 or not loop._thread.is_alive(), 30, what="400 requests")
    loop.stop()
    assert loop.sent == 400
    assert loop.failures == [], loop.failures[:5]
    if not with_prober:
        for e in edges:
            # each edge took a out of rotation itself, on all its workers
            assert f"{name} {a.address}" in edge_status(e)["health"]["passive_out"]
            assert served_by(e, host, n=10) == {"b": 10}
    if with_prober:
        wait_down_everywhere(edges, name, a.address, bound(CHECK["fall"]))
        assert json.loads(redis.cli("HGET", BASE + f"health:{name}", a.address,
                                    raw=True))["reason"] == "refused"


def test_retries_never_repeat_an_endpoint_and_skip_non_idempotent(controller, edges,
                                                                  make_backend):
    edge = edges[0]
    bad1, bad2, good = make_backend("bad1"), make_backend("bad2"), make_backend("good")
    bad1.status = bad2.status = 502
    # max_fails 0: passive health off, so every request meets the failing endpoints
    put_upstream(controller, "eh-retry", [bad1, bad2, good], retries=2,
                 passive={"max_fails": 0, "fail_timeout_ms": 1000})
    host = route_to(controller, "eh-retry", edges)
    got = served_by(edge, host, n=30)
    assert got == {"good": 30}, got            # two retries: always reaches good
    assert good.hits == 30
    # no endpoint twice in one request: at most 3 attempts per request, good once
    assert bad1.hits + bad2.hits <= 2 * 30

    # one retry: a request that meets both bad ones answers their 502
    put_upstream(controller, "eh-retry", [bad1, bad2, good], retries=1,
                 passive={"max_fails": 0, "fail_timeout_ms": 1000})
    wait_until(lambda: served_by(edge, host, n=6)[502] > 0, 5, what="502 with one retry")

    # POST is not retried once sent (nginx: non-idempotent), so it may see the 502 ...
    put_upstream(controller, "eh-retry", [bad1, bad2, good], retries=2,
                 passive={"max_fails": 0, "fail_timeout_ms": 1000})
    before = bad1.hits + bad2.hits + good.hits
    posts = served_by(edge, host, n=30, method="POST")
    assert posts[502] > 0 and posts["good"] > 0, posts
    assert bad1.hits + bad2.hits + good.hits - before == 30   # one attempt each
    # ... but a POST whose connect failed was never sent, and is retried
    bad1.kill()
    bad2.kill()
    assert served_by(edge, host, n=20, method="POST") == {"good": 20}


def test_passive_health_alone(controller, edges, make_backend):
    edge = edges[0]
    bad, good = make_backend("bad"), make_backend("good")
    bad.status = 503
    fail_timeout = 5.0
    put_upstream(controller, "eh-passive", [bad, good], retries=1,
                 passive={"max_fails": 2, "fail_timeout_ms": int(fail_timeout * 1000)})
    host = route_to(controller, "eh-passive", edges)
    t0 = time.monotonic()
    got = served_by(edge, host, n=40)
    assert got == {"good": 40}, got                       # retried, never seen by clients
    # max_fails failures take it out on every worker of the edge (the other worker learns
    # within 100 ms, so a request or two may still try it)
    assert 2 <= bad.hits <= 5, bad.hits
    # the status may come from the other worker, which reads the marks every 100 ms
    wait_until(lambda: f"eh-passive {bad.address}" in edge_status(edge)["health"]["passive_out"],
               2, what="bad in passive_out")
    hits = bad.hits
    time.sleep(0.3)
    served_by(edge, host, n=20)
    if time.monotonic() - t0 < fail_timeout - 0.2:        # (a slow machine may be past it)
        assert bad.hits == hits, "out of rotation for fail_timeout_ms"
    # after fail_timeout_ms it is tried again
    wait_until(lambda: served_by(edge, host, n=4) and bad.hits > hits, fail_timeout + SLACK,
               what="bad tried again after fail_timeout_ms")
    took = time.monotonic() - t0
    print(f"tried again {took:.1f} s after the first failure (fail_timeout {fail_timeout} s)")
    assert took >= fail_timeout - 0.5

    # max_fails 0: passive health off, every other request tries it (and is retried)
    put_upstream(controller, "eh-passive", [bad, good], retries=1,
                 passive={"max_fails": 0, "fail_timeout_ms": 3000})
    time.sleep(0.3)
    hits = bad.hits
    assert served_by(edge, host, n=20) == {"good": 20}
    assert bad.hits - hits >= 8


def test_passive_counts_the_last_attempt_like_nginx(controller, edges, make_backend):
    """With retries 0 every attempt is the last one: a dead endpoint's connect errors reach
    the client as nginx's own 502, and each one counts (error_page -> @sy_failed), so
    max_fails of them take it out; a 503 the endpoint sends itself is passed through and,
    as with nginx's max_fails, counts only when it is retried."""
    edge = edges[0]
    dead, good = make_backend("dead"), make_backend("good")
    dead.kill()   # connection refused from now on
    put_upstream(controller, "eh-last", [dead, good], retries=0,
                 passive={"max_fails": 2, "fail_timeout_ms": 30000})
    host = route_to(controller, "eh-last", edges)
    s = requests.Session()
    failures = []
    for i in range(40):
        r = s.get(edge.url + f"/x?{i}", headers={"Host": host}, timeout=5)
        if r.status_code != 200:
            failures.append(r)
    # 2 per worker at most before the mark reaches every worker, and at least max_fails
    assert 2 <= len(failures) <= 6, [f.status_code for f in failures]
    for r in failures:
        assert r.status_code == 502
        assert r.text == "bad gateway\n"
        assert r.headers["X-Switchyard-Route"] == "eh-last"
    wait_until(lambda: f"eh-last {dead.address}" in edge_status(edge)["health"]["passive_out"],
               2, what="dead in passive_out")
    time.sleep(0.3)   # the edge's other worker reads the marks every 100 ms
    assert served_by(edge, host, n=20) == {"good": 20}

    # the endpoint's own 503 on the last attempt: passed through unchanged, not counted
    bad = make_backend("bad")
    bad.status = 503
    put_upstream(controller, "eh-last", [bad], retries=0,
                 passive={"max_fails": 1, "fail_timeout_ms": 30000})
    time.sleep(0.3)
    got = served_by(edge, host, n=10)
    assert got == {503: 10}, got
    assert bad.hits == 10
    assert f"eh-last {bad.address}" not in edge_status(edge)["health"]["passive_out"]


# --- prober availability ------------------------------------------------------------------


def test_prober_failover_keeps_edges_correct(controller, edges, probers, make_backend, redis):
    a, b = make_backend("a"), make_backend("b")
    put_upstream(controller, "eh-fo", [a, b], health_check=CHECK)
    host = route_to(controller, "eh-fo", edges)
    pa = probers("p-fo-a")
    wait_until(pa.holds_lease, 2 * LEASE_MS / 1000 + SLACK, what="p-fo-a active")
    pb = probers("p-fo-b")
    a.health_status = 500
    wait_down_everywhere(edges, "eh-fo", a.address, bound(2) + 2)
    for e in edges:
        wait_until(lambda: fresh_on(e), 2 + SLACK, what=f"{e.id} has seen p-fo-a's heartbeat")
        assert served_by(e, host, n=10) == {"b": 10}
    hits = a.hits

    # the active prober dies; its verdicts stay trusted while the standby takes over
    loop = RequestLoop([(e, host, "/fo") for e in edges], max_requests=5000, max_seconds=30,
                       pause=0.01).start()
    pa.kill()
    t0 = time.monotonic()
    wait_until(pb.holds_lease, 2 * LEASE_MS / 1000 + SLACK, what="p-fo-b takes over")
    print(f"standby active {(time.monotonic() - t0) * 1000:.0f} ms after SIGKILL")
    time.sleep(2 * LEASE_MS / 1000 + 2)   # past the old heartbeat's expiry and the grace
    loop.stop()
    assert loop.failures == [], loop.failures[:5]
    assert a.hits == hits, "the down endpoint got traffic during the failover"
    for e in edges:
        assert fresh_on(e)

    # verdicts keep applying, now from the standby
    a.health_status = 200
    for e in edges:
        wait_until(lambda: a.address not in down_on(e, "eh-fo"), bound(2), what="a back")
    b.health_status = 500
    wait_down_everywhere(edges, "eh-fo", b.address, bound(2))
    assert json.loads(redis.cli("HGET", BASE + "health:eh-fo", b.address,
                                raw=True))["prober"] == "p-fo-b"
    for e in edges:
        assert served_by(e, host) == {"a": N}


def test_stale_heartbeat_is_ignored(controller, edges, probers, make_backend, redis):
    a, b = make_backend("a"), make_backend("b")
    put_upstream(controller, "eh-stale", [a, b], health_check=CHECK)
    host = route_to(controller, "eh-stale", edges)
    p = probers("p-stale")
    wait_until(p.holds_lease, 2 * LEASE_MS / 1000 + SLACK, what="p-stale active")
    a.health_status = 500
    wait_down_everywhere(edges, "eh-stale", a.address, bound(2) + 2)
    for e in edges:
        assert served_by(e, host) == {"b": N}

    p.kill()   # every prober gone: the record says down, nobody keeps it fresh
    t0 = time.monotonic()
    for e in edges:
        wait_until(lambda: not fresh_on(e), 2 * LEASE_MS / 1000 + 2 + SLACK,
                   what=f"{e.id} treats the verdicts as stale")
    print(f"stale on both edges {(time.monotonic() - t0) * 1000:.0f} ms after SIGKILL "
          f"(bound: heartbeat TTL {LEASE_MS} ms + grace {LEASE_MS} ms + 1 s + 1 s checks)")
    assert state_of(redis, "eh-stale", a.address) == "down"   # still in Redis
    for e in edges:
        # a answers real requests: passive health keeps it
        assert served_by(e, host) == {"a": N // 2, "b": N // 2}
        assert "ignoring the prober's verdicts" in e.process.output()

    # a prober again: fresh, and its (stored) verdict applies again
    p2 = probers("p-stale-2")
    wait_until(p2.holds_lease, 2 * LEASE_MS / 1000 + SLACK, what="p-stale-2 active")
    for e in edges:
        wait_until(lambda: fresh_on(e), 2 + SLACK, what=f"{e.id} fresh again")
        wait_until(lambda: served_by(e, host, n=10) == {"b": 10}, bound(2), what="a out again")


# --- every endpoint down -------------------------------------------------------------------


def test_all_down_policies(controller, edges, prober, make_backend, redis):
    a, b = make_backend("a"), make_backend("b")
    a.health_status = b.health_status = 500
    put_upstream(controller, "eh-all", [a, b], health_check=CHECK)
    host = route_to(controller, "eh-all", edges)
    for e in edges:
        wait_until(lambda: down_on(e, "eh-all") == {a.address, b.address} and fresh_on(e),
                   bound(2) + 2, what=f"both down on {e.id}")
    # fail_open (the default): every endpoint gets traffic anyway, and the edge says so
    for e in edges:
        assert served_by(e, host) == {"a": N // 2, "b": N // 2}
        assert "all 2 endpoints are down" in e.process.output()
        assert "eh-all" in edge_status(e)["health"]["all_down"]

    r = put_upstream(controller, "eh-all", [a, b], health_check=CHECK, on_all_down="503")
    for e in edges:
        wait_until(lambda: edge_status(e)["version"] >= r["version"], 5, what="503 policy")
    hits = a.hits + b.hits
    for e in edges:
        t0 = time.monotonic()
        resp = e.get("/", host)
        assert resp.status_code == 503 and resp.text == "all endpoints down\n"
        assert resp.headers["X-Switchyard-Route"] == "eh-all"
        assert time.monotonic() - t0 < 0.5
        assert served_by(e, host, n=10) == {503: 10}
    assert a.hits + b.hits == hits

    # one comes back: served again, by that one only
    b.health_status = 200
    for e in edges:
        wait_until(lambda: e.backend("/", host) == "b", bound(2), what=f"b back on {e.id}")
        assert served_by(e, host, n=10) == {"b": 10}
