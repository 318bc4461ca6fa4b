"""The prober end to end: real redis-server, controller, `switchyard prober` processes and
loopback backends. Health must reach Redis within interval x fall + timeout (plus slack),
come back after rise, and survive the active prober dying. Timing bounds are generous:
they catch a prober that does not work, not one that is a little slow on a busy machine."""
import json
import os
import signal
import socket
import time

import pytest

from harness import BASE, Backend, Controller, Prober, Redis, Subscriber, free_port, wait_until

# fast checks, so the tests are short: detection bound 200 x 2 + 100 = 500 ms
CHECK = {"type": "http", "path": "/healthz", "interval_ms": 200, "timeout_ms": 100, "rise": 2, "fall": 2}
SLACK = 2.0  # seconds on top of every bound


def detect_bound(check, n):
    return (check["interval_ms"] * n + check["timeout_ms"]) / 1000 + SLACK


@pytest.fixture(scope="module")
def prober(redis, controller, workdir):
    p = Prober(redis, workdir, "p-main", lease_ms=1000)
    wait_until(p.holds_lease, 5, what="p-main holds the lease")
    yield p
    p.stop()


@pytest.fixture
def backend():
    b = Backend("127.0.0.1", 0, "hb").start_in_thread()
    yield b
    b.shutdown()
    b.server_close()


def put_upstream(controller, name, addresses, check=CHECK, **extra):
    body = {"endpoints": [{"address": a} for a in addresses], "health_check": check}
    body.update(extra)
    return controller.ok("PUT", f"/api/v1/upstreams/{name}", body)


def state_of(prober, upstream, address):
    return prober.health(upstream).get(address, {}).get("state")


def wait_state(prober, upstream, address, state, timeout):
    t0 = time.monotonic()
    wait_until(lambda: state_of(prober, upstream, address) == state, timeout,
               what=f"{upstream} {address} {state} (prober log: {prober.process.log_path})")
    return time.monotonic() - t0


# --- detection -------------------------------------------------------------------------


def test_failing_endpoint_goes_down_and_comes_back(controller, prober, backend, redis):
    addr = f"127.0.0.1:{backend.port}"
    put_upstream(controller, "hc-status", [addr])
    wait_state(prober, "hc-status", addr, "up", detect_bound(CHECK, CHECK["rise"]) + 2)

    backend.status = 500
    took = wait_state(prober, "hc-status", addr, "down", detect_bound(CHECK, CHECK["fall"]))
    record = prober.health("hc-status")[addr]
    assert record["reason"] == "status 500" and record["prober"] == "p-main", record
    print(f"500 detected in {took * 1000:.0f} ms (bound {detect_bound(CHECK, 2) * 1000:.0f})")

    backend.status = 200
    took = wait_state(prober, "hc-status", addr, "up", detect_bound(CHECK, CHECK["rise"]))
    assert prober.health("hc-status")[addr]["reason"] == "status 200"
    print(f"recovery detected in {took * 1000:.0f} ms")


def test_hanging_endpoint_times_out(controller, prober):
    # accepts (kernel backlog) and never answers
    hang = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hang.bind(("127.0.0.1", 0))
    hang.listen(64)
    try:
        addr = f"127.0.0.1:{hang.getsockname()[1]}"
        put_upstream(controller, "hc-hang", [addr])
        wait_state(prober, "hc-hang", addr, "down", detect_bound(CHECK, CHECK["fall"]))
        assert prober.health("hc-hang")[addr]["reason"] == "timeout"
    finally:
        hang.close()


def test_refused_endpoint(controller, prober):
    addr = f"127.0.0.1:{free_port()}"
    put_upstream(controller, "hc-refused", [addr])
    wait_state(prober, "hc-refused", addr, "down", detect_bound(CHECK, CHECK["fall"]))
    assert prober.health("hc-refused")[addr]["reason"] == "refused"


