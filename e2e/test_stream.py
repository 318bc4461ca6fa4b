"""TCP stream services end to end (issue 23, docs/stream.md): real redis-server, controller,
`switchyard stream` and TCP echo endpoints on loopback. Streams are written through the admin
API (PUT /api/v1/streams/{id}, POST /api/v1/apply), and in two places straight through the
library's sy_apply (a stream is a kind of configuration object)."""
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from harness import BASE, ROOT, Controller, Prober, edge_status, free_port, wait_until
from stream_support import StreamRole, TCPEcho, UDPEcho, connect, echo_once, put_stream, sample, udp_ask

# The role's safety-net poll in these tests: far longer than any wait below, so every change
# that applies within a test's bounds arrived through pub/sub (events, health_events), not
# through the poll.
SLOW_POLL_MS = 10000


@pytest.fixture(scope="module")
def echoes():
    servers = [TCPEcho("a"), TCPEcho("b"), TCPEcho("c")]
    yield servers
    for s in servers:
        s.close()


@pytest.fixture(scope="module")
def stream(redis, controller, workdir):
    role = StreamRole(redis, workdir, poll_ms=SLOW_POLL_MS, metrics_port=free_port())
    yield role
    role.stop()


def upstream(controller, name, *echoes):
    controller.ok("PUT", f"/api/v1/upstreams/{name}",
                  {"endpoints": [{"address": f"127.0.0.1:{e.port}"} for e in echoes]})


def put(controller, sid, body):
    return controller.ok("PUT", f"/api/v1/streams/{sid}", body)


def reaches(port, n):
    """The endpoint names n fresh connections reach (None for a refused/closed one)."""
    out = []
    for _ in range(n):
        try:
            s, name = connect(port)
            assert echo_once(s) == b"ping"
            s.close()
            out.append(name)
        except (ConnectionError, OSError):
            out.append(None)
    return out


def listening(port):
    try:
        s, _ = connect(port, timeout=0.5)
        s.close()
        return True
    except (ConnectionError, OSError):
        return False


def test_traffic_round_robin_and_endpoint_change_keeps_open_connections(controller, redis, stream, echoes):
    a, b, c = echoes
    upstream(controller, "tcp-echo", a, b)
    port = free_port()
    put(controller, "echo", {"listen": port, "upstream": "tcp-echo", "protocol": "tcp", "balance": "round_robin"})
    wait_until(lambda: listening(port), 5, what="stream listener")
    names = reaches(port, 6)
    assert sorted(set(names)) == ["a", "b"], names
    assert names.count("a") == 3

    # an established connection survives the endpoint set changing under it
    held, held_name = connect(port)
    upstream(controller, "tcp-echo", c)
    wait_until(lambda: reaches(port, 1) == ["c"], 2, what="endpoint change applied")
    assert reaches(port, 3) == ["c", "c", "c"]
    assert echo_once(held, b"still-here") == b"still-here"
    held.close()
    assert held_name in ("a", "b")


def test_changes_under_a_stream_of_connections_drop_none(controller, redis, stream, echoes):
    a, b, c = echoes
    upstream(controller, "tcp-churn", a, b)
    port = free_port()
    put(controller, "churn", {"listen": port, "upstream": "tcp-churn", "balance": "least_conn"})
    wait_until(lambda: listening(port), 5, what="stream listener")
    results, stop = [], threading.Event()

    def load():
        while not stop.is_set() and len(results) < 400:
            results.extend(reaches(port, 1))

    t = threading.Thread(target=load)
    t.start()
    try:
        for eps in ((c,), (a, c), (b,), (a, b, c), (a,)):
            upstream(controller, "tcp-churn", *eps)
            time.sleep(0.15)
    finally:
        stop.set()
        t.join(10)
    assert len(results) >= 20, results
    assert None not in results, f"{results.count(None)} of {len(results)} connections failed"
    assert set(results) == {"a", "b", "c"}
    assert reaches(port, 3) == ["a", "a", "a"]


