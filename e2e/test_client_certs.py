"""Client certificates (mTLS, issue 22 item 7), end to end: a certificate stored with
`client_ca` makes the edges ask the clients of its names for a certificate issued by one of
those CAs, chosen per SNI name and changed without a reload; "required" refuses handshakes
without one, both modes refuse one that does not verify; other names never ask. Clients
are curl with --cert; certificates are made at test time with the openssl CLI."""
import base64
import json
import os
import subprocess

import pytest

from harness import Controller, Edge, Redis, free_port, start_backends, wait_until
from test_tls import CA

CERT_KEY = base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(scope="module")
def stack(workdir):
    redis = Redis(workdir)
    controller = Controller(redis, workdir, env={"SWITCHYARD_CERT_KEY": CERT_KEY})
    tls_port = free_port()
    edge = Edge(redis, workdir, "mtls-edge", env={"SWITCHYARD_CERT_KEY": CERT_KEY},
                extra=["--listen-tls", f"127.0.0.1:{tls_port}"])
    edge.tls_port = tls_port
    bs = start_backends("m1")
    port = bs["m1"].server_address[1]
    controller.ok("PUT", "/api/v1/upstreams/app", {"endpoints": [{"address": f"127.0.0.1:{port}"}]})
    for host in ("secure.test", "open.test"):
        controller.ok("PUT", f"/api/v1/routes/{host.split('.')[0]}",
                      {"host": host, "path": "/", "upstream": "app"})
    servers = CA(os.path.join(workdir, "server-ca"), "Server CA")
    clients = CA(os.path.join(workdir, "client-ca"), "Client CA")
    rogue = CA(os.path.join(workdir, "rogue-ca"), "Rogue CA")
    yield controller, edge, servers, clients, rogue
    for b in bs.values():
        b.shutdown()
        b.server_close()
    edge.stop()
    controller.stop()
    redis.stop()


def curl(edge, servers, host, cert=None):
    """(HTTP status or None when the handshake failed, curl's stderr)."""
    args = ["curl", "-s", "-S", "--max-time", "3", "-o", "/dev/null", "-w", "%{http_code}",
            "--cacert", servers.cert, "--resolve", f"{host}:{edge.tls_port}:127.0.0.1"]
    if cert:
        args += ["--cert", cert + ".crt", "--key", cert + ".key"]
    out = subprocess.run(args + [f"https://{host}:{edge.tls_port}/"], capture_output=True,
                         text=True, timeout=10)
    code = out.stdout.strip()
    return (int(code) if code not in ("", "000") else None), out.stderr


def put_cert(controller, cid, leaf, **extra):
    return controller.request("PUT", f"/api/v1/certificates/{cid}",
                              {"cert": leaf[0], "key": leaf[1], **extra})


def pem(path):
    with open(path) as f:
        return f.read()


def test_bad_client_ca_and_verify_client_are_refused_by_field(stack):
    controller, edge, servers, clients, _ = stack
    leaf = servers.leaf("bad", ["bad.test"])
    cases = [
        ({"client_ca": "not a pem"}, "client_ca"),
        ({"client_ca": leaf[1]}, "client_ca"),                 # a private key
        ({"client_ca": 5}, "client_ca"),
        ({"client_ca": pem(clients.cert), "verify_client": "sometimes"}, "verify_client"),
        ({"verify_client": "required"}, "verify_client"),     # without client_ca
    ]
    for extra, field in cases:
        r = put_cert(controller, "bad-mtls", leaf, **extra)
        assert r.status_code == 422, (extra, r.text)
        assert [d["field"] for d in r.json()["error"]["details"]] == [field], r.text
        assert controller.request("GET", "/api/v1/certificates/bad-mtls").status_code == 404


def test_required_client_certificates_per_sni_name_without_reload(stack):
    controller, edge, servers, clients, rogue = stack
    master_before = edge.pids()[0]
    good = clients.leaf("alice", [])[2]
    bad = rogue.leaf("mallory", [])[2]
    r = put_cert(controller, "secure", servers.leaf("secure", ["secure.test"]),
                 client_ca=pem(clients.cert))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["verify_client"] == "required" and "BEGIN CERTIFICATE" in body["client_ca"]
    assert put_cert(controller, "open", servers.leaf("open", ["open.test"])).status_code == 201

    wait_until(lambda: curl(edge, servers, "secure.test", good)[0] == 200, 5,
               what="secure.test served with a client certificate")
    # no certificate, or one of another CA: the handshake is refused
    status, err = curl(edge, servers, "secure.test")
    assert status is None, (status, err)
    status, err = curl(edge, servers, "secure.test", bad)
    assert status is None, (status, err)
    # a name whose certificate has no client_ca never asks
    assert curl(edge, servers, "open.test")[0] == 200
    assert curl(edge, servers, "open.test", bad)[0] == 200

    # optional: none is accepted, a certificate that does not verify is still refused
    r = put_cert(controller, "secure", servers.leaf("secure", ["secure.test"]),
                 client_ca=pem(clients.cert), verify_client="optional")
    assert r.status_code == 200, r.text
    wait_until(lambda: curl(edge, servers, "secure.test")[0] == 200, 5,
               what="optional: served without a client certificate")
    assert curl(edge, servers, "secure.test", good)[0] == 200
    assert curl(edge, servers, "secure.test", bad)[0] is None

    # client_ca removed: no certificate asked for at all, a rogue one is not even read
    assert put_cert(controller, "secure", servers.leaf("secure", ["secure.test"])).status_code == 200
    wait_until(lambda: curl(edge, servers, "secure.test", bad)[0] == 200, 5,
               what="client_ca removed")
    # all of it without a reload: the same nginx master
    assert edge.pids()[0] == master_before