def test_tcp_checks(controller, prober, backend):
    live, dead = f"127.0.0.1:{backend.port}", f"127.0.0.1:{free_port()}"
    check = {"type": "tcp", "interval_ms": 200, "timeout_ms": 100, "rise": 1, "fall": 1}
    put_upstream(controller, "hc-tcp", [live, dead], check=check)
    wait_state(prober, "hc-tcp", live, "up", detect_bound(check, 1))
    wait_state(prober, "hc-tcp", dead, "down", detect_bound(check, 1))
    health = prober.health("hc-tcp")
    assert health[live]["reason"] == "connected" and health[dead]["reason"] == "refused"


def test_expected_status_is_configurable(controller, prober, backend):
    addr = f"127.0.0.1:{backend.port}"
    # 500 is healthy when the check says so (and a Host header may be set)
    backend.status = 500
    check = dict(CHECK, host="health.example.com", expect_status=["500"])
    put_upstream(controller, "hc-expect", [addr], check=check)
    wait_state(prober, "hc-expect", addr, "up", detect_bound(check, check["rise"]))
    backend.status = 200
    wait_state(prober, "hc-expect", addr, "down", detect_bound(check, check["fall"]))
    assert prober.health("hc-expect")[addr]["reason"] == "status 200"


def test_probe_request_line_and_host_header(controller, prober):
    """What an endpoint sees: GET <path> with the configured Host, no proxy, no body."""
    seen = []
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(5)
    addr = f"127.0.0.1:{srv.getsockname()[1]}"
    try:
        check = dict(CHECK, path="/conf/?deep=1", host="svc.internal")
        put_upstream(controller, "hc-request", [addr], check=check)
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            seen = data.decode().split("\r\n")
            conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
    finally:
        srv.close()
        controller.ok("DELETE", "/api/v1/upstreams/hc-request")
    assert seen[0] == "GET /conf/?deep=1 HTTP/1.1", seen
    assert "Host: svc.internal" in seen, seen
    assert any(h.startswith("User-Agent: switchyard-prober") for h in seen), seen


# --- following the configuration ---------------------------------------------------------


def test_get_upstream_shows_health(controller, prober, backend):
    up, down = f"127.0.0.1:{backend.port}", f"127.0.0.1:{free_port()}"
    put_upstream(controller, "hc-view", [up, down])
    wait_state(prober, "hc-view", up, "up", detect_bound(CHECK, 2) + 2)
    wait_state(prober, "hc-view", down, "down", detect_bound(CHECK, 2))
    got = controller.ok("GET", "/api/v1/upstreams/hc-view")
    by = {e["address"]: e for e in got["endpoints"]}
    assert by[up]["health"] == "up" and by[up]["health_reason"] == "status 200"
    assert by[down]["health"] == "down" and by[down]["health_reason"] == "refused"
    assert by[down]["health_prober"] == "p-main"
    assert by[down]["health_since"].endswith("Z") and by[down]["health_since_ms"] > 0
    assert got["health_stale"] is False
    # an upstream without a check has no health fields at all
    controller.ok("PUT", "/api/v1/upstreams/hc-none", {"endpoints": [{"address": up}]})
    plain = controller.ok("GET", "/api/v1/upstreams/hc-none")
    assert "health" not in plain["endpoints"][0] and "health_stale" not in plain


