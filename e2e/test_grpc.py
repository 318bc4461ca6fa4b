"""gRPC through the edges (issue 22 item 5), end to end with a real gRPC client and real gRPC
servers (PyPI grpcio) on loopback: upstreams with "protocol": "grpc" (h2c to the
endpoints) and "grpcs" (TLS, verified), reached over the edge's h2c listener
(--listen-h2c) and its TLS listener (HTTP/2 by ALPN); unary and server-streaming calls,
balancing across two servers, an endpoint killed mid-stream, failures answered as gRPC
statuses; the controller's 422s for what makes no sense with gRPC.

The servers use generic handlers on raw bytes (no protoc, no generated stubs): the
payloads are JSON. Each server runs in its own process (this file run as a script), so
"killed" is a SIGKILL: its connections drop without a goodbye."""
import base64
import json
import os
import signal
import subprocess
import sys
import time

import grpc
import pytest

from harness import Controller, Edge, Redis, free_port, wait_until
from test_tls import CA

CERT_KEY = base64.b64encode(os.urandom(32)).decode()
HOST = "grpc.test"
SERVICE = "sy.Echo"


# --- the gRPC servers (run as: python3 test_grpc.py NAME [CERT KEY]) -------------------

def _serve(name, cert=None, key=None):
    from concurrent import futures

    def unary(request, context):
        req = json.loads(request or b"{}")
        if req.get("sleep"):
            time.sleep(req["sleep"])
        meta = {k: v for k, v in context.invocation_metadata()}
        return json.dumps({"backend": name, "echo": req.get("echo"), "meta": meta}).encode()

    def stream(request, context):
        req = json.loads(request)
        for i in range(req["n"]):
            yield json.dumps({"backend": name, "i": i}).encode()
            time.sleep(req.get("delay", 0))

    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((handler,))
    if cert:
        with open(cert, "rb") as c, open(key, "rb") as k:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination(timeout=600)   # bounded: a forgotten server ends by itself


class GRPCServer:
    """A gRPC server in its own process; .port, .address, .kill()."""

    def __init__(self, name, cert=None, key=None):
        self.name = name
        argv = [sys.executable, os.path.abspath(__file__), name] + ([cert, key] if cert else [])
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        line = self.proc.stdout.readline()
        assert line.strip().isdigit(), f"gRPC server {name} did not start"
        self.port = int(line)
        self.address = f"127.0.0.1:{self.port}"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


# --- the client --------------------------------------------------------------------------

def h2c_channel(edge, host=HOST):
    return grpc.insecure_channel(f"127.0.0.1:{edge.h2c_port}",
                                 options=[("grpc.default_authority", host),
                                          ("grpc.enable_retries", 0)])


def tls_channel(edge, ca, host=HOST):
    with open(ca.cert, "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    return grpc.secure_channel(f"127.0.0.1:{edge.tls_port}", creds,
                               options=[("grpc.ssl_target_name_override", host),
                                        ("grpc.default_authority", host),
                                        ("grpc.enable_retries", 0)])


def unary(channel, body=None, timeout=10):
    call = channel.unary_unary(f"/{SERVICE}/Unary")
    return json.loads(call(json.dumps(body or {}).encode(), timeout=timeout))


def stream(channel, n, delay=0.0, timeout=30):
    call = channel.unary_stream(f"/{SERVICE}/Stream")
    return call(json.dumps({"n": n, "delay": delay}).encode(), timeout=timeout)


def rpc_error(fn):
    """The grpc.RpcError fn raises (the test fails if it returns)."""
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value


# --- the stack ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ca(workdir):
    return CA(os.path.join(workdir, "ca"))


