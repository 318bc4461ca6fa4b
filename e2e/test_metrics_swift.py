"""/metrics of the controller and the prober, end to end: real redis-server, controller and
prober processes with --metrics-listen on free loopback ports, loopback backends. Each
scrape is parsed with prometheus-client's parser (a real Prometheus text parser) and the
values must move with what happens: API calls by route template and status, the
configuration version, probes, an endpoint going down, the lease. Also --log-format json."""
import json
import socket

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from harness import BIN, Backend, Controller, Process, Prober, free_port, wait_until

CHECK = {"type": "http", "path": "/healthz", "interval_ms": 200, "timeout_ms": 150, "rise": 1, "fall": 2}


def scrape(port):
    r = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    return [s for family in text_string_to_metric_families(r.text) for s in family.samples]


def value(samples, name, **labels):
    """Sum of the samples named `name` whose labels include `labels` (0 if none)."""
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def has(samples, name, **labels):
    return any(s.name == name and all(s.labels.get(k) == v for k, v in labels.items()) for s in samples)


@pytest.fixture(scope="module")
def metrics_controller(redis, workdir):
    port = free_port()
    c = Controller(redis, workdir, extra=("--metrics-listen", f"127.0.0.1:{port}", "--log-format", "json"))
    c.metrics_port = port
    yield c
    c.stop()


@pytest.fixture(scope="module")
def metrics_prober(redis, metrics_controller, workdir):
    port = free_port()
    p = Prober(redis, workdir, "p-metrics", lease_ms=1000, extra=("--metrics-listen", f"127.0.0.1:{port}"))
    p.metrics_port = port
    wait_until(p.holds_lease, 10, what="p-metrics holds the lease")
    yield p
    p.stop()


# --- controller ------------------------------------------------------------------------------


def test_controller_counts_api_calls_by_template_and_status(metrics_controller):
    c = metrics_controller
    total = "switchyard_controller_requests_total"
    before = scrape(c.metrics_port)
    c.ok("PUT", "/api/v1/upstreams/m-web", {"endpoints": [{"address": "127.0.0.1:9"}]})
    for rid in ("nope-1", "nope-2", "nope-3"):
        assert c.request("GET", f"/api/v1/routes/{rid}").status_code == 404
    bad = c.request("PUT", "/api/v1/routes/m-bad", {"host": "m.test", "path": "/", "upstream": "m-web", "match": "sideways"})
    assert bad.status_code == 422, bad.text
    assert requests.get(c.url + "/not/an/api/path", timeout=5).status_code == 404
    after = scrape(c.metrics_port)

    def moved(**labels):
        return value(after, total, **labels) - value(before, total, **labels)

    assert moved(method="PUT", route="/api/v1/upstreams/{name}", status="201") == 1
    assert moved(method="GET", route="/api/v1/routes/{id}", status="404") == 3
    assert moved(method="PUT", route="/api/v1/routes/{id}", status="422") == 1
    assert moved(method="GET", route="unmatched", status="404") == 1
    # templates, never raw paths: the ids requested do not appear as label values
    routes = {s.labels.get("route") for s in after if s.name == total}
    assert not any("nope" in r or "not/an" in r for r in routes), routes
    lat = "switchyard_controller_request_duration_seconds_count"
    get_id = {"method": "GET", "route": "/api/v1/routes/{id}"}
    assert value(after, lat, **get_id) - value(before, lat, **get_id) == 3
    # the writes went through Redis: FCALL sy_apply is timed, and nothing failed
    fcall = "switchyard_controller_redis_command_duration_seconds_count"
    assert value(after, fcall, command="FCALL sy_apply") > value(before, fcall, command="FCALL sy_apply")
    assert value(after, "switchyard_controller_redis_errors_total") == 0


def test_controller_config_version_follows_redis(metrics_controller, redis):
    c = metrics_controller
    first = value(scrape(c.metrics_port), "switchyard_controller_config_version")
    assert first == redis.version()
    c.ok("PUT", "/api/v1/upstreams/m-version", {"endpoints": [{"address": "127.0.0.1:9"}]})
    c.ok("DELETE", "/api/v1/upstreams/m-version")
    second = value(scrape(c.metrics_port), "switchyard_controller_config_version")
    assert second == redis.version() == first + 2


def test_metrics_listener_is_separate_from_the_token_only_api(metrics_controller):
    c = metrics_controller
    # no token on /metrics ...
    assert requests.get(f"http://127.0.0.1:{c.metrics_port}/metrics", timeout=5).status_code == 200
    # ... which serves nothing else, and the admin API still wants its token
    assert requests.get(f"http://127.0.0.1:{c.metrics_port}/api/v1/routes", timeout=5).status_code == 404
    assert requests.get(c.url + "/api/v1/routes", timeout=5).status_code == 401
    assert requests.get(c.url + "/metrics", timeout=5).status_code == 404


