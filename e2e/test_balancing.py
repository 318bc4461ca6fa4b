"""Balancing algorithms end to end (docs/traffic-policies.md, "Upstream fields"): real
redis-server, controller, two nginx edges (2 workers each) and loopback backends.

round_robin honours weights; hash / ip_hash send one key to one endpoint on every edge and
spread many keys; adding an endpoint to a hash upstream moves about 1/(n+1) of the keys,
all of them to the new endpoint; least_conn sends fewer requests to a slow endpoint under
concurrency and its counts return to zero; sticky issues, honours and reissues its cookie
(endpoint removed, endpoint dead); the algorithm changes live without a failed request.

Shares are checked with wide margins (a busy 2-core machine, 2 workers per edge)."""
import collections
import http.client
import json
import os
import re
import threading
import time

import pytest
import requests

from harness import (BASE, RequestLoop, apply_raw_upstream, edge_status, start_controlled_backend,
                     wait_until)

# SY_BALANCING_RAW=1 writes upstream documents with FCALL sy_apply instead of the API
# (for a controller that does not know the balancing fields yet)
RAW = os.environ.get("SY_BALANCING_RAW") == "1"


@pytest.fixture(scope="module")
def pool():
    bs = [start_controlled_backend(f"p{i}") for i in range(1, 6)]
    yield bs
    for b in bs:
        b.kill()


def put_upstream(controller, redis, name, backends, weights=None, **fields):
    eps = [{"address": b.address, "weight": (weights or {}).get(b.name, 1)} for b in backends]
    body = {"endpoints": eps, **fields}
    if RAW:
        apply_raw_upstream(redis, {"name": name, **body})
    else:
        controller.ok("PUT", f"/api/v1/upstreams/{name}", body)


def synced(edges, redis):
    """Every edge applied what Redis has (its shm; workers follow on their next request)."""
    v = redis.version()
    for e in edges:
        wait_until(lambda e=e: edge_status(e).get("version") == v, 10,
                   what=f"{e.id} at version {v}")


def setup(controller, redis, edges, name, backends, **kw):
    put_upstream(controller, redis, name, backends, **kw)
    controller.route(name, f"{name}.bal.test", "/", name)
    synced(edges, redis)


def backend_of(r):
    assert r.status_code == 200, f"{r.status_code} {r.text[:200]}"
    return r.headers["X-Backend"]


def test_round_robin_honours_weights(controller, redis, edges, pool):
    setup(controller, redis, edges, "rr", pool[:3], weights={"p1": 1, "p2": 2, "p3": 5},
          balance="round_robin")
    count = collections.Counter()
    for e in edges:
        for _ in range(160):
            count[backend_of(e.get("/", "rr.bal.test"))] += 1
    total = sum(count.values())
    for name, w in (("p1", 1), ("p2", 2), ("p3", 5)):
        share = count[name] / total
        assert abs(share - w / 8) < 0.06, (name, share, count)


def test_hash_on_header_is_sticky_everywhere_and_spreads(controller, redis, edges, pool):
    setup(controller, redis, edges, "hh", pool[:4], balance="hash", hash_on="header:X-User")
    seen = {}
    for i in range(200):
        user = f"user-{i}"
        got = {backend_of(e.get("/", "hh.bal.test", headers={"X-User": user}))
               for e in edges for _ in range(2)}
        assert len(got) == 1, (user, got)   # both edges, both workers, every time
        seen[user] = got.pop()
    spread = collections.Counter(seen.values())
    assert len(spread) == 4 and min(spread.values()) >= 200 * 0.1, spread
    # no header: the empty string, one endpoint
    assert len({backend_of(edges[0].get("/", "hh.bal.test")) for _ in range(10)}) == 1


def test_hash_remaps_about_one_share_when_an_endpoint_is_added(controller, redis, edges, pool):
    setup(controller, redis, edges, "hr", pool[:4], balance="hash", hash_on="cookie:sid")
    keys = [f"s{i}" for i in range(400)]
    edge = edges[0]

    def assignment():
        return {k: backend_of(edge.get("/", "hr.bal.test", cookies={"sid": k})) for k in keys}

    before = assignment()
    put_upstream(controller, redis, "hr", pool[:5], balance="hash", hash_on="cookie:sid")
    synced(edges, redis)
    after = assignment()
    moved = [k for k in keys if before[k] != after[k]]
    assert all(after[k] == "p5" for k in moved), [(k, before[k], after[k]) for k in moved][:5]
    share = len(moved) / len(keys)
    assert 0.1 < share < 0.32, share   # about 1/5
    # and back: every key returns where it was
    put_upstream(controller, redis, "hr", pool[:4], balance="hash", hash_on="cookie:sid")
    synced(edges, redis)
    assert assignment() == before