def test_removed_endpoints_and_checks_are_forgotten(controller, prober, redis):
    a, b = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    put_upstream(controller, "hc-forget", [a, b])
    wait_state(prober, "hc-forget", b, "down", detect_bound(CHECK, 2))
    wait_state(prober, "hc-forget", a, "down", detect_bound(CHECK, 2))
    controller.ok("DELETE", f"/api/v1/upstreams/hc-forget/endpoints/{b}")
    wait_until(lambda: b not in prober.health("hc-forget"), 5, what="removed endpoint forgotten")
    assert a in prober.health("hc-forget")
    # no check any more: the whole hash goes, and the index with it
    controller.ok("PUT", "/api/v1/upstreams/hc-forget", {"endpoints": [{"address": a}]})
    wait_until(lambda: redis.cli("EXISTS", BASE + "health:hc-forget") == "0", 5, what="hash dropped")
    assert "hc-forget" not in redis.cli("SMEMBERS", BASE + "health_upstreams", raw=True).split()
    # a new endpoint starts unknown: nothing is written for it until rise or fall decides
    live = Backend("127.0.0.1", 0, "late").start_in_thread()
    try:
        slow = dict(CHECK, interval_ms=1000, timeout_ms=500, rise=3)
        put_upstream(controller, "hc-forget", [f"127.0.0.1:{live.port}"], check=slow)
        time.sleep(1.0)
        assert prober.health("hc-forget") == {}
        assert controller.ok("GET", "/api/v1/upstreams/hc-forget")["endpoints"][0]["health"] == "unknown"
    finally:
        live.shutdown()
        live.server_close()


def test_health_events_are_published_in_version_order(controller, prober, redis, backend):
    sub = Subscriber(redis.port, BASE + "health_events")
    try:
        addr = f"127.0.0.1:{backend.port}"
        dead = f"127.0.0.1:{free_port()}"
        put_upstream(controller, "hc-events", [addr, dead])
        msgs = []
        deadline = time.monotonic() + detect_bound(CHECK, 2) + 3
        while time.monotonic() < deadline and len(msgs) < 2:
            msgs += sub.messages(0.5)
        parsed = [m.split(" ") for m in msgs]
        assert sorted((p[1], p[2], p[3]) for p in parsed) == \
            sorted([("hc-events", addr, "up"), ("hc-events", dead, "down")]), msgs
        versions = [int(p[0]) for p in parsed]
        assert versions == sorted(versions) and versions[-1] - versions[0] == len(versions) - 1
        assert int(redis.get(BASE + "health_version")) >= versions[-1]
    finally:
        sub.close()


def test_heartbeat_has_a_ttl(prober, redis):
    hb = json.loads(redis.get(BASE + "prober:heartbeat"))
    assert hb["prober"] == "p-main" and hb["lease_ms"] == 1000 and hb["targets"] >= 1
    ttl = int(redis.cli("PTTL", BASE + "prober:heartbeat"))
    assert 0 < ttl <= 1000


def test_malformed_upstream_is_skipped(controller, prober, redis, backend):
    # valid JSON through the write path, but a health check no controller would accept
    redis.cli("FCALL", "sy_apply", "1", BASE + "version", "put", "upstream", "hc-broken",
              json.dumps({"name": "hc-broken", "endpoints": [],
                          "health_check": {"interval_ms": 1}}), "", "")
    addr = f"127.0.0.1:{free_port()}"
    put_upstream(controller, "hc-after-broken", [addr])
    wait_state(prober, "hc-after-broken", addr, "down", detect_bound(CHECK, 2) + 2)
    assert prober.process.alive()
    assert "skipping undecodable upstream" in prober.process.output()


# --- availability -----------------------------------------------------------------------


@pytest.fixture
def stack(tmp_path):
    """A Redis and controller of its own: failover tests must not disturb p-main."""
    r = Redis(str(tmp_path))
    c = Controller(r, str(tmp_path))
    started = []
    yield r, c, str(tmp_path), started
    for p in started:
        p.stop()
    c.stop()
    r.stop()