@pytest.fixture(scope="module")
def stack(workdir, ca):
    """Redis, a controller, one edge with an h2c and a TLS listener (trusting the test CA
    for upstreams), a certificate for grpc.test, two cleartext gRPC servers and a TLS one."""
    redis = Redis(workdir)
    controller = Controller(redis, workdir, env={"SWITCHYARD_CERT_KEY": CERT_KEY})
    tls_port, h2c_port = free_port(), free_port()
    edge = Edge(redis, workdir, "grpc-edge", env={"SWITCHYARD_CERT_KEY": CERT_KEY},
                extra=["--listen-tls", f"127.0.0.1:{tls_port}", "--listen-h2c",
                       f"127.0.0.1:{h2c_port}", "--upstream-ca", ca.cert])
    edge.tls_port, edge.h2c_port = tls_port, h2c_port
    cert, key, _ = ca.leaf("grpc", [HOST])
    r = controller.request("PUT", "/api/v1/certificates/grpc-test", {"cert": cert, "key": key})
    assert r.status_code == 201, r.text
    servers = {"g1": GRPCServer("g1"), "g2": GRPCServer("g2")}
    _, _, base = ca.leaf("backend", ["backend.internal"])
    servers["gs"] = GRPCServer("gs", base + ".crt", base + ".key")
    yield controller, edge, servers
    for s in servers.values():
        s.kill()
    edge.stop()
    controller.stop()
    redis.stop()


def put_upstream(controller, name, servers, **fields):
    body = {"endpoints": [{"address": s.address} for s in servers], "protocol": "grpc", **fields}
    return controller.ok("PUT", f"/api/v1/upstreams/{name}", body)


def put_route(controller, rid, upstream, host=HOST, path="/", **fields):
    return controller.ok("PUT", f"/api/v1/routes/{rid}",
                         {"host": host, "path": path, "upstream": upstream, **fields})


def served_by(channel, expect, timeout=5):
    """Waits until a unary call is answered by a backend in expect (the edge applied the
    change), and returns that answer."""
    seen = {}

    def check():
        try:
            seen["r"] = unary(channel, timeout=2)
        except grpc.RpcError as e:
            seen["r"] = e
            return False
        return seen["r"]["backend"] in expect
    wait_until(check, timeout, what=f"a call answered by {expect} (last: {seen.get('r')})")
    return seen["r"]


# --- tests -------------------------------------------------------------------------------

def test_the_controller_refuses_what_makes_no_sense_with_grpc(stack):
    controller, edge, servers = stack
    eps = [{"address": servers["g1"].address}]
    cases = [
        ({"protocol": "h2"}, "protocol"),
        ({"protocol": "grpc", "scheme": "https"}, "scheme"),
        ({"protocol": "grpc", "tls_verify": True}, "tls_verify"),
        ({"protocol": "grpc", "balance": "sticky"}, "balance"),
        ({"protocol": "grpcs", "health_check": {"type": "http", "path": "/healthz"}},
         "health_check.type"),
    ]
    for extra, field in cases:
        r = controller.request("PUT", "/api/v1/upstreams/bad-grpc", {"endpoints": eps, **extra})
        assert r.status_code == 422, (extra, r.status_code, r.text)
        fields = [d["field"] for d in r.json()["error"]["details"]]
        assert fields == [field], (extra, r.text)
        # nothing was written
        assert controller.request("GET", "/api/v1/upstreams/bad-grpc").status_code == 404
    # and the document of a good one says what it is
    put_upstream(controller, "doc-grpc", [servers["gs"]], protocol="grpcs",
                 tls_server_name="backend.internal", tls_verify=True)
    doc = controller.ok("GET", "/api/v1/upstreams/doc-grpc")
    assert doc["protocol"] == "grpcs" and "scheme" not in doc and doc["tls_verify"] is True


def test_unary_and_streaming_over_h2c_balanced_across_two_servers(stack):
    controller, edge, servers = stack
    put_upstream(controller, "echo", [servers["g1"], servers["g2"]])
    put_route(controller, "grpc-echo", "echo")
    with h2c_channel(edge) as ch:
        served_by(ch, {"g1", "g2"})
        counts = {"g1": 0, "g2": 0}
        for i in range(40):
            r = unary(ch, {"echo": f"hello {i}"})
            assert r["echo"] == f"hello {i}"
            counts[r["backend"]] += 1
        # round robin per worker: both servers take a real share
        assert counts["g1"] >= 10 and counts["g2"] >= 10, counts
        # metadata the edge adds, as for HTTP upstreams
        meta = unary(ch)["meta"]
        assert meta.get("x-real-ip") == "127.0.0.1", meta
        assert meta.get("x-forwarded-for") == "127.0.0.1", meta
        assert meta.get("x-request-id"), meta
        # server streaming: every message, in order, from one server
        msgs = [json.loads(m) for m in stream(ch, 20, delay=0.01)]
        assert [m["i"] for m in msgs] == list(range(20))
        assert len({m["backend"] for m in msgs}) == 1

    # weights: 3:1
    controller.ok("PUT", "/api/v1/upstreams/echo",
                  {"protocol": "grpc", "endpoints": [{"address": servers["g1"].address, "weight": 3},
                                                     {"address": servers["g2"].address, "weight": 1}]})
    with h2c_channel(edge) as ch:
        wait_until(lambda: sum(unary(ch)["backend"] == "g1" for _ in range(8)) == 6, 5,
                   what="weights 3:1 applied")
        counts = {"g1": 0, "g2": 0}
        for _ in range(40):
            counts[unary(ch)["backend"]] += 1
        assert 25 <= counts["g1"] <= 35, counts