def _get_from(edge, host, source_ip):
    conn = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=5,
                                      source_address=(source_ip, 0))
    try:
        conn.request("GET", "/", headers={"Host": host})
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.status
        return r.getheader("X-Backend")
    finally:
        conn.close()


def test_ip_hash_by_client_address(controller, redis, edges, pool):
    setup(controller, redis, edges, "ih", pool[:4], balance="ip_hash")
    seen = {}
    for i in range(2, 62):
        ip = f"127.0.0.{i}"
        got = {_get_from(e, "ih.bal.test", ip) for e in edges for _ in range(2)}
        assert len(got) == 1, (ip, got)
        seen[ip] = got.pop()
    spread = collections.Counter(seen.values())
    # one /24: nginx's ip_hash would send all of them to one endpoint
    assert len(spread) >= 3, spread


def test_least_conn_spares_a_slow_endpoint(controller, redis, edges):
    slow = start_controlled_backend("slow", delay=0.3)
    fast = start_controlled_backend("fast")
    try:
        setup(controller, redis, edges, "lc", [slow, fast], balance="least_conn")
        edge = edges[0]
        count = collections.Counter()
        errors = []
        lock = threading.Lock()
        deadline = time.monotonic() + 4

        def worker():
            s = requests.Session()
            n = 0
            while time.monotonic() < deadline and n < 2000:
                n += 1
                try:
                    r = s.get(edge.url + "/", headers={"Host": "lc.bal.test"}, timeout=5)
                    with lock:
                        count[r.headers.get("X-Backend", r.status_code)] += 1
                except requests.RequestException as e:
                    errors.append(repr(e))

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        total = count["slow"] + count["fast"]
        assert not errors and total == sum(count.values()), (errors[:3], count)
        # round robin would give the slow one half; least_conn gives it about 1 in 8 of the
        # concurrent requests' time, i.e. a few percent of the requests
        assert count["slow"] / total < 0.2, count
        # the counts went back to zero: idle, the two alternate again (a leaked count would
        # keep every request on the other one)
        idle = collections.Counter(backend_of(edge.get("/", "lc.bal.test")) for _ in range(20))
        assert idle["slow"] >= 5 and idle["fast"] >= 5, idle
    finally:
        slow.kill()
        fast.kill()


COOKIE = re.compile(r"^aff=([0-9a-f]{8}); Path=/; Max-Age=600; HttpOnly$")


def _sticky_get(edge, cookie=None):
    r = requests.get(edge.url + "/", headers={"Host": "st.bal.test"},
                     cookies={"aff": cookie} if cookie else None, timeout=5)
    set_cookie = r.headers.get("Set-Cookie")
    m = COOKIE.match(set_cookie) if set_cookie else None
    assert set_cookie is None or m, set_cookie
    return backend_of(r), (m.group(1) if m else None)


def test_sticky_cookie_issued_honoured_and_reissued(controller, redis, edges):
    bs = [start_controlled_backend(f"s{i}") for i in range(1, 4)]
    try:
        fields = {"balance": "sticky", "sticky": {"cookie": "aff", "ttl_s": 600}}
        setup(controller, redis, edges, "st", bs, retries=2, **fields)
        # without the cookie: round robin, and a cookie for the endpoint that answered
        first = [_sticky_get(edges[0]) for _ in range(6)]
        assert all(c for _, c in first)
        assert len({b for b, _ in first}) == 3
        ids = {}
        for b, c in first:
            assert ids.setdefault(b, c) == c     # one id per endpoint
            assert bs[0].address not in c
        pinned, cookie = first[0]
        # with it: the same endpoint on every edge and worker, no new cookie
        for e in edges:
            for _ in range(10):
                assert _sticky_get(e, cookie) == (pinned, None)
        # an unknown id: balanced again, cookie reissued
        b, c = _sticky_get(edges[0], "00000000")
        assert c == ids[b]

        # the pinned endpoint leaves the upstream: balanced again and re-pinned
        rest = [b for b in bs if b.name != pinned]
        put_upstream(controller, redis, "st", rest, retries=2, **fields)
        synced(edges, redis)
        moved, new_cookie = _sticky_get(edges[0], cookie)
        assert moved != pinned and new_cookie == ids[moved]
        for _ in range(5):
            assert _sticky_get(edges[1], new_cookie) == (moved, None)

        # the new one dies: the request is retried on the other endpoint (passive health
        # counts the failure) and the cookie follows the endpoint that answered
        dead = next(b for b in bs if b.name == moved)
        dead.kill()
        survivor, again = _sticky_get(edges[0], new_cookie)
        assert survivor not in (pinned, moved) and again == ids[survivor]
        for _ in range(5):
            assert _sticky_get(edges[0], again) == (survivor, None)
    finally:
        for b in bs:
            b.kill()


