"""TLS to Redis (issue 20 item 4, docs/redis-ha.md): a redis-server that listens with TLS
only (`port 0`, `tls-port`, `tls-auth-clients yes`), certificates made with the openssl CLI
(a CA, the server's, a client's). The controller, the prober, the stream role and two edges
work over TLS; plain text and a client without a certificate are refused."""
import os
import shutil
import socket
import ssl
import subprocess

import pytest

from harness import BASE, Controller, Edge, Process, Prober, free_port, start_backends, wait_until
from stream_support import StreamRole, TCPEcho, connect, echo_once
from tls_support import TLSRedis, make_certificates, tls_flags

CHECK = {"type": "http", "path": "/healthz", "interval_ms": 200, "timeout_ms": 100, "rise": 1, "fall": 1}


@pytest.fixture(scope="module")
def certs(workdir):
    d = os.path.join(workdir, "certs")
    os.makedirs(d)
    return make_certificates(d)


@pytest.fixture(scope="module")
def tls_redis(workdir, certs):
    server = TLSRedis(workdir, certs)
    yield server
    server.stop()


def test_plain_text_is_refused(tls_redis):
    # the TLS port does not speak plain RESP: the server drops the connection
    with socket.create_connection(("127.0.0.1", tls_redis.port), timeout=5) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        try:
            data = s.recv(64)
        except ConnectionResetError:
            data = b""
        assert b"PONG" not in data
    # and there is no plain-text port at all (port 0)
    out = subprocess.run(["redis-cli", "-p", str(tls_redis.port), "PING"], capture_output=True, timeout=10)
    assert b"PONG" not in out.stdout


def test_a_client_without_a_certificate_is_refused(tls_redis, certs):
    out = subprocess.run(["redis-cli", "-p", str(tls_redis.port), "--tls", "--cacert", certs["ca.pem"], "PING"],
                         capture_output=True, timeout=10)
    assert b"PONG" not in out.stdout
    # the same with Python's TLS client: the handshake or the first read fails
    context = ssl.create_default_context(cafile=certs["ca.pem"])
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        with socket.create_connection(("127.0.0.1", tls_redis.port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                if not s.recv(64):
                    raise ConnectionError("closed")


def test_the_stack_works_over_tls_only(tls_redis, certs, workdir):
    flags = tls_flags(certs)
    backends = start_backends("t1", "t2")
    echo = TCPEcho("s1")
    controller = prober = stream = None
    edges = []
    try:
        controller = Controller(tls_redis, workdir, extra=flags)
        controller.ok("PUT", "/api/v1/upstreams/tls-pool",
                      {"endpoints": [{"address": f"127.0.0.1:{b.port}"} for b in backends.values()],
                       "health_check": CHECK})
        controller.route("tls", "tls.test", "/", "tls-pool")
        assert tls_redis.get(BASE + "route:tls") is not None, "the route went into Redis over TLS"

        edges = [Edge(tls_redis, workdir, f"tls-edge-{i}", extra=flags) for i in (1, 2)]
        for edge in edges:
            wait_until(lambda e=edge: e.backend("/", "tls.test") in ("t1", "t2"), 15,
                       what=f"{edge.id} (syncer over TLS) serves the route")
            wait_until(lambda e=edge: tls_redis.cli("EXISTS", BASE + "edge:" + e.id) == "1", 10,
                       what=f"{edge.id}'s registration")

        # a route changed later arrives through the subscription (pub/sub over TLS)
        controller.route("tls2", "tls2.test", "/", "tls-pool")
        for edge in edges:
            wait_until(lambda e=edge: e.backend("/", "tls2.test") in ("t1", "t2"), 10,
                       what=f"{edge.id} serves the new route")

        prober = Prober(tls_redis, workdir, "tls-prober", extra=flags)
        # both endpoints up: the prober read the upstream and wrote its verdicts over TLS
        wait_until(lambda: [r.get("state") for r in prober.health("tls-pool").values()] == ["up", "up"], 15,
                   what="the prober's verdicts, written over TLS")

        stream = StreamRole(tls_redis, workdir, name="tls-stream", extra=flags)
        port = free_port()
        controller.ok("PUT", "/api/v1/upstreams/tls-echo", {"endpoints": [{"address": f"127.0.0.1:{echo.port}"}]})
        controller.ok("PUT", "/api/v1/streams/tls-echo", {"listen": port, "upstream": "tls-echo", "protocol": "tcp"})

        def relays():
            s, name = connect(port, timeout=0.5)
            try:
                return echo_once(s) == b"ping" and name == "s1"
            finally:
                s.close()
        wait_until(relays, 15, what="the stream role (over TLS) relays the stream")
    finally:
        for part in [stream, prober, *edges, controller]:
            if part is not None:
                part.stop()
        echo.close()
        for b in backends.values():
            b.shutdown()
            b.server_close()


def test_sentinel_over_tls(tls_redis, certs, workdir):
    """A sentinel with a TLS port only (tls-replication: it talks TLS to the master too): the
    controller and an edge find the master through it, both over TLS."""
    d = os.path.join(workdir, "sentinel-tls")
    os.makedirs(d)
    port = free_port()
    conf = os.path.join(d, "sentinel.conf")
    with open(conf, "w") as f:
        f.write(f"port 0\ntls-port {port}\nbind 127.0.0.1\ndir {d}\n"
                f"tls-cert-file {certs['server.pem']}\ntls-key-file {certs['server.key']}\n"
                f"tls-client-cert-file {certs['client.pem']}\ntls-client-key-file {certs['client.key']}\n"
                f"tls-ca-cert-file {certs['ca.pem']}\ntls-auth-clients yes\ntls-replication yes\n"
                f"sentinel monitor sy 127.0.0.1 {tls_redis.port} 1\n")
    sentinel = Process(f"sentinel-tls-{port}", [shutil.which("redis-server") or "redis-server", conf, "--sentinel"],
                       log_dir=d)
    flags = tls_flags(certs) + ["--redis-sentinel", f"127.0.0.1:{port}", "--redis-master", "sy"]
    backends = start_backends("st1")
    controller = edge = None
    try:
        def knows_master():
            out = subprocess.run(["redis-cli", "-p", str(port), "--tls", "--cacert", certs["ca.pem"], "--cert",
                                  certs["client.pem"], "--key", certs["client.key"], "SENTINEL",
                                  "get-master-addr-by-name", "sy"], capture_output=True, text=True, timeout=5)
            return str(tls_redis.port) in out.stdout
        wait_until(knows_master, 15, what="the TLS sentinel to know the master")
        controller = Controller(tls_redis, workdir, extra=flags)
        controller.upstream("st-pool", *[b.port for b in backends.values()])
        controller.route("st", "sentinel-tls.test", "/", "st-pool")
        edge = Edge(tls_redis, workdir, "tls-sentinel-edge", extra=flags)
        wait_until(lambda: edge.backend("/", "sentinel-tls.test") == "st1", 15,
                   what="the edge (master found through the TLS sentinel) serves the route")
    finally:
        for part in [edge, controller, sentinel]:
            if part is not None:
                part.stop()
        for b in backends.values():
            b.shutdown()
            b.server_close()