def test_down_endpoint_leaves_rotation(controller, redis, stream, echoes):
    a, b, _ = echoes
    upstream(controller, "tcp-health", a, b)
    # a health check makes verdicts apply; the prober's record is written as sy_health writes it
    controller.ok("PUT", "/api/v1/upstreams/tcp-health",
                  {"endpoints": [{"address": f"127.0.0.1:{a.port}"}, {"address": f"127.0.0.1:{b.port}"}],
                   "health_check": {"type": "tcp", "interval_ms": 1000}})
    port = free_port()
    put(controller, "health", {"listen": port, "upstream": "tcp-health"})
    wait_until(lambda: listening(port), 5, what="stream listener")
    assert sorted(set(reaches(port, 4))) == ["a", "b"]
    # written and announced as sy_health does (HSET, INCR health_version, PUBLISH health_events)
    record = json.dumps({"prober": "test", "reason": "timeout", "since": 1, "state": "down"})
    redis.cli("HSET", BASE + "health:tcp-health", f"127.0.0.1:{b.port}", record)
    v = redis.cli("INCR", BASE + "health_version")
    redis.cli("PUBLISH", BASE + "health_events", f"{v} tcp-health 127.0.0.1:{b.port} down")
    wait_until(lambda: set(reaches(port, 4)) == {"a"}, 2, what="down endpoint out of rotation")
    redis.cli("HDEL", BASE + "health:tcp-health", f"127.0.0.1:{b.port}")
    v = redis.cli("INCR", BASE + "health_version")
    redis.cli("PUBLISH", BASE + "health_events", f"{v} tcp-health 127.0.0.1:{b.port} up")
    wait_until(lambda: set(reaches(port, 4)) == {"a", "b"}, 2, what="endpoint back in rotation")


def test_endpoint_killed_and_marked_down_by_the_prober_leaves_rotation(controller, redis, stream, workdir):
    a, b = TCPEcho("pa"), TCPEcho("pb")
    prober = Prober(redis, workdir, "stream-prober")
    try:
        controller.ok("PUT", "/api/v1/upstreams/tcp-probed",
                      {"endpoints": [{"address": f"127.0.0.1:{a.port}"}, {"address": f"127.0.0.1:{b.port}"}],
                       "health_check": {"type": "tcp", "interval_ms": 100, "rise": 1, "fall": 1}})
        port = free_port()
        put(controller, "probed", {"listen": port, "upstream": "tcp-probed"})
        wait_until(lambda: listening(port), 5, what="stream listener")
        wait_until(lambda: set(prober.health("tcp-probed").get(f"127.0.0.1:{b.port}", {}).get("state", "")) != set(), 5,
                   what="prober verdict")
        assert sorted(set(reaches(port, 4))) == ["pa", "pb"]
        b.close()  # killed: refuses connections from now on
        wait_until(lambda: prober.health("tcp-probed")[f"127.0.0.1:{b.port}"]["state"] == "down", 5,
                   what="prober marks the endpoint down")
        # every new connection reaches the live endpoint (none is sent to the dead one)
        wait_until(lambda: reaches(port, 6) == ["pa"] * 6, 2, what="down endpoint out of rotation")
    finally:
        prober.stop()
        a.close()
        b.close()


def test_listen_port_added_and_removed_without_restart(controller, redis, stream, echoes):
    a = echoes[0]
    upstream(controller, "tcp-ports", a)
    port = free_port()
    assert not listening(port)
    pid = stream.process.pid
    put(controller, "ports", {"listen": port, "upstream": "tcp-ports"})
    wait_until(lambda: listening(port), 5, what="new listen port")
    held, _ = connect(port)
    controller.ok("DELETE", "/api/v1/streams/ports")
    wait_until(lambda: not listening(port), 2, what="listen port closed")
    # the connection accepted before the port went away is untouched
    assert echo_once(held, b"after-close") == b"after-close"
    held.close()
    assert stream.process.alive() and stream.process.pid == pid


