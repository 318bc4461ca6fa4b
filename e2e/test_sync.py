"""Configuration reaching the edges: no reloads, full load at start, and malformed data in
Redis (typed in by hand) skipped without breaking anything else."""
import json
import socket
import time

from harness import BASE, Edge, edge_status, wait_until
from hardening_support import DecoderProbe


def test_hundred_changes_reach_both_edges_without_reload(controller, edges, backends):
    b1, b2 = backends["b1"], backends["b2"]
    controller.upstream("flip-1", b1.port)
    controller.upstream("flip-2", b2.port)
    controller.route("flip", "flip.example.com", "/", "flip-1")
    for e in edges:
        wait_until(lambda e=e: e.backend("/", "flip.example.com") == "b1", 5, what="first route")
    pids_before = [e.pids() for e in edges]
    assert all(len(workers) == 2 for _, workers in pids_before), pids_before

    worst = 0.0
    for i in range(100):
        target = ("flip-2", "b2") if i % 2 == 0 else ("flip-1", "b1")
        # alternate between moving the route and adding a new one
        if i % 4 < 2:
            controller.route("flip", "flip.example.com", "/", target[0])
            check = ("/", target[1])
        else:
            controller.route(f"flip-new-{i}", "flip.example.com", f"/n{i}", target[0])
            check = (f"/n{i}", target[1])
        t0 = time.monotonic()
        for e in edges:
            wait_until(lambda e=e: e.backend(check[0], "flip.example.com") == check[1], 5,
                       interval=0.002, what=f"change {i} on {e.id}")
        worst = max(worst, time.monotonic() - t0)

    assert [e.pids() for e in edges] == pids_before, "an edge reloaded or lost a worker"
    print(f"slowest change to reach both edges: {worst * 1000:.1f} ms")


def _syncer(edge):
    return edge.session.get(edge.url + "/_switchyard/status", timeout=5).json()["syncer"]


def test_events_name_the_change_and_a_garbled_event_is_ignored(controller, edges, redis, backends):
    """sy_apply's event names the objects of a small batch, so an edge fetches them with the
    stream page (one round trip); events a person published by hand cost nothing else."""
    controller.upstream("hinted", backends["b1"].port)
    controller.route("hinted-0", "hinted.example.com", "/0", "hinted")
    for e in edges:
        wait_until(lambda e=e: e.backend("/0", "hinted.example.com") == "b1", 5, what="route")
    before = [_syncer(e) for e in edges]

    # not an event; a hint naming objects no change touched, for a version not written yet
    redis.cli("PUBLISH", BASE + "events", "garbage")
    redis.cli("PUBLISH", BASE + "events",
              f"{redis.version() + 1} route:hint-ghost upstream:hint-ghost widget:x")
    for i in range(1, 11):
        controller.route(f"hinted-{i}", "hinted.example.com", f"/{i}", "hinted")
        for e in edges:
            wait_until(lambda e=e: e.backend(f"/{i}", "hinted.example.com") == "b1", 5,
                       interval=0.002, what=f"change {i} on {e.id}")

    for e, b in zip(edges, before):
        after = _syncer(e)
        # nearly every change came with its document; a catch-up that a timer started
        # before the event arrived fetches it the old way
        assert after["prefetch_hits"] - b["prefetch_hits"] >= 6, (b, after)
        assert e.get("/", "hint-ghost.example.com").status_code == 404
        assert e.process.alive()
        assert "does not start with a version" in e.process.output()


def test_deleted_route_stops_answering(controller, edges, backends):
    controller.upstream("gone", backends["b3"].port)
    controller.route("gone", "gone.example.com", "/", "gone")
    for e in edges:
        wait_until(lambda e=e: e.backend("/", "gone.example.com") == "b3", 5, what="route")
    controller.ok("DELETE", "/api/v1/routes/gone")
    for e in edges:
        wait_until(lambda e=e: e.backend("/", "gone.example.com") == 404, 5, what="404 after delete")


