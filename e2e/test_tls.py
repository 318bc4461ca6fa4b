"""TLS at the edge, end to end: certificates stored through the API (validated with OpenSSL,
keys encrypted at rest), served by SNI from every edge without a reload, rotated under
open connections; https_redirect, HSTS, and HTTPS upstreams (with and without
verification). Certificates are made at test time with the openssl CLI (`openssl ca`, which
takes arbitrary start and end dates, for expired and not-yet-valid ones)."""
import base64
import hashlib
import http.client
import http.server
import json
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest

from harness import BASE, Controller, Edge, Redis, edge_status, free_port, wait_until

CERT_KEY = base64.b64encode(os.urandom(32)).decode()


# --- certificates ---------------------------------------------------------------------

class CA:
    """A throwaway CA in a directory; leaf() issues certificates with any SANs and dates."""

    CONFIG = """[ca]
default_ca = sy
[sy]
database = {d}/index.txt
serial = {d}/serial
new_certs_dir = {d}/issued
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
"""

    def __init__(self, directory, name="Switchyard Test CA"):
        self.dir = directory
        os.makedirs(os.path.join(directory, "issued"), exist_ok=True)
        open(os.path.join(directory, "index.txt"), "w").close()
        with open(os.path.join(directory, "serial"), "w") as f:
            f.write("1000\n")
        self.config = os.path.join(directory, "ca.cnf")
        with open(self.config, "w") as f:
            f.write(self.CONFIG.format(d=directory))
        self.cert = os.path.join(directory, "ca.crt")
        self.key = os.path.join(directory, "ca.key")
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", self.key, "-out", self.cert, "-days", "30", "-subj", f"/CN={name}")
        self.n = 0

    def _run(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)

    def leaf(self, cn, sans=(), start="20250101000000Z", end="20991231000000Z"):
        """(certificate PEM, key PEM, path prefix). sans: DNS names (none: no SAN)."""
        self.n += 1
        base = os.path.join(self.dir, f"{cn}-{self.n}")
        self._run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", base + ".key", "-out", base + ".csr", "-subj", f"/CN={cn}")
        args = ["ca", "-batch", "-config", self.config, "-cert", self.cert, "-keyfile", self.key,
                "-in", base + ".csr", "-out", base + ".crt", "-startdate", start, "-enddate", end,
                "-notext"]
        if sans:
            with open(base + ".ext", "w") as f:
                f.write("subjectAltName=" + ",".join(f"DNS:{s}" for s in sans) + "\n")
            args += ["-extfile", base + ".ext"]
        self._run(*args)
        with open(base + ".crt") as c, open(base + ".key") as k:
            return c.read(), k.read(), base


def days_from_now(days):
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() + days * 86400))