def test_failover_after_sigkill(stack, backend):
    r, c, workdir, started = stack
    lease = 1000
    good = Backend("127.0.0.1", 0, "good").start_in_thread()
    try:
        put_upstream(c, "fo", [f"127.0.0.1:{good.port}", f"127.0.0.1:{backend.port}"])
        a = Prober(r, workdir, "p-a", lease_ms=lease)
        started.append(a)
        wait_until(a.holds_lease, 5, what="p-a active")
        b = Prober(r, workdir, "p-b", lease_ms=lease)
        started.append(b)
        good_addr, flaky = f"127.0.0.1:{good.port}", f"127.0.0.1:{backend.port}"
        wait_state(a, "fo", good_addr, "up", detect_bound(CHECK, 2) + 2)
        wait_state(a, "fo", flaky, "up", detect_bound(CHECK, 2) + 2)

        # both alive: only the holder writes, every record names it
        backend.status = 503
        wait_state(a, "fo", flaky, "down", detect_bound(CHECK, 2))
        backend.status = 200
        wait_state(a, "fo", flaky, "up", detect_bound(CHECK, 2))
        assert {rec["prober"] for rec in a.health("fo").values()} == {"p-a"}
        assert a.holds_lease()
        assert "acquired the prober lease" not in b.process.output()
        good_since = a.health("fo")[good_addr]["since"]

        a.kill()
        t0 = time.monotonic()
        wait_until(b.holds_lease, 2 * lease / 1000 + SLACK, what="p-b takes the lease")
        took_over = time.monotonic() - t0
        print(f"standby took over {took_over * 1000:.0f} ms after SIGKILL (lease {lease} ms)")
        assert took_over <= 2 * lease / 1000 + SLACK

        # the new prober writes (a real transition), and did not flap what Redis knew
        backend.status = 500
        wait_state(b, "fo", flaky, "down", detect_bound(CHECK, 2) + 1)
        rec = b.health("fo")
        assert rec[flaky]["prober"] == "p-b" and rec[flaky]["reason"] == "status 500"
        assert rec[good_addr]["state"] == "up" and rec[good_addr]["since"] == good_since
    finally:
        good.shutdown()
        good.server_close()


def test_heartbeat_expires_after_sigkill_and_goes_at_once_on_sigterm(stack):
    r, c, workdir, started = stack
    lease = 900
    a = Prober(r, workdir, "p-hb", lease_ms=lease)
    started.append(a)
    wait_until(lambda: r.get(BASE + "prober:heartbeat"), 5, what="heartbeat")
    ttl = int(r.cli("PTTL", BASE + "prober:heartbeat"))
    assert 0 < ttl <= lease
    a.kill()
    wait_until(lambda: r.cli("EXISTS", BASE + "prober:heartbeat") == "0", lease / 1000 + SLACK,
               what="heartbeat expiry after SIGKILL")

    b = Prober(r, workdir, "p-hb2", lease_ms=lease)
    started.append(b)
    wait_until(b.holds_lease, 2 * lease / 1000 + SLACK, what="p-hb2 active")
    wait_until(lambda: r.get(BASE + "prober:heartbeat"), 5, what="heartbeat of p-hb2")
    t0 = time.monotonic()
    b.process.send_signal(signal.SIGTERM)
    b.process.proc.wait(timeout=10)
    assert b.process.proc.returncode == 0, b.process.output()
    assert r.cli("EXISTS", BASE + "prober:heartbeat", BASE + "prober:lease") == "0"
    print(f"clean stop took {(time.monotonic() - t0) * 1000:.0f} ms")
    assert "released the prober lease" in b.process.output()


def test_redis_outage_pauses_writes_and_resumes(stack, backend):
    r, c, workdir, started = stack
    addr = f"127.0.0.1:{backend.port}"
    put_upstream(c, "outage", [addr])
    p = Prober(r, workdir, "p-out", lease_ms=1000)
    started.append(p)
    wait_state(p, "outage", addr, "up", detect_bound(CHECK, 2) + 2)
    os.kill(r.process.pid, signal.SIGSTOP)  # Redis answers nothing
    try:
        backend.status = 500
        time.sleep(2.5)  # longer than the lease: the prober must stop trusting it
    finally:
        os.kill(r.process.pid, signal.SIGCONT)
    wait_state(p, "outage", addr, "down", 10)
    assert p.health("outage")[addr]["prober"] == "p-out"
    assert p.process.alive()
