"""TCP stream services end to end (issue 23, docs/stream.md): real redis-server, controller,
`switchyard stream` and TCP echo endpoints on loopback. Streams are written through the admin
API (PUT /api/v1/streams/{id}), and in two places straight through the library's sy_stream."""
import json
import socket
import threading
import time

import pytest

from harness import BASE, Prober, free_port, wait_until
from stream_support import StreamRole, TCPEcho, UDPEcho, connect, echo_once, put_stream, udp_ask


@pytest.fixture(scope="module")
def echoes():
    servers = [TCPEcho("a"), TCPEcho("b"), TCPEcho("c")]
    yield servers
    for s in servers:
        s.close()


@pytest.fixture(scope="module")
def stream(redis, controller, workdir):
    role = StreamRole(redis, workdir)
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
    record = json.dumps({"prober": "test", "reason": "timeout", "since": 1, "state": "down"})
    redis.cli("HSET", BASE + "health:tcp-health", f"127.0.0.1:{b.port}", record)
    redis.cli("INCR", BASE + "health_version")
    wait_until(lambda: set(reaches(port, 4)) == {"a"}, 2, what="down endpoint out of rotation")
    redis.cli("HDEL", BASE + "health:tcp-health", f"127.0.0.1:{b.port}")
    redis.cli("INCR", BASE + "health_version")
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


def test_sy_stream_refuses_and_writes_nothing(redis, controller, stream):
    version = redis.get(BASE + "stream_version")
    out = put_stream(redis, "orphan", {"listen": free_port(), "upstream": "no-such-upstream"})
    assert "SYERR" in out and "missing_upstream" in out, out
    taken = json.loads(redis.get(BASE + "stream:echo"))["listen"]
    out = put_stream(redis, "clash", {"listen": taken, "upstream": "tcp-echo"})
    assert "port_conflict" in out and '"stream":"echo"' in out, out
    assert redis.get(BASE + "stream_version") == version
    assert redis.get(BASE + "stream:orphan") is None
    assert redis.get(BASE + "stream:clash") is None


def test_api_validation_names_fields_and_writes_nothing(redis, controller, stream):
    version = redis.get(BASE + "stream_version")
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
    assert redis.get(BASE + "stream_version") == version
    assert redis.get(BASE + "stream:bad") is None
    assert controller.request("GET", "/api/v1/streams/bad").status_code == 404
    assert controller.request("DELETE", "/api/v1/streams/bad").status_code == 404
    ids = [i["id"] for i in controller.ok("GET", "/api/v1/streams")["items"]]
    assert "echo" in ids and "bad" not in ids


def test_dry_run_checks_and_writes_nothing_and_if_match_is_refused(redis, controller, stream, echoes):
    upstream(controller, "dry-up", echoes[0])
    held = free_port()
    put(controller, "dry-held", {"listen": held, "upstream": "dry-up"})
    version = redis.get(BASE + "stream_version")
    port = free_port()
    r = controller.request("PUT", "/api/v1/streams/dry?dry_run=true", {"listen": port, "upstream": "dry-up"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dry_run"] is True and body["changed"] == 1 and body["action"] == "create", body
    r = controller.request("PUT", "/api/v1/streams/dry?dry_run=true", {"listen": held, "upstream": "dry-up"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "port_conflict", r.text
    r = controller.request("PUT", "/api/v1/streams/dry?dry_run=true", {"listen": port, "upstream": "nope"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "upstream", r.text
    r = controller.request("DELETE", "/api/v1/streams/dry-held?dry_run=true")
    assert r.status_code == 200 and r.json()["action"] == "delete", r.text
    etag = controller.request("GET", "/api/v1/routes").headers["ETag"]   # the configuration's
    r = controller.request("PUT", "/api/v1/streams/dry", {"listen": port, "upstream": "dry-up"},
                           headers={"If-Match": etag})
    assert r.status_code == 400 and r.json()["error"]["field"] == "If-Match", r.text
    assert redis.get(BASE + "stream_version") == version
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