def fingerprint(der):
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def served(port, name, timeout=3):
    """Fingerprint of the certificate the edge presents for SNI `name` (None: no SNI), or
    the ssl error when the handshake fails."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname=name) as s:
                return fingerprint(s.getpeercert(binary_form=True))
        except (ssl.SSLError, ConnectionResetError) as e:
            return e


# --- the stack --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ca(workdir):
    return CA(os.path.join(workdir, "ca"))


@pytest.fixture(scope="module")
def stack(workdir, ca):
    """Redis, a controller and two edges that share SWITCHYARD_CERT_KEY; each edge has a
    TLS listener and trusts the test CA for upstream verification."""
    redis = Redis(workdir)
    controller = Controller(redis, workdir, env={"SWITCHYARD_CERT_KEY": CERT_KEY})
    edges = []
    for name in ("tls-a", "tls-b"):
        tls_port = free_port()
        e = Edge(redis, workdir, name, env={"SWITCHYARD_CERT_KEY": CERT_KEY},
                 extra=["--listen-tls", f"127.0.0.1:{tls_port}", "--upstream-ca", ca.cert])
        e.tls_port = tls_port
        edges.append(e)
    yield redis, controller, edges
    for e in edges:
        e.stop()
    controller.stop()
    redis.stop()


def put_cert(controller, cid, cert, key, **extra):
    return controller.request("PUT", f"/api/v1/certificates/{cid}",
                              {"cert": cert, "key": key, **extra})


def wait_served(edges, name, fp, timeout=5, what=None):
    for e in edges:
        wait_until(lambda e=e: served(e.tls_port, name) == fp, timeout,
                   what=what or f"{name} served with {fp[:11]} on {e.id}")


# --- tests ------------------------------------------------------------------------------

def test_sni_exact_then_wildcard_then_default(stack, ca):
    redis, controller, edges = stack
    shop = ca.leaf("shop", ["shop.example.com"])
    wild = ca.leaf("wild", ["*.example.com"])
    r = put_cert(controller, "sni-shop", shop[0], shop[1])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["names"] == ["shop.example.com"]
    assert body["key_encrypted"] is True and "key" not in body and "key_enc" not in body
    assert body["issuer"] == "CN=Switchyard Test CA"
    fp_shop = body["fingerprint_sha256"]
    fp_wild = put_cert(controller, "sni-wild", wild[0], wild[1]).json()["fingerprint_sha256"]

    wait_served(edges, "shop.example.com", fp_shop)
    for e in edges:
        assert served(e.tls_port, "SHOP.example.com") == fp_shop        # SNI is case-insensitive
        assert served(e.tls_port, "other.example.com") == fp_wild       # one label under *.
        # no default certificate yet: unknown names, deeper names and no SNI are refused
        assert isinstance(served(e.tls_port, "a.b.example.com"), Exception)
        assert isinstance(served(e.tls_port, "example.com"), Exception)
        assert isinstance(served(e.tls_port, None), Exception)

    dflt = ca.leaf("fallback", [])
    r = put_cert(controller, "sni-default", dflt[0], dflt[1], default=True)
    assert r.status_code == 201, r.text
    fp_default = r.json()["fingerprint_sha256"]
    wait_served(edges, "unknown.test", fp_default)
    for e in edges:
        assert served(e.tls_port, "a.b.example.com") == fp_default
        assert served(e.tls_port, None) == fp_default
        assert served(e.tls_port, "shop.example.com") == fp_shop
        assert edge_status(e)["tls"]["default"] == "sni-default"

    # a deleted certificate stops being served (here: its name falls back to the wildcard)
    controller.ok("DELETE", "/api/v1/certificates/sni-shop")
    wait_served(edges, "shop.example.com", fp_wild)
    controller.ok("DELETE", "/api/v1/certificates/sni-default")
    for e in edges:
        wait_until(lambda e=e: isinstance(served(e.tls_port, "unknown.test"), Exception), 5,
                   what="no default any more")
    # certificates count in the digest: the edges agree with Redis
    wait_until(lambda: controller.status()["converged"], 5, what="converged status")


def test_rotation_is_served_without_reload_and_keeps_connections(stack, ca):
    redis, controller, edges = stack
    up_port = _plain_backend()
    controller.upstream("rot", up_port)
    controller.route("rot", "rotate.example.com", "/", "rot")
    first = ca.leaf("rotate", ["rotate.example.com"])
    fp1 = put_cert(controller, "rotate", first[0], first[1]).json()["fingerprint_sha256"]
    wait_served(edges, "rotate.example.com", fp1)
    pids = [e.pids() for e in edges]

    # an HTTPS keep-alive connection opened before the rotation
    ctx = ssl.create_default_context(cafile=ca.cert)
    conns = []
    for e in edges:
        c = http.client.HTTPSConnection("127.0.0.1", e.tls_port, context=ctx, timeout=5)
        c.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", e.tls_port), timeout=5),
                                 server_hostname="rotate.example.com")
        c.request("GET", "/before", headers={"Host": "rotate.example.com"})
        assert c.getresponse().read() and True
        conns.append(c)

    second = ca.leaf("rotate", ["rotate.example.com"])
    t0 = time.monotonic()
    r = put_cert(controller, "rotate", second[0], second[1])
    assert r.status_code == 200, r.text
    fp2 = r.json()["fingerprint_sha256"]
    assert fp2 != fp1
    wait_served(edges, "rotate.example.com", fp2)
    took = time.monotonic() - t0
    print(f"rotated certificate served by both edges after {took * 1000:.0f} ms")
    assert took < 3

    for c in conns:   # the old connections keep working on the old session
        c.request("GET", "/after", headers={"Host": "rotate.example.com"})
        resp = c.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["path"] == "/after"
        c.close()
    assert [e.pids() for e in edges] == pids, "an edge reloaded or lost a worker"


def test_identical_put_changes_nothing(stack, ca):
    redis, controller, edges = stack
    cert, key, _ = ca.leaf("same", ["same.example.com"])
    first = put_cert(controller, "same", cert, key)
    assert first.status_code == 201
    stored = redis.get(BASE + "certificate:same")
    version = redis.version()
    again = put_cert(controller, "same", cert, key)
    assert again.status_code == 200 and again.json()["version"] == first.json()["version"]
    assert redis.version() == version
    assert redis.get(BASE + "certificate:same") == stored   # same ciphertext, no new nonce


def test_bad_certificates_are_refused_and_nothing_is_written(stack, ca, workdir):
    redis, controller, edges = stack
    good_cert, good_key, base = ca.leaf("good", ["good.example.com"])
    other_cert, other_key, _ = ca.leaf("other", ["other.example.com"])
    expired = ca.leaf("expired", ["expired.example.com"], start="20200101000000Z",
                      end="20210101000000Z")
    future = ca.leaf("future", ["future.example.com"], start=days_from_now(30),
                     end=days_from_now(400))
    cn_only = ca.leaf("cn-only.example.com", [])
    protected = base + ".protected.key"
    subprocess.run(["openssl", "pkey", "-in", base + ".key", "-out", protected, "-aes256",
                    "-passout", "pass:secret"], check=True, capture_output=True, timeout=30)
    with open(protected) as f:
        protected_key = f.read()
    with open(ca.cert) as f:
        ca_cert = f.read()

    cases = [
        ("garbage", {"cert": "not a certificate", "key": good_key}, "cert", "unparsable"),
        ("garbage-key", {"cert": good_cert, "key": "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                                  "-----END PRIVATE KEY-----\n"}, "key", "unparsable"),
        ("swapped", {"cert": good_key, "key": good_cert}, "cert", "unparsable"),
        ("mismatch", {"cert": good_cert, "key": other_key}, "key", "key_mismatch"),
        ("expired", {"cert": expired[0], "key": expired[1]}, "cert", "expired"),
        ("future", {"cert": future[0], "key": future[1]}, "cert", "not_yet_valid"),
        ("no-names", {"cert": cn_only[0], "key": cn_only[1]}, "cert", "no_names"),
        ("passphrase", {"cert": good_cert, "key": protected_key}, "key", "encrypted_key"),
        ("ca-first", {"cert": ca_cert + good_cert, "key": good_key}, "cert", "chain_order"),
        ("missing-key", {"cert": good_cert}, "key", "required"),
        ("typo", {"cert": good_cert, "key": good_key, "defualt": True}, "defualt", "unknown_field"),
    ]
    version = redis.version()
    for cid, body, field, code in cases:
        r = controller.request("PUT", f"/api/v1/certificates/bad-{cid}", body)
        assert r.status_code == 422, (cid, r.status_code, r.text)
        err = r.json()["error"]
        assert err["field"] == field, (cid, err)
        assert err["details"][0]["code"] == code, (cid, err)
        for secret in (good_key, other_key, protected_key):   # never echoes key material
            assert secret.splitlines()[1] not in r.text, cid
        assert controller.request("GET", f"/api/v1/certificates/bad-{cid}").status_code == 404
    assert redis.version() == version
    assert not [k for k in redis.config_keys() if ":certificate:bad-" in k]
    # the good pair is fine, and the chain with its CA after it too
    assert put_cert(controller, "good", good_cert + ca_cert, good_key).status_code == 201


def test_keys_are_encrypted_at_rest(stack, ca, workdir):
    redis, controller, edges = stack
    cert, key, _ = ca.leaf("secret", ["secret.example.com"])
    fp = put_cert(controller, "secret", cert, key).json()["fingerprint_sha256"]
    raw = redis.get(BASE + "certificate:secret")
    doc = json.loads(raw)
    assert "PRIVATE KEY" not in raw and "key" not in doc
    assert doc["key_enc"].startswith("aes-256-gcm:")
    assert redis.cli("SISMEMBER", BASE + "certificates", "secret") == "1"
    wait_served(edges, "secret.example.com", fp)

    # an edge without the shared key cannot use it, and says so
    tls_port = free_port()
    blind = Edge(redis, workdir, "tls-blind", workers=1, env={"SWITCHYARD_CERT_KEY": ""},
                 extra=["--listen-tls", f"127.0.0.1:{tls_port}"])
    try:
        wait_until(lambda: "secret" in (edge_status(blind)["tls"].get("not_served") or {}), 5,
                   what="blind edge reports the certificate it cannot decrypt")
        assert isinstance(served(tls_port, "secret.example.com"), Exception)
        assert "SWITCHYARD_CERT_KEY" in edge_status(blind)["tls"]["not_served"]["secret"]
    finally:
        blind.stop()

    # a controller without the key stores keys in plaintext, and warns at start
    plain = Controller(redis, workdir, env={"SWITCHYARD_CERT_KEY": ""})
    try:
        c2, k2, _ = ca.leaf("plain", ["plain.example.com"])
        r = put_cert(plain, "plain", c2, k2)
        assert r.status_code == 201 and r.json()["key_encrypted"] is False
        assert "-----BEGIN PRIVATE KEY-----" in json.loads(redis.get(BASE + "certificate:plain"))["key"]
        assert "SWITCHYARD_CERT_KEY is not set" in plain.process.output()
        # edges with the key serve plaintext-stored keys as well
        wait_served(edges, "plain.example.com", r.json()["fingerprint_sha256"])
    finally:
        plain.stop()
    assert CERT_KEY not in "".join(open(os.path.join(workdir, f)).read() for f in os.listdir(workdir)
                                   if f.endswith(".log"))


def test_later_not_after_wins_a_shared_name_and_expiry_is_listed(stack, ca):
    redis, controller, edges = stack
    old = ca.leaf("dup-old", ["dup.example.com"], end=days_from_now(10))
    new = ca.leaf("dup-new", ["dup.example.com"], end=days_from_now(200))
    r_old = put_cert(controller, "dup-old", old[0], old[1])
    assert r_old.status_code == 201
    assert r_old.json()["expiring_soon"] is True and r_old.json()["expires_in_days"] in (9, 10)
    wait_served(edges, "dup.example.com", r_old.json()["fingerprint_sha256"])
    r_new = put_cert(controller, "dup-new", new[0], new[1])
    assert r_new.status_code == 201 and r_new.json()["shadowed"] == []
    wait_served(edges, "dup.example.com", r_new.json()["fingerprint_sha256"])

    listing = controller.ok("GET", "/api/v1/certificates")
    items = {i["id"]: i for i in listing["items"]}
    assert items["dup-old"]["shadowed"] == [{"name": "dup.example.com", "by": "dup-new"}]
    assert "cert" not in items["dup-old"] and "key" not in json.dumps(listing["items"]).replace(
        "key_encrypted", "").replace("key_type", "")
    assert "dup-old" in listing["expiring_soon"] and "dup-new" not in listing["expiring_soon"]
    soon = controller.ok("GET", "/api/v1/certificates?expiring_within_days=30")
    assert [i["id"] for i in soon["items"]] == ["dup-old"]
    one = controller.ok("GET", "/api/v1/certificates/dup-old")
    assert one["cert"].startswith("-----BEGIN CERTIFICATE-----") and "key_enc" not in one


def test_https_redirect_and_hsts(stack, ca):
    redis, controller, edges = stack
    port = _plain_backend()
    controller.upstream("web", port)
    controller.ok("PUT", "/api/v1/routes/secure-web", {
        "host": "www.example.com", "path": "/", "upstream": "web", "https_redirect": True,
        "hsts": {"max_age_s": 31536000, "include_subdomains": True}})
    controller.ok("PUT", "/api/v1/routes/mixed-web", {
        "host": "mixed.example.com", "path": "/", "upstream": "web",
        "hsts": {"max_age_s": 600}})
    controller.route("own-web", "own.example.com", "/", "web")
    cert, key, _ = ca.leaf("www", ["www.example.com", "mixed.example.com"])
    fp = put_cert(controller, "www", cert, key).json()["fingerprint_sha256"]
    wait_served(edges, "www.example.com", fp)

    for e in edges:
        wait_until(lambda e=e: e.get("/x?y=1&z=%2F", "www.example.com").status_code == 308, 5,
                   what="redirect")
        r = e.get("/x?y=1&z=%2F", "www.example.com")
        assert r.headers["Location"] == f"https://www.example.com:{e.tls_port}/x?y=1&z=%2F"
        assert "Strict-Transport-Security" not in r.headers   # never over plain HTTP
        r = e.session.post(e.url + "/form", headers={"Host": "www.example.com"}, data="a=1",
                           allow_redirects=False, timeout=5)
        assert r.status_code == 308   # 308 for every method: clients repeat POST as POST

        r = _https_get(e.tls_port, "www.example.com", "/x?y=1", ca)
        assert r.status == 200
        assert r.getheader("Strict-Transport-Security") == "max-age=31536000; includeSubDomains"
        # HTTP on a route with HSTS but no redirect: served, without the header
        r = e.get("/plain", "mixed.example.com")
        assert r.status_code == 200 and "Strict-Transport-Security" not in r.headers
        r = _https_get(e.tls_port, "mixed.example.com", "/tls", ca)
        assert r.status == 200 and r.getheader("Strict-Transport-Security") == "max-age=600"
        # X-Forwarded-Proto tells the backend
        assert r.json["xfp"] == "https"
        # a route without hsts passes the upstream's own header through
        assert e.get("/own", "own.example.com").headers.get("Strict-Transport-Security") == "max-age=1"


def test_http2_is_offered(stack, ca):
    redis, controller, edges = stack
    cert, key, _ = ca.leaf("h2", ["h2.example.com"])
    fp = put_cert(controller, "h2", cert, key).json()["fingerprint_sha256"]
    wait_served(edges, "h2.example.com", fp)
    ctx = ssl.create_default_context(cafile=ca.cert)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", edges[0].tls_port), timeout=3) as raw:
        with ctx.wrap_socket(raw, server_hostname="h2.example.com") as s:
            assert s.selected_alpn_protocol() == "h2"


def test_https_upstreams(stack, ca):
    redis, controller, edges = stack
    backend_cert = ca.leaf("backend", ["backend.internal"])
    backend = _tls_backend(backend_cert[2])
    other = _tls_backend(backend_cert[2])
    cert, key, _ = ca.leaf("api", ["api.example.com", "api2.example.com", "named.example.com",
                                   "v.example.com", "w.example.com"])
    fp = put_cert(controller, "api", cert, key).json()["fingerprint_sha256"]

    def upstream(name, port, **tls):
        controller.ok("PUT", f"/api/v1/upstreams/{name}",
                      {"endpoints": [{"address": f"127.0.0.1:{port}"}], "scheme": "https", **tls})

    # SNI = the request's host (no tls_server_name), not verified: one route per host
    upstream("tls-host", backend.port)
    controller.route("tls-host-1", "api.example.com", "/", "tls-host")
    controller.route("tls-host-2", "api2.example.com", "/", "tls-host")
    # a fixed SNI name, not verified
    upstream("tls-named", other.port, tls_server_name="anything.internal")
    controller.route("tls-named", "named.example.com", "/", "tls-named")
    # verified against the CA the edges trust (--upstream-ca), with an explicit name...
    upstream("tls-verified", backend.port, tls_server_name="backend.internal", tls_verify=True)
    controller.route("tls-verified", "v.example.com", "/", "tls-verified")
    # ...and a name the backend's certificate does not have, on the SAME address: 502,
    # every time (pooled connections verified for backend.internal must not carry it)
    upstream("tls-wrong-name", backend.port, tls_server_name="wrong.internal", tls_verify=True)
    controller.route("tls-wrong-name", "w.example.com", "/", "tls-wrong-name")
    wait_served(edges, "api.example.com", fp)

    for e in edges:
        wait_until(lambda e=e: e.get("/p", "api.example.com").status_code == 200, 5,
                   what="https upstream")
        for i in range(6):   # alternating hosts: the SNI always is the request's host
            host = "api.example.com" if i % 2 else "api2.example.com"
            seen = e.get(f"/p?q={i}", host).json()
            assert seen == {"path": f"/p?q={i}", "sni": host, "host": host, "xfp": "http"}
        assert e.get("/n", "named.example.com").json()["sni"] == "anything.internal"
        for _ in range(4):
            r = _https_get(e.tls_port, "v.example.com", "/v", ca)
            assert r.status == 200 and r.json["sni"] == "backend.internal"
            assert r.json["xfp"] == "https"
            assert e.get("/w", "w.example.com").status_code == 502

    # keepalive for a fixed name: many requests, few TLS connections (one per worker)
    before = other.handshakes
    for _ in range(30):
        assert edges[0].get("/k", "named.example.com").status_code == 200
    assert other.handshakes - before <= 2, other.handshakes - before
    # the same with verification, once the name is the only one on its address
    controller.ok("DELETE", "/api/v1/routes/tls-wrong-name")
    controller.ok("DELETE", "/api/v1/upstreams/tls-wrong-name")
    time.sleep(0.3)
    before = backend.handshakes
    for _ in range(30):
        assert edges[0].get("/k", "v.example.com").status_code == 200
    assert backend.handshakes - before <= 2, backend.handshakes - before

    # per-upstream CA files are refused with an explanation
    r = controller.request("PUT", "/api/v1/upstreams/tls-ca", {
        "endpoints": [], "scheme": "https", "tls_verify": True, "ca_file": "/etc/ca.pem"})
    assert r.status_code == 422 and "--upstream-ca" in r.text
    r = controller.request("PUT", "/api/v1/upstreams/tls-http", {"endpoints": [], "tls_verify": True})
    assert r.status_code == 422 and r.json()["error"]["field"] == "tls_verify"


def test_tls_fields_are_validated(stack):
    redis, controller, edges = stack
    controller.upstream("val", free_port())
    bad = [
        ({"https_redirect": "yes"}, "https_redirect"),
        ({"hsts": {"max_age_s": -1}}, "hsts.max_age_s"),
        ({"hsts": {"max_age": 10}}, "hsts.max_age"),
        ({"hsts": {"max_age_s": 600, "preload": True}}, "hsts.preload"),
        ({"hsts": 600}, "hsts"),
    ]
    for extra, field in bad:
        r = controller.request("PUT", "/api/v1/routes/val", {
            "host": "val.example.com", "path": "/", "upstream": "val", **extra})
        assert r.status_code == 422 and r.json()["error"]["field"] == field, (extra, r.text)
    r = controller.request("PUT", "/api/v1/upstreams/val2", {"endpoints": [], "scheme": "ftp"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "scheme"


# --- helpers ----------------------------------------------------------------------------

class _Answer:
    def __init__(self, resp):
        self.status = resp.status
        self._headers = resp.getheaders()
        body = resp.read()
        self.json = json.loads(body) if body.startswith(b"{") else None

    def getheader(self, name):
        for k, v in self._headers:
            if k.lower() == name.lower():
                return v
        return None


def _https_get(port, host, path, ca):
    ctx = ssl.create_default_context(cafile=ca.cert)
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    c.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                             server_hostname=host)
    try:
        c.request("GET", path, headers={"Host": host})
        return _Answer(c.getresponse())
    finally:
        c.close()


class _Echo(http.server.BaseHTTPRequestHandler):
    """Answers JSON: the path, the TLS SNI it was reached with, Host, X-Forwarded-Proto;
    sends its own HSTS header, which the edge must replace."""
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True   # headers and body are two writes: no 40 ms delayed ACKs

    def do_GET(self):
        body = json.dumps({"path": self.path, "sni": getattr(self.connection, "sni", None),
                           "host": self.headers.get("Host"),
                           "xfp": self.headers.get("X-Forwarded-Proto")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Strict-Transport-Security", "max-age=1")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


_servers = []


def _serve(server):
    server.port = server.server_address[1]
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()

    def stop():
        server.shutdown()
        server.server_close()
    server.stop = stop
    _servers.append(server)
    return server


def _plain_backend():
    return _serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)).port


class _TLSServer(http.server.ThreadingHTTPServer):
    handshakes = 0

    def get_request(self):
        sock, addr = self.socket.accept()
        self.handshakes += 1
        return self.context.wrap_socket(sock, server_side=True), addr


def _tls_backend(base):
    server = _TLSServer(("127.0.0.1", 0), _Echo)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(base + ".crt", base + ".key")

    def remember_sni(sock, name, _ctx):
        sock.sni = name
    ctx.sni_callback = remember_sni
    server.context = ctx
    return _serve(server)


@pytest.fixture(scope="module", autouse=True)
def _stop_servers():
    yield
    while _servers:
        _servers.pop().stop()