def _start_upload(edge, host, body, sent):
    """A POST whose first `sent` bytes of body are on their way: nginx has routed it and
    waits for the rest before it connects upstream."""
    s = socket.create_connection(("127.0.0.1", edge.port), timeout=10)
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n"
              b"Connection: close\r\n\r\n" % (host.encode(), len(body)) + body[:sent])
    return s


def _finish_upload(s, body, sent):
    s.sendall(body[sent:])
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    return int(head.split(" ", 2)[1]), head


def test_requests_routed_before_a_change_are_still_served(controller, edges, backends):
    """A route deleted, or given options, while a request's body is on its way: the request
    was routed already and goes to the route's upstream, as it would across a reload."""
    edge = edges[0]
    controller.upstream("inflight", backends["b4"].port)
    controller.route("inflight-del", "inflight-del.example.com", "/", "inflight")
    controller.route("inflight-opt", "inflight-opt.example.com", "/", "inflight")
    for host in ("inflight-del.example.com", "inflight-opt.example.com"):
        wait_until(lambda h=host: edge.backend("/", h) == "b4", 5, what=host)
    body = b"x" * 4096
    deleted = _start_upload(edge, "inflight-del.example.com", body, 100)
    given_options = _start_upload(edge, "inflight-opt.example.com", body, 100)
    time.sleep(0.3)   # both routed (access phase), nginx reading their bodies
    controller.ok("DELETE", "/api/v1/routes/inflight-del")
    controller.ok("PUT", "/api/v1/routes/inflight-opt",
                  {"host": "inflight-opt.example.com", "path": "/", "upstream": "inflight",
                   "response_headers": {"set": {"X-Changed": "1"}}})
    wait_until(lambda: edge.backend("/", "inflight-del.example.com") == 404, 5,
               what="404 after delete")
    time.sleep(1.5)   # every worker has applied both changes (its refresh timer: 1 s)
    hits = backends["b4"].hits
    for s, what in ((deleted, "deleted"), (given_options, "given options")):
        status, head = _finish_upload(s, body, 100)
        assert status == 200, f"route {what} mid-request: {head}"
        assert "X-Backend: b4" in head, head
    assert backends["b4"].hits == hits + 2


def _apply_raw(redis, *ops):
    """Write through the function library directly, as a script or operator could."""
    return redis.cli("FCALL", "sy_apply", "1", BASE + "version", *ops)


def test_malformed_documents_are_skipped(controller, edges, redis, backends, workdir):
    controller.upstream("sane", backends["b1"].port)
    controller.route("sane", "sane.example.com", "/", "sane")
    for e in edges:
        wait_until(lambda e=e: e.backend("/", "sane.example.com") == "b1", 5, what="sane route")

    # valid JSON with nonsense inside, through the write path (edges hear about it)
    _apply_raw(redis, "put", "upstream", "broken-up",
               json.dumps({"name": "broken-up", "endpoints": [{"address": "nowhere", "weight": "x"}]}),
               "", "",
               "put", "route", "broken-host", json.dumps({"id": "broken-host", "host": 42,
                                                          "path": "/", "upstream": "sane"}),
               "sane", "",
               "put", "route", "broken-regex", json.dumps({"id": "broken-regex",
                                                           "host": "sane.example.com",
                                                           "path": "^/(", "match": "regex",
                                                           "upstream": "sane"}), "sane", "")
    # plain garbage typed into redis-cli, then any legitimate change
    redis.cli("SET", BASE + "route:garbage", "this is not json {")
    redis.cli("SADD", BASE + "routes", "garbage")
    redis.cli("SET", BASE + "upstream:sane", "{\"version\":1,")  # corrupt a live upstream
    controller.upstream("sane-2", backends["b2"].port)
    controller.route("after-garbage", "after.example.com", "/", "sane-2")

    for e in edges:
        wait_until(lambda e=e: e.backend("/", "after.example.com") == "b2", 5,
                   what="changes after malformed data still apply")
        assert e.get("/x", "sane.example.com").status_code in (200, 502, 503)
        assert e.process.alive()

    # a new edge does a full load that meets all of it at once and still serves the rest
    fresh = Edge(redis, workdir, "edge-fresh", workers=1)
    try:
        wait_until(lambda: fresh.backend("/", "after.example.com") == "b2", 10,
                   what="fresh edge serving good routes")
        for path, host in [("/", "flip.example.com"), ("/x", "after.example.com")]:
            assert fresh.get(path, host).status_code != 500
        log = fresh.process.output()
        assert "route:garbage" in log, log[-2000:]
    finally:
        fresh.stop()

    # repairing the upstream through the API brings the route back everywhere
    controller.upstream("sane", backends["b3"].port)
    for e in edges:
        wait_until(lambda e=e: e.backend("/", "sane.example.com") == "b3", 5,
                   what="repaired upstream")
    logs = "".join(e.process.output() for e in edges)
    assert "broken-host" in logs and "broken-regex" in logs