def test_algorithm_changes_live_without_errors(controller, redis, edges, pool):
    setup(controller, redis, edges, "live", pool[:3], balance="round_robin")
    loop = RequestLoop([(e, "live.bal.test", "/") for e in edges], max_seconds=30,
                       pause=0.002).start()
    try:
        for fields in ({"balance": "least_conn"}, {"balance": "ip_hash"},
                       {"balance": "hash", "hash_on": "uri"},
                       {"balance": "hash", "hash_on": "header:X-A"},
                       {"balance": "sticky"}, {"balance": "round_robin"}):
            put_upstream(controller, redis, "live", pool[:3], **fields)
            time.sleep(0.3)
        synced(edges, redis)
        time.sleep(0.3)
    finally:
        loop.stop()
    assert loop.sent > 100
    assert loop.failures == [], loop.failures[:5]
    for e in edges:
        log = e.process.output()
        for bad in ("runtime error", "failed to build", "entry thread aborted"):
            assert bad not in log, log[-3000:]


def test_the_api_refuses_bad_balancing_fields(controller):
    if RAW:
        pytest.skip("SY_BALANCING_RAW=1: the controller is bypassed")
    for body, field in (({"balance": "hash"}, "hash_on"),
                        ({"balance": "sticky", "sticky": {"cookie": "a;b"}}, "sticky.cookie"),
                        ({"balance": "round_robin", "hash_on": "uri"}, "hash_on")):
        r = controller.put("/api/v1/upstreams/bad", {"endpoints": [], **body})
        assert r.status_code == 422, (body, r.status_code, r.text)
        assert field in r.text, r.text


def test_a_bad_document_in_redis_is_skipped_by_the_edges(controller, redis, edges, pool):
    setup(controller, redis, edges, "ok", pool[:2], balance="ip_hash")
    apply_raw_upstream(redis, {"name": "broken", "balance": "hash",
                               "endpoints": [{"address": pool[0].address}]})
    apply_raw_upstream(redis, {"name": "future", "balance": "fastest",
                               "endpoints": [{"address": pool[0].address}]})
    redis.cli("FCALL", "sy_apply", "1", BASE + "version", "put", "route", "future",
              json.dumps({"id": "future", "host": "future.bal.test", "path": "/",
                          "match": "prefix", "upstream": "future"}), "future", "")
    synced(edges, redis)
    for e in edges:
        assert backend_of(e.get("/", "ok.bal.test")) in ("p1", "p2")
        assert backend_of(e.get("/", "future.bal.test")) == "p1"   # unknown: round_robin
        wait_until(lambda e=e: "skipping malformed upstream:broken" in e.process.output()
                   and "unknown balance \"fastest\"" in e.process.output(), 5,
                   what="the edge logs the broken and the unknown upstream")


def test_route_timeouts_apply_to_every_attempt(controller, redis, edges):
    """balance() applies the route's timeouts (ngx.ctx.sy_timeouts) on each attempt."""
    slow = [start_controlled_backend(f"t{i}", delay=1.5) for i in (1, 2)]
    try:
        put_upstream(controller, redis, "to", slow, retries=1, balance="least_conn",
                     passive={"max_fails": 0})
        route = {"id": "to", "host": "to.bal.test", "path": "/", "match": "prefix",
                 "upstream": "to", "timeouts": {"read_ms": 300}}
        if RAW:
            redis.cli("FCALL", "sy_apply", "1", BASE + "version", "put", "route", "to",
                      json.dumps(route), "to", "")
        else:
            controller.ok("PUT", "/api/v1/routes/to", {k: v for k, v in route.items() if k != "id"})
        controller.route("to-plain", "to-plain.bal.test", "/", "to")
        synced(edges, redis)
        t0 = time.monotonic()
        r = edges[0].get("/", "to.bal.test")
        took = time.monotonic() - t0
        assert r.status_code == 504, (r.status_code, r.text[:200])
        assert took < 1.4, took                      # two attempts of 0.3 s, not 1.5 s
        wait_until(lambda: slow[0].hits + slow[1].hits == 2, 3, what="both attempts")
        assert slow[0].hits == 1 and slow[1].hits == 1   # the retry went to the other one
        # the same upstream without route timeouts: the edge's 60 s read timeout
        assert backend_of(edges[0].get("/", "to-plain.bal.test")) in ("t1", "t2")
    finally:
        for b in slow:
            b.kill()