def test_over_the_tls_listener_http2(stack, ca):
    controller, edge, servers = stack
    put_upstream(controller, "echo", [servers["g1"], servers["g2"]])
    put_route(controller, "grpc-echo", "echo")
    with tls_channel(edge, ca) as ch:
        served_by(ch, {"g1", "g2"})
        seen = {unary(ch)["backend"] for _ in range(10)}
        assert seen == {"g1", "g2"}
        assert [json.loads(m)["i"] for m in stream(ch, 5)] == list(range(5))
        assert unary(ch)["meta"].get("x-forwarded-proto") == "https"


def test_grpcs_upstream_verified_against_the_edge_ca(stack):
    controller, edge, servers = stack
    put_upstream(controller, "secure", [servers["gs"]], protocol="grpcs",
                 tls_server_name="backend.internal", tls_verify=True)
    put_route(controller, "grpc-secure", "secure", host="secure.grpc.test")
    with h2c_channel(edge, "secure.grpc.test") as ch:
        assert served_by(ch, {"gs"})["backend"] == "gs"
        assert [json.loads(m)["backend"] for m in stream(ch, 3)] == ["gs"] * 3
        # a name the certificate does not carry fails verification: a gRPC status, not HTML
        put_upstream(controller, "secure", [servers["gs"]], protocol="grpcs",
                     tls_server_name="other.internal", tls_verify=True)

        def refused():
            try:
                unary(ch, timeout=3)
                return False
            except grpc.RpcError as e:
                return e.code() == grpc.StatusCode.UNAVAILABLE
        wait_until(refused, 5, what="verification failure answered UNAVAILABLE")
        # not verified: served again (over TLS: the server speaks nothing else)
        put_upstream(controller, "secure", [servers["gs"]], protocol="grpcs",
                     tls_server_name="other.internal")
        assert served_by(ch, {"gs"})["backend"] == "gs"