def test_edge_started_later_loads_everything(controller, redis, workdir, backends):
    controller.upstream("late", backends["b4"].port)
    for i in range(50):
        controller.route(f"late-{i}", f"late{i}.example.com", "/", "late")
    late = Edge(redis, workdir, "edge-late", workers=2)
    try:
        wait_until(lambda: late.backend("/", "late49.example.com") == "b4", 10,
                   what="full load on a new edge")
        assert all(late.backend("/", f"late{i}.example.com") == "b4" for i in range(50))
    finally:
        late.stop()


def test_full_load_of_more_documents_than_one_pipelined_fetch(controller, redis, workdir, backends):
    """A fresh edge fetches every document in pipelined MGET chunks (500 keys, 10 chunks per
    round trip): 6,001 routes take two round trips, and the last chunk is partial. Every
    route must arrive — the first, one at a chunk boundary, and the last."""
    controller.upstream("bulk", backends["b4"].port)
    n = 6001
    routes = [{"id": f"bulk-{i}", "host": "bulk.example.com", "path": f"/b{i}",
               "match": "exact", "upstream": "bulk"} for i in range(n)]
    # more than one atomic batch holds (1,000 objects): the controller applies it in parts
    controller.ok("POST", "/api/v1/apply?atomic=false", {"routes": routes})
    e = Edge(redis, workdir, "edge-bulk", workers=1)
    try:
        wait_until(lambda: e.backend(f"/b{n - 1}", "bulk.example.com") == "b4", 20,
                   what="last bulk route")
        for i in (0, 499, 500, 4999, 5000, 5500, n - 1):
            assert e.backend(f"/b{i}", "bulk.example.com") == "b4", i
        status = e.session.get(e.url + "/_switchyard/status", timeout=5).json()
        assert status["worker"]["routes"] >= n, status["worker"]
    finally:
        e.stop()


def test_edges_report_their_regex_engine_and_whether_they_can_write_their_snapshot(
        controller, edges, workdir):
    """Each edge says which PCRE its ngx.re runs (detected once at start) and whether its
    workers can write the snapshot directory (probed once at start); the controller's status
    passes both on and has no regex problem while the engines agree. The engine is checked
    here with another pattern than the edge's own probe: (*pla:a) compiles only in PCRE2."""
    probe = DecoderProbe(workdir, name="regex-engine-probe")
    try:
        [(pcre2_only, _)] = probe.regex_verdicts(["(*pla:a)"])
    finally:
        probe.stop()
    engine = "pcre2" if pcre2_only else "pcre1"
    for e in edges:
        st = edge_status(e)
        assert st["regex"] == engine, st
        assert st["snapshot"]["writable"] is True, st["snapshot"]
    wait_until(lambda: all(x.get("regex") == engine for x in controller.status()["edges"]
                           if x["live"]), 3, what="the heartbeats carrying the engine")
    problems = controller.status()["problems"]
    if engine == "pcre1":   # the controller's default
        assert not any("regex" in p for p in problems), problems