def test_controller_logs_json_lines_without_secrets(metrics_controller):
    c = metrics_controller
    c.ok("PUT", "/api/v1/upstreams/m-log", {"endpoints": [{"address": "127.0.0.1:9"}]})
    wait_until(lambda: "upstream stored" in c.process.output(), 5, what="the write logged")
    lines = [line for line in c.process.output().splitlines() if line.strip()]
    assert lines
    stored = None
    for line in lines:
        record = json.loads(line)  # every line is one JSON object
        assert {"time", "level", "label", "message"} <= record.keys(), record
        assert record["time"].endswith("Z")
        if record["message"] == "upstream stored" and record.get("upstream.name") == "m-log":
            stored = record
    assert stored is not None and stored["level"] == "info" and stored["label"] == "switchyard.controller"
    assert "config.version" in stored  # dotted keys stay flat
    assert c.token not in c.process.output()


# --- prober ----------------------------------------------------------------------------------


def test_prober_counts_probes_and_sees_an_endpoint_go_down(metrics_controller, metrics_prober):
    c, p = metrics_controller, metrics_prober
    backend = Backend("127.0.0.1", 0, "m-hb").start_in_thread()
    try:
        address = f"127.0.0.1:{backend.server_address[1]}"
        before = scrape(p.metrics_port)
        c.ok("PUT", "/api/v1/upstreams/m-probed", {"endpoints": [{"address": address}], "health_check": CHECK})
        probes = "switchyard_prober_probes_total"

        def up_and_probed():
            s = scrape(p.metrics_port)
            ok = value(s, probes, type="http", result="success") - value(before, probes, type="http", result="success")
            return s if ok >= 2 and value(s, "switchyard_prober_endpoints", state="up") >= 1 else None

        s = wait_until(up_and_probed, 10, what="probes counted and the endpoint up")
        assert value(s, "switchyard_prober_leader", prober=p.id) == 1
        assert 0 <= value(s, "switchyard_prober_heartbeat_age_seconds", prober=p.id) < 2
        assert value(s, "switchyard_prober_probe_duration_seconds_count", type="http") >= 2
        assert value(s, "switchyard_prober_redis_command_duration_seconds_count", command="FCALL sy_lease") >= 1
    finally:
        backend.shutdown()
        backend.server_close()

    def down():
        s = scrape(p.metrics_port)
        return s if value(s, "switchyard_prober_endpoints", state="down") >= 1 else None

    s = wait_until(down, 10, what="the endpoint counted down")
    assert value(s, probes, type="http", result="failure") >= 2
    assert value(s, "switchyard_prober_transitions_total", to="down") >= 1
    assert p.health("m-probed")[address]["state"] == "down"


def test_standby_prober_reports_it_does_not_hold_the_lease_and_logs_json(redis, metrics_prober, workdir):
    port = free_port()
    standby = Prober(redis, workdir, "p-standby", lease_ms=1000,
                     extra=("--metrics-listen", f"127.0.0.1:{port}", "--log-format", "json"))
    try:
        s = wait_until(lambda: scrape(port), 5, what="the standby's metrics")
        # its log is JSON lines too, with the prober's dotted metadata
        records = [json.loads(line) for line in standby.process.output().splitlines() if line.strip()]
        assert any(r["message"] == "prober starting" and r.get("prober.id") == "p-standby" for r in records), records
        assert value(s, "switchyard_prober_leader", prober="p-standby") == 0
        assert value(s, "switchyard_prober_leader", prober=metrics_prober.id) == 0  # each prober reports itself only
        assert not has(s, "switchyard_prober_leader", prober=metrics_prober.id)
        assert value(scrape(metrics_prober.metrics_port), "switchyard_prober_leader", prober=metrics_prober.id) == 1
    finally:
        standby.stop()


def test_metrics_port_in_use_stops_the_process_only_when_asked_for(redis, workdir):
    # an explicit --metrics-listen that cannot be served stops the process: the operator asked
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        proc = Process(f"prober-busy-{port}", [BIN, "prober", "--redis", redis.address, "--id", "p-busy",
                                               "--metrics-listen", f"127.0.0.1:{port}"], log_dir=workdir)
        try:
            wait_until(lambda: not proc.alive(), 15, what="the prober to exit")
            assert proc.proc.returncode != 0
        finally:
            proc.stop()