def test_allow_deny(controller, redis, stream, echoes):
    a = echoes[0]
    upstream(controller, "tcp-acl", a)
    port = free_port()
    put(controller, "acl", {"listen": port, "upstream": "tcp-acl", "deny": ["127.0.0.0/8"]})
    wait_until(lambda: reaches(port, 1) == [None], 2, what="deny applied")
    put(controller, "acl", {"listen": port, "upstream": "tcp-acl", "allow": ["127.0.0.1"]})
    wait_until(lambda: reaches(port, 1) == ["a"], 2, what="allow applied")
    put(controller, "acl", {"listen": port, "upstream": "tcp-acl", "allow": ["10.0.0.0/8"]})
    wait_until(lambda: reaches(port, 1) == [None], 2, what="allow list without the client refuses")


def test_proxy_protocol_line(controller, redis, stream, echoes):
    b = echoes[1]
    upstream(controller, "tcp-pp", b)
    port = free_port()
    put(controller, "pp", {"listen": port, "upstream": "tcp-pp", "proxy_protocol": True})
    wait_until(lambda: listening(port), 5, what="stream listener")
    before = len(b.first_bytes)
    s, _ = connect(port)
    got = echo_once(s, b"x")
    s.close()
    assert got.startswith(b"PROXY TCP4 127.0.0.1 127.0.0.1 "), got
    assert b.first_bytes[before].startswith(b"PROXY TCP4 127.0.0.1 127.0.0.1 ")


def test_sy_apply_refuses_a_bad_stream_and_writes_nothing(redis, controller, stream):
    version = redis.get(BASE + "version")
    out = put_stream(redis, "orphan", {"listen": free_port(), "upstream": "no-such-upstream"})
    assert "SYERR" in out and "missing_upstream" in out, out
    taken = json.loads(redis.get(BASE + "stream:echo"))["listen"]
    out = put_stream(redis, "clash", {"listen": taken, "upstream": "tcp-echo"})
    assert "port_conflict" in out and '"stream":"echo"' in out, out
    assert redis.get(BASE + "version") == version
    assert redis.get(BASE + "stream:orphan") is None
    assert redis.get(BASE + "stream:clash") is None