def test_failures_are_grpc_statuses(stack):
    controller, edge, servers = stack
    # no endpoints: answered at the edge
    controller.ok("PUT", "/api/v1/upstreams/empty", {"protocol": "grpc", "endpoints": []})
    put_route(controller, "grpc-empty", "empty", host="empty.grpc.test")
    with h2c_channel(edge, "empty.grpc.test") as ch:
        def unavailable():
            try:
                unary(ch, timeout=2)
            except grpc.RpcError as e:
                return e.code() == grpc.StatusCode.UNAVAILABLE and e.details() == "no endpoints"
            return False
        wait_until(unavailable, 5, what="UNAVAILABLE 'no endpoints'")
        err = rpc_error(lambda: list(stream(ch, 3)))
        assert err.code() == grpc.StatusCode.UNAVAILABLE
    # on the wire: HTTP 200, application/grpc, the status in the trailers (not a 503 page)
    out = subprocess.run(["curl", "-sv", "--max-time", "3", "--http2-prior-knowledge",
                          "-H", "content-type: application/grpc", "-H", "te: trailers",
                          "-H", "Host: empty.grpc.test", "--data-binary", "",
                          f"http://127.0.0.1:{edge.h2c_port}/{SERVICE}/Unary"],
                         capture_output=True, text=True, timeout=10).stderr
    assert "< HTTP/2 200" in out and "< content-type: application/grpc" in out, out
    assert "< grpc-status: 14" in out and "< grpc-message: no endpoints" in out, out
    assert "< x-switchyard-route: grpc-empty" in out, out

    # the upstream is down (nothing listens): nginx's 502 becomes UNAVAILABLE
    dead = free_port()
    controller.ok("PUT", "/api/v1/upstreams/dead",
                  {"protocol": "grpc", "endpoints": [{"address": f"127.0.0.1:{dead}"}],
                   "on_all_down": "fail_open"})
    put_route(controller, "grpc-dead", "dead", host="dead.grpc.test")
    with h2c_channel(edge, "dead.grpc.test") as ch:
        def down():
            try:
                unary(ch, timeout=3)
            except grpc.RpcError as e:
                return (e.code(), e.details())
            return None
        wait_until(lambda: down() == (grpc.StatusCode.UNAVAILABLE, "upstream unavailable"), 5,
                   what="UNAVAILABLE 'upstream unavailable'")

    # the upstream is too slow for the route's read timeout: DEADLINE_EXCEEDED
    put_upstream(controller, "slow", [servers["g1"]])
    put_route(controller, "grpc-slow", "slow", host="slow.grpc.test",
              timeouts={"read_ms": 300})
    with h2c_channel(edge, "slow.grpc.test") as ch:
        served_by(ch, {"g1"})
        t0 = time.monotonic()
        err = rpc_error(lambda: unary(ch, {"sleep": 2}, timeout=10))
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (err.code(), err.details())
        assert err.details() == "upstream timed out"
        assert time.monotonic() - t0 < 1.8

    # a path no route serves: the edge's 404 as the gRPC spec maps it (UNIMPLEMENTED)
    with h2c_channel(edge, "nothing.grpc.test") as ch:
        err = rpc_error(lambda: unary(ch, timeout=3))
        assert err.code() == grpc.StatusCode.UNIMPLEMENTED


def test_an_endpoint_killed_mid_stream(stack):
    controller, edge, _ = stack
    a, b = GRPCServer("k1"), GRPCServer("k2")
    try:
        put_upstream(controller, "killable", [a, b], passive={"max_fails": 1, "fail_timeout_ms": 10000})
        put_route(controller, "grpc-killable", "killable", host="kill.grpc.test")
        with h2c_channel(edge, "kill.grpc.test") as ch:
            served_by(ch, {"k1", "k2"})
            calls = stream(ch, 200, delay=0.02, timeout=30)
            first = json.loads(next(calls))
            victim, survivor = (a, b) if first["backend"] == "k1" else (b, a)
            assert json.loads(next(calls))["i"] == 1
            victim.kill()
            err = rpc_error(lambda: [None for _ in calls])
            # the client sees the stream end with an error status, never OK
            assert err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL,
                                  grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED), err.code()
            # the next calls all succeed, on the other server (a connect to the dead one is
            # retried there, then passive health takes it out)
            backends = [unary(ch)["backend"] for _ in range(20)]
            assert backends == [survivor.name] * 20, backends
            msgs = [json.loads(m)["backend"] for m in stream(ch, 5)]
            assert msgs == [survivor.name] * 5
    finally:
        a.kill()
        b.kill()


def test_http_routes_still_work_next_to_grpc(stack):
    """The h2c listener is a listener like the others: an HTTP upstream's route answers
    over it (HTTP/2 with prior knowledge, curl --http2-prior-knowledge)."""
    controller, edge, servers = stack
    from harness import start_backends
    bs = start_backends("h1")
    try:
        port = bs["h1"].server_address[1]
        controller.ok("PUT", "/api/v1/upstreams/plain",
                      {"endpoints": [{"address": f"127.0.0.1:{port}"}]})
        put_route(controller, "plain-h2c", "plain", host="plain.test")

        def curl():
            out = subprocess.run(
                ["curl", "-s", "--max-time", "3", "--http2-prior-knowledge", "-o", "/dev/null",
                 "-w", "%{http_code} %{http_version}", "-H", "Host: plain.test",
                 f"http://127.0.0.1:{edge.h2c_port}/x"], capture_output=True, text=True, timeout=10)
            return out.stdout
        wait_until(lambda: curl() == "200 2", 5, what="HTTP route over h2c")
    finally:
        for b in bs.values():
            b.shutdown()
            b.server_close()


if __name__ == "__main__":
    _serve(*sys.argv[1:])
