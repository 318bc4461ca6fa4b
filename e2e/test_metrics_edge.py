"""Edge metrics, request ids and the JSON access log (docs/metrics.md, "Edge"): real
redis-server, controller and nginx edges; /metrics is scraped from the edge's metrics
listener and parsed with prometheus-client's text parser, and the values must move as
traffic, failures, rejections and configuration changes happen."""
import json
import os
import re
import subprocess

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from harness import BIN, Edge, free_port, put_route, wait_until

HOST = "metrics.example.com"


def scrape(edge):
    r = requests.get(edge.metrics_url + "/metrics", timeout=5)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name, **labels):
    """Sum over every series of name whose labels include these."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


@pytest.fixture(scope="module")
def edge(redis, controller, workdir):
    # its own edge, one worker, with the JSON access log
    e = Edge(redis, workdir, "edge-metrics", workers=1,
             extra=("--access-log-format", "json"))
    yield e
    e.stop()


@pytest.fixture(scope="module")
def routes(controller, backends, edge):
    controller.upstream("m-up", backends["b1"].port)
    dead = free_port()   # nothing listens there: connection refused
    controller.ok("PUT", "/api/v1/upstreams/m-dead",
                  {"endpoints": [{"address": f"127.0.0.1:{dead}"}], "retries": 0})
    put_route(controller, "m-ok", {"host": HOST, "path": "/ok", "upstream": "m-up"})
    put_route(controller, "m-dead", {"host": HOST, "path": "/dead", "upstream": "m-dead"})
    put_route(controller, "m-deny", {"host": HOST, "path": "/deny", "upstream": "m-up",
                                     "deny": ["127.0.0.0/8"]})
    put_route(controller, "m-rate", {"host": HOST, "path": "/rate", "upstream": "m-up",
                                     "rate_limit": {"rps": 1, "burst": 0}})
    wait_until(lambda: edge.get("/rate", HOST).status_code == 200, 10, what="routes on edge")
    return dead


def wait_metric(edge, check, what):
    """The flush of other workers is at most 1 s behind; the answering worker flushes first."""
    last = {}

    def ok():
        last["s"] = scrape(edge)
        return check(last["s"])
    wait_until(ok, 5, interval=0.2, what=what)
    return last["s"]


def test_requests_by_route_upstream_and_status(edge, routes):
    before = scrape(edge)
    for _ in range(5):
        assert edge.get("/ok/x", HOST).status_code == 200
    assert edge.get("/nothing-here", "nothing.example.com").status_code == 404
    name = "switchyard_edge_requests_total"
    after = wait_metric(edge, lambda s: value(s, name, route="m-ok", upstream="m-up",
                                              **{"class": "2xx"})
                        >= value(before, name, route="m-ok", upstream="m-up",
                                 **{"class": "2xx"}) + 5, "5 more 2xx for m-ok")
    assert value(after, name, route="none", **{"class": "4xx", "code": "404"}) >= \
        value(before, name, route="none", **{"class": "4xx", "code": "404"}) + 1
    # duration histograms: count moved with the requests; +Inf bucket equals the count
    h = "switchyard_edge_request_duration_seconds"
    c = value(after, h + "_count", route="m-ok")
    assert c >= value(before, h + "_count", route="m-ok") + 5
    assert value(after, h + "_bucket", route="m-ok", le="+Inf") == c
    assert value(after, "switchyard_edge_upstream_response_duration_seconds_count",
                 route="m-ok") >= 5
    assert value(after, "switchyard_edge_response_bytes_total", route="m-ok") > \
        value(before, "switchyard_edge_response_bytes_total", route="m-ok")
    assert value(after, "switchyard_edge_request_bytes_total", route="m-ok") > 0
    # attempts by endpoint: the backend's address
    addr = f"127.0.0.1:{edge_backend_port(edge)}"
    assert value(after, "switchyard_edge_upstream_attempts_total", upstream="m-up",
                 endpoint=addr) >= 5


_backend_port = {}


def edge_backend_port(edge):
    return _backend_port["b1"]


@pytest.fixture(scope="module", autouse=True)
def remember(backends):
    _backend_port["b1"] = backends["b1"].port


def test_upstream_error_and_5xx_are_counted(edge, routes):
    dead_addr = f"127.0.0.1:{routes}"
    before = scrape(edge)
    r = edge.get("/dead", HOST)
    assert r.status_code == 502
    name = "switchyard_edge_requests_total"
    after = wait_metric(edge, lambda s: value(s, name, route="m-dead", upstream="m-dead",
                                              **{"class": "5xx", "code": "502"})
                        >= value(before, name, route="m-dead", upstream="m-dead",
                                 **{"class": "5xx", "code": "502"}) + 1, "a 502 for m-dead")
    assert value(after, "switchyard_edge_upstream_errors_total", upstream="m-dead",
                 endpoint=dead_addr) >= \
        value(before, "switchyard_edge_upstream_errors_total", upstream="m-dead",
              endpoint=dead_addr) + 1


def test_rejections_are_counted(edge, routes):
    before = scrape(edge)
    assert edge.get("/deny", HOST).status_code == 403
    codes = [edge.get("/rate", HOST).status_code for _ in range(5)]
    assert 429 in codes
    rej = "switchyard_edge_rejections_total"
    after = wait_metric(edge, lambda s: value(s, rej, route="m-deny", reason="allow_deny")
                        >= value(before, rej, route="m-deny", reason="allow_deny") + 1,
                        "a deny rejection")
    assert value(after, rej, route="m-rate", reason="rate_limit") >= \
        value(before, rej, route="m-rate", reason="rate_limit") + codes.count(429)
    # the edge answered itself: no upstream label
    assert value(after, "switchyard_edge_requests_total", route="m-deny",
                 **{"class": "4xx", "code": "403"}) >= 1


def test_config_change_moves_version_and_age(edge, controller, routes):
    before = scrape(edge)
    v0 = value(before, "switchyard_edge_config_version")
    assert v0 > 0
    assert value(before, "switchyard_edge_config_in_sync") == 1
    assert value(before, "switchyard_edge_digest_agrees") == 1
    put_route(controller, "m-new", {"host": HOST, "path": "/new", "upstream": "m-up"})
    after = wait_metric(edge, lambda s: value(s, "switchyard_edge_config_version") > v0,
                        "the version to move")
    assert value(after, "switchyard_edge_syncer_catch_ups_total") > \
        value(before, "switchyard_edge_syncer_catch_ups_total")
    age = value(after, "switchyard_edge_config_last_change_age_seconds")
    assert 0 <= age < 10
    lag = value(after, "switchyard_edge_config_propagation_lag_seconds")
    assert 0 <= lag < 10
    # the rest is there and plausible
    assert value(after, "switchyard_edge_shared_dict_capacity_bytes", dict="sy_config") > 0
    assert 0 < value(after, "switchyard_edge_shared_dict_free_bytes", dict="sy_metrics") <= \
        value(after, "switchyard_edge_shared_dict_capacity_bytes", dict="sy_metrics")
    assert value(after, "switchyard_edge_connections", state="active") >= 1
    assert value(after, "switchyard_edge_upstream_endpoints", upstream="m-up",
                 state="in_rotation") == 1
    assert value(after, "switchyard_edge_snapshot_writes_total") >= 1


GENERATED = re.compile(r"^[0-9a-f]{1,16}-\d+-\d+$")   # <prefix>-<connection>-<request>


def test_request_id_kept_generated_and_sent_upstream(edge, routes):
    r = edge.get("/ok/id", HOST, headers={"X-Request-ID": "client-id-123"})
    assert r.status_code == 200
    assert r.headers["X-Request-ID"] == "client-id-123"
    assert r.json()["headers"]["x-request-id"] == "client-id-123"   # the backend saw it
    # malformed (a space, a quote) or too long: replaced by a generated one
    for bad in ("has space", 'q"uote', "x" * 129):
        r = edge.get("/ok/id", HOST, headers={"X-Request-ID": bad})
        rid = r.headers["X-Request-ID"]
        assert rid != bad and GENERATED.match(rid), rid
        assert r.json()["headers"]["x-request-id"] == rid
    seen = set()
    for _ in range(3):   # on one keep-alive connection, and each unique
        r = edge.get("/ok/id", HOST)
        rid = r.headers["X-Request-ID"]
        assert GENERATED.match(rid) and r.json()["headers"]["x-request-id"] == rid
        seen.add(rid)
    assert len(seen) == 3
    # the edge's own answers carry it too
    assert GENERATED.match(edge.get("/nothing", "nothing.example.com").headers["X-Request-ID"])


def test_json_access_log_lines_parse(edge, routes):
    r = edge.get("/ok/logged?secret=1", HOST, headers={"X-Request-ID": "log-me-1"})
    assert r.status_code == 200
    path = os.path.join(edge.prefix, "logs", "access.log")
    found = {}

    def logged():
        if not os.path.exists(path):
            return False
        with open(path) as f:
            for line in f:
                rec = json.loads(line)   # every line is one JSON object
                if rec.get("request_id") == "log-me-1":
                    found.update(rec)
                    return True
        return False
    wait_until(logged, 5, interval=0.2, what="the request in the JSON access log (flush=1s)")
    assert found["route"] == "m-ok" and found["upstream"] == "m-up"
    assert found["status"] == 200 and found["method"] == "GET"
    assert found["path"] == "/ok/logged"   # no query string
    assert found["host"] == HOST and found["client"] == "127.0.0.1"
    assert found["attempts"] == 1 and found["endpoint"].startswith("127.0.0.1:")
    assert found["upstream_status"] == "200" and isinstance(found["ts"], float)
    assert found["bytes_out"] > 0 and found["duration"] >= 0


def test_metrics_listener_serves_status_and_nothing_else(edge, routes):
    assert requests.get(edge.metrics_url + "/_switchyard/status", timeout=5).json()["edge_id"] \
        == edge.id
    assert requests.get(edge.metrics_url + "/other", timeout=5).status_code == 404
    # the traffic listener has no /metrics of its own: it routes it like any path
    assert edge.get("/metrics", "nothing.example.com").status_code == 404


def test_registration_names_the_metrics_listener(redis, edge, routes):
    key = "switchyard:{cfg}:edge:" + edge.id
    got = redis.cli("HGET", key, "metrics_listen").strip()
    assert got == f"127.0.0.1:{edge.metrics_port}"


def test_digest_disagreement_shows(redis, edge, routes):
    key = "switchyard:{cfg}:digest"
    good = redis.cli("GET", key)
    assert value(scrape(edge), "switchyard_edge_digest_agrees") == 1
    redis.cli("SET", key, "0000000000001")   # Redis now claims other documents
    try:
        wait_metric(edge, lambda s: value(s, "switchyard_edge_digest_agrees") == 0
                    and ("switchyard_edge_digest_agrees", ()) in s, "digest_agrees 0")
    finally:
        redis.cli("SET", key, good)
    wait_metric(edge, lambda s: value(s, "switchyard_edge_digest_agrees") == 1,
                "digest_agrees back to 1")


def test_metrics_off_renders_no_listener_and_no_log_phase_in_location_root(redis, workdir):
    prefix = os.path.join(workdir, "edge-metrics-off")
    out = subprocess.run([BIN, "edge", "--listen", f"127.0.0.1:{free_port()}", "--redis",
                          redis.address, "--prefix", prefix, "--metrics-listen", "off",
                          "--render-only"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    with open(os.path.join(prefix, "nginx.conf")) as f:
        conf = f.read()
    root = conf[conf.index("location / {"):conf.index("location @sy_full")]
    assert "log_by_lua" not in root.replace("# log_by_lua", "")
    # the metrics server block is there, every line of it commented out
    lines = [line for line in conf.splitlines() if ".metrics()" in line
             or "listen off" in line]
    assert lines and all(line.strip().startswith("#") for line in lines), lines
    assert "metrics_listen = [==[off]==]" in conf


def test_access_log_off_counts_routes_and_failures_without_route_variable(
        redis, workdir, controller, routes):
    # With --access-log off (and the metrics on) access() writes $sy_route only before
    # ngx.exec: the balancer and @sy_failed take the route from the metrics' table
    # (lua/switchyard/request/access.lua). The route's label, the 502's route header and
    # the failed attempt must come out the same.
    e = Edge(redis, workdir, "edge-metrics-nolog", workers=1, extra=("--access-log", "off"))
    try:
        wait_until(lambda: e.get("/ok/x", HOST).status_code == 200, 10, what="routes")
        before = scrape(e)
        for _ in range(3):
            assert e.get("/ok/x", HOST).status_code == 200
        r = e.get("/dead", HOST)
        assert r.status_code == 502
        assert r.headers["X-Switchyard-Route"] == "m-dead"
        name = "switchyard_edge_requests_total"
        after = wait_metric(e, lambda s: value(s, name, route="m-dead", upstream="m-dead",
                                               **{"class": "5xx", "code": "502"})
                            >= value(before, name, route="m-dead", upstream="m-dead",
                                     **{"class": "5xx", "code": "502"}) + 1, "the 502")
        assert value(after, name, route="m-ok", upstream="m-up", **{"class": "2xx"}) >= \
            value(before, name, route="m-ok", upstream="m-up", **{"class": "2xx"}) + 3
        dead_addr = f"127.0.0.1:{routes}"
        assert value(after, "switchyard_edge_upstream_errors_total", upstream="m-dead",
                     endpoint=dead_addr) >= 1
        assert value(after, "switchyard_edge_request_bytes_total", route="m-ok") > 0
    finally:
        e.stop()