def test_api_validation_names_fields_and_writes_nothing(redis, controller, stream):
    version = redis.get(BASE + "version")
    r = controller.put("/api/v1/streams/bad", {"listen": 0, "protocol": "udp", "balance": "least_conn",
                                               "upstream": "tcp-echo", "allow": ["300.1.1.1"], "extra": 1})
    assert r.status_code == 422, r.text
    fields = {d["field"] for d in r.json()["error"]["details"]}
    assert fields == {"listen", "balance", "allow[0]", "extra"}
    r = controller.put("/api/v1/streams/bad", {"listen": free_port(), "upstream": "nope"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "upstream", r.text
    taken = controller.ok("GET", "/api/v1/streams/echo")["listen"]
    r = controller.put("/api/v1/streams/bad", {"listen": taken, "upstream": "tcp-echo"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "port_conflict", r.text
    assert r.json()["error"]["field"] == "listen" and r.json()["error"]["stream"] == "echo", r.text
    assert redis.get(BASE + "version") == version
    assert redis.get(BASE + "stream:bad") is None
    assert controller.request("GET", "/api/v1/streams/bad").status_code == 404
    assert controller.request("DELETE", "/api/v1/streams/bad").status_code == 404
    ids = [i["id"] for i in controller.ok("GET", "/api/v1/streams")["items"]]
    assert "echo" in ids and "bad" not in ids


def test_dry_run_checks_and_writes_nothing_and_if_match_holds(redis, controller, stream, echoes):
    upstream(controller, "dry-up", echoes[0])
    held = free_port()
    put(controller, "dry-held", {"listen": held, "upstream": "dry-up"})
    version = redis.get(BASE + "version")
    port = free_port()
    r = controller.request("PUT", "/api/v1/streams/dry?dry_run=true", {"listen": port, "upstream": "dry-up"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dry_run"] is True and body["changed"] == 1, body
    assert [(c["kind"], c["id"]) for c in body["changes"]["created"]] == [("stream", "dry")], body
    r = controller.request("PUT", "/api/v1/streams/dry?dry_run=true", {"listen": held, "upstream": "dry-up"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "port_conflict", r.text
    r = controller.request("PUT", "/api/v1/streams/dry?dry_run=true", {"listen": port, "upstream": "nope"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "upstream", r.text
    r = controller.request("DELETE", "/api/v1/streams/dry-held?dry_run=true")
    assert r.status_code == 200, r.text
    assert [(c["kind"], c["id"]) for c in r.json()["changes"]["deleted"]] == [("stream", "dry-held")], r.text
    # If-Match as for every object: the configuration's version (an older one: 412)
    r = controller.request("PUT", "/api/v1/streams/dry", {"listen": port, "upstream": "dry-up"},
                           headers={"If-Match": f'"{int(version) - 1}"'})
    assert r.status_code == 412, r.text
    assert redis.get(BASE + "version") == version
    assert redis.get(BASE + "stream:dry") is None
    assert redis.get(BASE + "stream:dry-held") is not None
    controller.ok("DELETE", "/api/v1/streams/dry-held")


def test_an_upstream_a_stream_uses_cannot_be_deleted(redis, controller, stream, echoes):
    upstream(controller, "held-up", echoes[0])
    put(controller, "holder", {"listen": free_port(), "upstream": "held-up"})
    version = redis.get(BASE + "version")
    r = controller.request("DELETE", "/api/v1/upstreams/held-up")
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "in_use" and err["streams"] == ["holder"] and "stream holder" in err["message"], err
    assert redis.get(BASE + "version") == version
    controller.ok("DELETE", "/api/v1/streams/holder")
    assert controller.request("DELETE", "/api/v1/upstreams/held-up").status_code == 200


def test_udp_sessions_balance_follow_changes_and_refuse(controller, redis, stream):
    a, b, c = UDPEcho("ua"), UDPEcho("ub"), UDPEcho("uc")
    try:
        upstream(controller, "udp-echo", a, b)
        port = free_port()
        put(controller, "dns", {"listen": port, "protocol": "udp", "upstream": "udp-echo"})
        wait_until(lambda: udp_ask(port, timeout=0.2) is not None, 5, what="udp listener")
        names = [udp_ask(port) for _ in range(6)]  # a new socket (source port) per ask: a new session
        assert sorted(set(names)) == ["ua", "ub"] and names.count("ua") == 3, names
        # a session keeps its endpoint while the set changes; new sessions go to the new set
        held = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        first = udp_ask(port, sock=held)
        upstream(controller, "udp-echo", c)
        wait_until(lambda: udp_ask(port) == "uc", 2, what="udp endpoint change applied")
        assert udp_ask(port, b"again", sock=held) == first
        held.close()
        put(controller, "dns", {"listen": port, "protocol": "udp", "upstream": "udp-echo", "deny": ["127.0.0.1/32"]})
        wait_until(lambda: udp_ask(port, timeout=0.2) is None, 2, what="udp deny applied")
    finally:
        for e in (a, b, c):
            e.close()


def test_half_close_delivers_the_answer(controller, redis, stream, echoes):
    """A client that shuts down its sending side still gets everything the endpoint answers
    (netcat, HTTP/1.0 clients, dump/restore tools do this)."""
    a = echoes[0]
    upstream(controller, "tcp-half", a)
    port = free_port()
    put(controller, "half", {"listen": port, "upstream": "tcp-half"})
    wait_until(lambda: listening(port), 5, what="stream listener")
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
        s.sendall(b"x" * 200000)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
        s.close()
        assert got == b"a\n" + b"x" * 200000, len(got)


def test_changes_arrive_through_pubsub_in_milliseconds(controller, redis, stream, echoes):
    """The role polls only every SLOW_POLL_MS; a new port and an endpoint change apply within
    a fraction of that, so they came through pub/sub. The times are printed, not asserted
    tightly (bench/stream.py --apply-only measures them)."""
    a, b, _ = echoes
    upstream(controller, "tcp-fast", a)
    port = free_port()
    put(controller, "fast", {"listen": port, "upstream": "tcp-fast"})
    t0 = time.monotonic()
    wait_until(lambda: listening(port), 3, interval=0.005, what="new listen port")
    new_port_ms = (time.monotonic() - t0) * 1000
    upstream(controller, "tcp-fast", b)
    t0 = time.monotonic()
    wait_until(lambda: reaches(port, 1) == ["b"], 3, interval=0.005, what="endpoint change applied")
    endpoint_ms = (time.monotonic() - t0) * 1000
    print(f"\nstream role, poll {SLOW_POLL_MS} ms: new port accepted after {new_port_ms:.0f} ms, "
          f"endpoint change after {endpoint_ms:.0f} ms")
    assert new_port_ms < SLOW_POLL_MS / 3 and endpoint_ms < SLOW_POLL_MS / 3
    controller.ok("DELETE", "/api/v1/streams/fast")


def test_metrics(controller, redis, stream, echoes):
    a, b, _ = echoes
    upstream(controller, "tcp-metrics", a)
    port = free_port()
    put(controller, "metered", {"listen": port, "upstream": "tcp-metrics"})
    wait_until(lambda: listening(port), 3, what="stream listener")
    before = stream.metrics()
    for _ in range(3):
        s, _ = connect(port)
        assert echo_once(s, b"12345") == b"12345"
        s.close()
    after = wait_until(lambda: (m := stream.metrics()) and sample(m, "switchyard_stream_connections_active", stream="metered") == 0
                       and m, 3, what="connections closed in the gauge")
    key = {"stream": "metered", "protocol": "tcp"}
    # listening() above connected once more than the three here, before `before`
    assert sample(after, "switchyard_stream_connections_total", result="accepted", **key) \
        - sample(before, "switchyard_stream_connections_total", result="accepted", **key) == 3
    assert sample(after, "switchyard_stream_bytes_total", stream="metered", direction="in") \
        - sample(before, "switchyard_stream_bytes_total", stream="metered", direction="in") == 15
    # out: the greeting "a\n" and the echo, per connection
    assert sample(after, "switchyard_stream_bytes_total", stream="metered", direction="out") \
        - sample(before, "switchyard_stream_bytes_total", stream="metered", direction="out") == 3 * (2 + 5)

    # a connection held open shows in the gauge
    held, _ = connect(port)
    wait_until(lambda: sample(stream.metrics(), "switchyard_stream_connections_active", stream="metered") == 1, 3,
               what="an open connection counted")
    held.close()

    # refused by deny
    put(controller, "metered", {"listen": port, "upstream": "tcp-metrics", "deny": ["127.0.0.1"]})
    wait_until(lambda: reaches(port, 1) == [None], 3, what="deny applied")
    assert sample(stream.metrics(), "switchyard_stream_connections_total", result="refused", **key) >= 1

    # an endpoint that refuses connections: counted by endpoint
    dead = free_port()
    controller.ok("PUT", "/api/v1/upstreams/tcp-metrics", {"endpoints": [{"address": f"127.0.0.1:{dead}"}]})
    put(controller, "metered", {"listen": port, "upstream": "tcp-metrics"})

    def failures_after_a_try():
        assert reaches(port, 1) == [None]
        return sample(stream.metrics(), "switchyard_stream_connect_failures_total", stream="metered",
                      endpoint=f"127.0.0.1:{dead}")

    wait_until(lambda: failures_after_a_try() >= 1, 3, what="a connect failure counted")

    # the versions it runs, as in Redis
    m = stream.metrics()
    assert sample(m, "switchyard_stream_applied_version", kind="config") == int(redis.get(BASE + "version"))
    assert sample(m, "switchyard_stream_listeners", protocol="tcp") >= 1
    controller.ok("DELETE", "/api/v1/streams/metered")


def test_removed_udp_port_drains_its_sessions(controller, redis, stream):
    """Removing a UDP port keeps its socket for the sessions it has (their replies go out
    through it), takes no new client, and closes after the last session's idle timeout."""
    a, b = UDPEcho("da"), UDPEcho("db")
    held = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        upstream(controller, "udp-drain", a)
        port = free_port()
        put(controller, "drain", {"listen": port, "protocol": "udp", "upstream": "udp-drain", "idle_timeout_s": 2})
        wait_until(lambda: udp_ask(port, timeout=0.2) is not None, 5, what="udp listener")
        assert udp_ask(port, b"one", sock=held) == "da"
        wait_until(lambda: sample(stream.metrics(), "switchyard_stream_udp_sessions_active", stream="drain") >= 1, 3,
                   what="a session counted")
        controller.ok("DELETE", "/api/v1/streams/drain")
        # the port takes no new client once the removal applied ...
        wait_until(lambda: udp_ask(port, timeout=0.2) is None, 3, what="new clients refused")
        # ... and the session it had still gets its replies (its traffic keeps it alive)
        for i in range(3):
            assert udp_ask(port, b"more%d" % i, sock=held) == "da"
            time.sleep(0.3)
        # idle past the timeout: the session ends and the socket closes (watched without sending,
        # which would keep the session alive)
        wait_until(lambda: sample(stream.metrics(), "switchyard_stream_udp_sessions_active", stream="drain") == 0, 5,
                   what="sessions ended")
        assert udp_ask(port, b"late", sock=held, timeout=0.3) is None
        # the port can be added again, to another endpoint
        upstream(controller, "udp-drain", b)
        put(controller, "drain", {"listen": port, "protocol": "udp", "upstream": "udp-drain", "idle_timeout_s": 2})
        wait_until(lambda: udp_ask(port, timeout=0.2) == "db", 5, what="port bound again")
        controller.ok("DELETE", "/api/v1/streams/drain")
    finally:
        held.close()
        a.close()
        b.close()


def test_runs_as_its_own_read_only_acl_user(workdir):
    """redis/acl.py's `stream` user: the role reads and subscribes (changes apply through
    pub/sub, the poll is SLOW_POLL_MS) and can write nothing."""
    from test_redis_ha import Server
    passwords = {"controller": "pw-ctl-s1", "stream": "pw-stream-s2"}
    server = Server(workdir)
    controller = role = None
    a, b = TCPEcho("acl-a"), TCPEcho("acl-b")
    try:
        env = dict(os.environ, **{f"SWITCHYARD_ACL_{r.upper()}_PASSWORD": p for r, p in passwords.items()})
        subprocess.run([sys.executable, os.path.join(ROOT, "redis", "acl.py"), "--roles", "controller,stream",
                        "--apply", server.address], env=env, check=True, timeout=30)

        def as_role(r):
            return type("RoleRedis", (), {"address": server.address, "password": passwords[r]})()

        controller = Controller(as_role("controller"), workdir, extra=["--redis-user", "switchyard-controller"])
        role = StreamRole(as_role("stream"), workdir, name="stream-acl", poll_ms=SLOW_POLL_MS,
                          extra=["--redis-user", "switchyard-stream"])
        upstream(controller, "acl-up", a)
        port = free_port()
        put(controller, "acl-stream", {"listen": port, "upstream": "acl-up"})
        wait_until(lambda: reaches(port, 1) == ["acl-a"], 3, what="the role (its own user) serves the stream")
        upstream(controller, "acl-up", b)
        wait_until(lambda: reaches(port, 1) == ["acl-b"], 3, what="endpoint change through pub/sub")
        assert "NOPERM" not in role.process.output() and "SUBSCRIBE refused" not in role.process.output()

        def cli(*args):
            return subprocess.run(["redis-cli", "-p", str(server.port), "--user", "switchyard-stream", "--pass",
                                   passwords["stream"], "--no-auth-warning", *args],
                                  capture_output=True, text=True, timeout=10).stdout
        assert "NOPERM" in cli("SET", BASE + "stream:acl-stream", "{}")
        assert "NOPERM" in cli("FCALL", "sy_apply", "1", BASE + "version", "del", "stream", "acl-stream", "", "", "")
        assert "NOPERM" in cli("PUBLISH", BASE + "events", "1 stream:x")
        assert cli("GET", BASE + "version").strip() != ""
    finally:
        for p in (role, controller):
            if p:
                p.stop()
        server.stop()
        a.close()
        b.close()


def converged(controller, timeout_ms=5000):
    """Waits (server side) until every live edge holds Redis's version and digest."""
    version = controller.status()["version"]
    r = controller.request("GET", f"/api/v1/status?wait_version={version}&timeout_ms={timeout_ms}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["converged"], body
    assert {e["digest"] for e in body["edges"] if e["live"]} == {body["digest"]}, body
    return body


def test_a_stream_is_configuration_apply_history_revert_and_edges_without_full_reload(
        controller, redis, stream, echoes, edges):
    """A stream is a kind of the configuration (docs/stream.md): POST /apply writes it (and its
    mistakes are named by field), the history records it, a revert removes it, and the HTTP
    edges replay it like any change: same digest as Redis, no full reload."""
    a = echoes[0]
    upstream(controller, "cfg-up", a)
    converged(controller)
    reloads = {e.id: edge_status(e)["syncer"]["full_reloads"] for e in edges}
    target = controller.status()["version"]
    digest_at_target = redis.get(BASE + "digest")

    # /apply names a bad stream's field, and a port two streams of the batch share
    port, other = free_port(), free_port()
    r = controller.request("POST", "/api/v1/apply", {"streams": [{"id": "cfg", "listen": 0, "upstream": "cfg-up"}]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "streams[0].listen", r.text
    r = controller.request("POST", "/api/v1/apply", {"streams": [{"id": "cfg", "listen": port, "upstream": "nope"}]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "streams[0].upstream", r.text
    r = controller.request("POST", "/api/v1/apply", {"streams": [
        {"id": "cfg", "listen": port, "upstream": "cfg-up"}, {"id": "cfg-2", "listen": port, "upstream": "cfg-up"}]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "port_conflict", r.text
    assert r.json()["error"]["field"] in ("streams[0].listen", "streams[1].listen"), r.text
    r = controller.request("POST", "/api/v1/apply?dry_run=true",
                           {"streams": [{"id": "cfg", "listen": port, "upstream": "cfg-up"}]})
    assert r.status_code == 200 and r.json()["changes"]["created"][0]["kind"] == "stream", r.text
    assert controller.status()["version"] == target

    # written by /apply, with a route in the same change: served
    r = controller.request("POST", "/api/v1/apply", {
        "routes": [{"id": "cfg-route", "host": "cfg.example.com", "path": "/", "upstream": "cfg-up"}],
        "streams": [{"id": "cfg", "listen": port, "upstream": "cfg-up"},
                    {"id": "cfg-udp", "listen": other, "protocol": "udp", "upstream": "cfg-up"}]})
    assert r.status_code == 200, r.text
    applied = r.json()["version"]
    wait_until(lambda: reaches(port, 1) == ["a"], 3, what="the stream /apply wrote")
    entry = controller.ok("GET", f"/api/v1/history/{applied}")
    kinds = sorted((o["kind"], o["id"], o["op"]) for o in entry["objects"])
    assert kinds == [("route", "cfg-route", "created"), ("stream", "cfg", "created"),
                     ("stream", "cfg-udp", "created")], entry
    # the edges replayed it: Redis's digest (streams included), without a full reload
    body = converged(controller)
    assert body["digest"] != digest_at_target
    assert {e.id: edge_status(e)["syncer"]["full_reloads"] for e in edges} == reloads

    # a changed stream (another port) through PUT: the edges follow the same way
    moved = free_port()
    put(controller, "cfg", {"listen": moved, "upstream": "cfg-up"})
    wait_until(lambda: reaches(moved, 1) == ["a"] and not listening(port), 3, what="the moved stream")
    converged(controller)
    assert {e.id: edge_status(e)["syncer"]["full_reloads"] for e in edges} == reloads

    # revert to before the streams: they are gone, the listeners close, the digest is back
    r = controller.request("POST", "/api/v1/revert", {"to_version": target})
    assert r.status_code == 200, r.text
    assert redis.get(BASE + "digest") == digest_at_target == r.json()["digest"]
    assert controller.request("GET", "/api/v1/streams/cfg").status_code == 404
    wait_until(lambda: not listening(moved), 3, what="the reverted stream's listener closing")
    converged(controller)
    assert {e.id: edge_status(e)["syncer"]["full_reloads"] for e in edges} == reloads
