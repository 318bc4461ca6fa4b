"""The client's real address behind load balancers (issue 22, docs/traffic-policies.md
"Several edges behind a load balancer"): `switchyard edge --trusted-proxies` believes
X-Forwarded-For from trusted peers only, `--proxy-protocol` takes the address from a PROXY
protocol v1/v2 header. allow/deny, rate_limit by ip, X-Real-IP, X-Forwarded-For and the access
log then see the client. Real redis-server, controller, nginx edges; the trusted and the
untrusted peer are two loopback addresses (127.0.0.2 and 127.0.0.1)."""
import http.client
import json
import os
import socket
import struct

import pytest

from harness import Edge, put_route, wait_until

HOST = "client.example.com"
TRUSTED = "127.0.0.2"     # the "load balancer"
UNTRUSTED = "127.0.0.1"   # a client reaching the edge directly


def _loopback_alias_usable():
    try:
        with socket.socket() as s:
            s.bind((TRUSTED, 0))
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _loopback_alias_usable(), reason="127.0.0.2 not bindable")


def get(edge, path, source, headers=None):
    """GET through a connection from `source`; (status, parsed JSON or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=5, source_address=(source, 0))
    try:
        conn.request("GET", path, headers=dict(headers or {}, Host=HOST))
        r = conn.getresponse()
        body = r.read()
        try:
            return r.status, json.loads(body)
        except ValueError:
            return r.status, body.decode(errors="replace")
    finally:
        conn.close()


def proxied(edge, path, source, header):
    """One HTTP/1.1 request on a raw connection from `source` that starts with `header` (a
    PROXY protocol header, or b""); the status code, or None when nginx closed the connection
    without an answer."""
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5,
                                  source_address=(source, 0)) as s:
        s.sendall(header + f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        for _ in range(1000):   # bounded: Connection: close ends it
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:
        return None, b""
    return int(data.split(b" ", 2)[1]), data


def proxy_v1(client, port=40000):
    return f"PROXY TCP4 {client} 127.0.0.1 {port} 80\r\n".encode()


def proxy_v2(client, port=40000):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addrs = socket.inet_aton(client) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", port, 80)
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(addrs)) + addrs


@pytest.fixture(scope="module")
def up(controller, backends):
    controller.upstream("client-addr", backends["b1"].port)
    for rid, path, options in [
        ("ca-allow", "/allow", {"allow": ["10.1.2.3"]}),
        ("ca-deny", "/deny", {"deny": ["10.1.2.3"]}),
        ("ca-open", "/open", {}),
        ("ca-rate", "/rate", {"rate_limit": {"rps": 1, "burst": 0}}),
    ]:
        put_route(controller, rid, {"host": HOST, "path": path, "match": "prefix",
                                    "upstream": "client-addr", **options})
    return "client-addr"


@pytest.fixture(scope="module")
def xff_edge(redis, controller, workdir, up):
    e = Edge(redis, workdir, "edge-xff", workers=1, extra=["--trusted-proxies", f"{TRUSTED}/32,10.200.0.0/16"])
    wait_until(lambda: get(e, "/rate/warm", UNTRUSTED)[0] in (200, 429), 20, what="routes on edge-xff")
    yield e
    e.stop()


@pytest.fixture(scope="module")
def pp_edge(redis, controller, workdir, up):
    e = Edge(redis, workdir, "edge-pp", workers=1,
             extra=["--trusted-proxies", TRUSTED, "--proxy-protocol"])
    wait_until(lambda: proxied(e, "/open", TRUSTED, proxy_v1("10.9.9.9"))[0] == 200, 20,
               what="routes on edge-pp")
    yield e
    e.stop()


def test_forwarded_for_from_an_untrusted_peer_is_ignored(xff_edge):
    spoof = {"X-Forwarded-For": "10.1.2.3"}
    # the peer 127.0.0.1 is not trusted: its X-Forwarded-For is passed on, not believed
    assert get(xff_edge, "/allow", UNTRUSTED, spoof)[0] == 403
    assert get(xff_edge, "/deny", UNTRUSTED, spoof)[0] == 200
    status, echo = get(xff_edge, "/open", UNTRUSTED, spoof)
    assert status == 200
    assert echo["headers"]["x-real-ip"] == UNTRUSTED
    assert echo["headers"]["x-forwarded-for"] == f"10.1.2.3, {UNTRUSTED}"


def test_forwarded_for_from_a_trusted_peer_is_the_client(xff_edge):
    client = {"X-Forwarded-For": "10.1.2.3"}
    # the same headers from the trusted peer: the decisions flip
    assert get(xff_edge, "/allow", TRUSTED, client)[0] == 200
    assert get(xff_edge, "/deny", TRUSTED, client)[0] == 403
    status, echo = get(xff_edge, "/open", TRUSTED, client)
    assert status == 200
    assert echo["headers"]["x-real-ip"] == "10.1.2.3"
    # the chain as received plus the peer that sent it, not the client twice
    assert echo["headers"]["x-forwarded-for"] == f"10.1.2.3, {TRUSTED}"
    # recursive: walked from the right past trusted addresses only; what a client wrote at
    # the left of the chain does not count
    assert get(xff_edge, "/allow", TRUSTED, {"X-Forwarded-For": "10.1.2.3, 10.5.5.5"})[0] == 403
    assert get(xff_edge, "/allow", TRUSTED, {"X-Forwarded-For": "10.5.5.5, 10.1.2.3, 10.200.1.1"})[0] == 200
    # a trusted peer that sends no X-Forwarded-For is the client itself
    status, echo = get(xff_edge, "/open", TRUSTED)
    assert status == 200 and echo["headers"]["x-real-ip"] == TRUSTED
    assert get(xff_edge, "/allow", TRUSTED)[0] == 403


def test_rate_limit_by_ip_keys_on_the_client_behind_the_proxy(xff_edge):
    a, b = {"X-Forwarded-For": "10.7.0.1"}, {"X-Forwarded-For": "10.7.0.2"}
    assert get(xff_edge, "/rate", TRUSTED, a)[0] == 200
    assert get(xff_edge, "/rate", TRUSTED, a)[0] == 429
    # another client behind the same load balancer has its own bucket
    assert get(xff_edge, "/rate", TRUSTED, b)[0] == 200


def test_access_log_names_the_client(xff_edge):
    get(xff_edge, "/open/logged-client", TRUSTED, {"X-Forwarded-For": "10.66.0.7"})
    log = os.path.join(xff_edge.prefix, "logs", "access.log")

    def logged():
        with open(log) as f:
            return [line for line in f if "/open/logged-client" in line]
    lines = wait_until(logged, 5, what="access log line (flush=1s)")
    assert lines[-1].startswith("10.66.0.7 ")


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_proxy_protocol_from_a_trusted_peer_gives_the_client(pp_edge, version):
    header = (proxy_v1 if version == "v1" else proxy_v2)("10.1.2.3")
    assert proxied(pp_edge, "/allow", TRUSTED, header)[0] == 200
    assert proxied(pp_edge, "/deny", TRUSTED, header)[0] == 403
    other = (proxy_v1 if version == "v1" else proxy_v2)("10.4.4.4")
    assert proxied(pp_edge, "/allow", TRUSTED, other)[0] == 403
    status, data = proxied(pp_edge, "/open", TRUSTED, header)
    assert status == 200
    echo = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert echo["headers"]["x-real-ip"] == "10.1.2.3"
    assert echo["headers"]["x-forwarded-for"] == "10.1.2.3"


def test_proxy_protocol_from_an_untrusted_peer_is_ignored(pp_edge):
    # the header parses, but 127.0.0.1 is not trusted: the client is the peer
    assert proxied(pp_edge, "/allow", UNTRUSTED, proxy_v1("10.1.2.3"))[0] == 403
    assert proxied(pp_edge, "/deny", UNTRUSTED, proxy_v1("10.1.2.3"))[0] == 200
    # X-Forwarded-For means nothing on a PROXY protocol listener
    hdr = proxy_v1("10.4.4.4")
    req = b"X-Forwarded-For: 10.1.2.3\r\n"
    with socket.create_connection(("127.0.0.1", pp_edge.port), timeout=5,
                                  source_address=(TRUSTED, 0)) as s:
        s.sendall(hdr + f"GET /allow HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n".encode()
                  + req + b"\r\n")
        assert s.recv(65536).split(b" ", 2)[1] == b"403"


def test_a_connection_without_the_proxy_header_is_refused(pp_edge):
    status, _ = proxied(pp_edge, "/open", TRUSTED, b"")
    assert status is None  # nginx closes it: broken header
