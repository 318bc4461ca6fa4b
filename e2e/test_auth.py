"""Authentication at the edge per route (issue 22 item 4, docs/traffic-policies.md
"Authentication"): basic_auth against bcrypt and SHA-512-crypt hashes (libxcrypt), jwt
RS256/ES256 against public keys (libcrypto), 401 with WWW-Authenticate for bad or missing
credentials, claims copied to upstream headers (never the client's own), the rejections
counted with reason "auth", and the controller's 422s. Real redis-server, controller, nginx
edges and backend; keys, hashes and tokens made here with the openssl CLI and libcrypt."""
import base64
import ctypes
import glob
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from harness import free_port, put_route, wait_until

BASIC = "basic.auth.test"
RS = "rs.auth.test"
ES = "es.auth.test"
COOKIE = "cookie.auth.test"
FA = "fa.auth.test"
FA_CACHED = "fa-cached.auth.test"
FA_DOWN = "fa-down.auth.test"
FA_OPEN = "fa-open.auth.test"
FA_SLOW = "fa-slow.auth.test"
FA_V6 = "fa-v6.auth.test"


def _crypt(password, setting):
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lib.crypt(password.encode(), setting.encode()).decode()


def _bcrypt(password):
    # cost 04: the test's speed; the edge accepts 04-12
    salt = base64.b64encode(os.urandom(16)).decode().replace("+", ".")[:22]
    return _crypt(password, "$2b$04$" + salt)


def _sha512(password):
    return subprocess.run(["openssl", "passwd", "-6", password], check=True, capture_output=True,
                          text=True).stdout.strip()


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _der_to_raw(der):
    # ECDSA-Sig-Value (SEQUENCE of two INTEGERs) -> r||s of 32 bytes each
    assert der[0] == 0x30
    i = 2
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + n
    return out


class Keys:
    def __init__(self, d):
        self.d = d
        for name, args in (("rsa", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                           ("rsa2", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                           ("ec", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])):
            subprocess.run(["openssl", "genpkey", *args, "-out", f"{d}/{name}.pem"], check=True,
                           capture_output=True)
            subprocess.run(["openssl", "pkey", "-in", f"{d}/{name}.pem", "-pubout", "-out",
                            f"{d}/{name}.pub"], check=True, capture_output=True)

    def pub(self, name):
        with open(f"{self.d}/{name}.pub") as f:
            return f.read()

    def token(self, key, claims, alg=None, kid=None, header=None):
        alg = alg or ("ES256" if key == "ec" else "RS256")
        h = dict(header or {"alg": alg, "typ": "JWT"})
        if kid:
            h["kid"] = kid
        signed = _b64url(json.dumps(h).encode()) + "." + _b64url(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", f"{self.d}/{key}.pem"],
                             input=signed.encode(), check=True, capture_output=True).stdout
        if key == "ec":
            sig = _der_to_raw(sig)
        return signed + "." + _b64url(sig)


@pytest.fixture(scope="module")
def keys():
    with tempfile.TemporaryDirectory() as d:
        yield Keys(d)


def _get(edge, host, path="/x", **headers):
    return requests.get(edge.url + path, headers=dict(headers, Host=host), timeout=10,
                        allow_redirects=False)


def _bearer(edge, host, token, **headers):
    return _get(edge, host, Authorization="Bearer " + token, **headers)


def _basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def routes(controller, edges, backends, keys):
    controller.upstream("auth-up", backends["b2"].port)
    put_route(controller, "basic", {
        "host": BASIC, "path": "/", "match": "prefix", "upstream": "auth-up",
        "basic_auth": {"realm": "staff", "users": [
            {"name": "ann", "hash": _bcrypt("s3cret")},
            {"name": "bob", "hash": _sha512("hunter2")}]}})
    put_route(controller, "rs", {
        "host": RS, "path": "/", "match": "prefix", "upstream": "auth-up",
        "jwt": {"keys": [{"alg": "RS256", "kid": "one", "pem": keys.pub("rsa")}],
                "issuer": "https://id.test", "audience": "api", "leeway_s": 5,
                "claims_to_headers": {"sub": "X-User", "admin": "X-Admin", "n": "X-N"}}})
    put_route(controller, "es", {
        "host": ES, "path": "/", "match": "prefix", "upstream": "auth-up",
        "jwt": {"keys": [{"alg": "ES256", "pem": keys.pub("ec")}]}})
    put_route(controller, "cookie", {
        "host": COOKIE, "path": "/", "match": "prefix", "upstream": "auth-up",
        "jwt": {"keys": [{"alg": "ES256", "pem": keys.pub("ec")}], "cookie": "session"}})
    for e in edges:
        for host in (BASIC, RS, ES, COOKIE):
            wait_until(lambda e=e, host=host: _get(e, host).status_code == 401, 10,
                       what=f"{host} on {e.id}")
    return keys


def test_basic_auth_admits_right_passwords_only(edges, routes, backends):
    b = backends["b2"]
    for e in edges:
        for user, password in (("ann", "s3cret"), ("bob", "hunter2")):
            r = _get(e, BASIC, Authorization=_basic(user, password))
            assert r.status_code == 200, (user, r.status_code, r.text)
            assert r.json()["backend"] == "b2"
            # twice: the second from this worker's cache of verified credentials
            assert _get(e, BASIC, Authorization=_basic(user, password)).status_code == 200
        before = b.hits
        for header in (None, _basic("ann", "wrong"), _basic("bob", "s3cret"), _basic("eve", "x"),
                       _basic("ann", "s3cret\0x"), "Basic !!!", "Basic " + base64.b64encode(
                           b"ann").decode(), "Bearer abc", _basic("ann", "s3cret") + "x"):
            r = _get(e, BASIC, **({"Authorization": header} if header else {}))
            assert r.status_code == 401, (header, r.status_code)
            assert r.headers["WWW-Authenticate"] == 'Basic realm="staff", charset="UTF-8"'
        assert b.hits == before, "a refused request reached the upstream"


def test_rs256_tokens(edges, routes):
    keys = routes
    now = int(time.time())
    good = {"sub": "ann", "iss": "https://id.test", "aud": "api", "exp": now + 60, "admin": True,
            "n": 42}
    for e in edges:
        r = _bearer(e, RS, keys.token("rsa", good, kid="one"), **{"X-User": "mallory"})
        assert r.status_code == 200, r.text
        seen = r.json()["headers"]
        assert seen["x-user"] == "ann"
        assert seen["x-admin"] == "true"
        assert seen["x-n"] == "42"
        # a cached token still sets the claims' headers, and the client's own never pass
        r = _bearer(e, RS, keys.token("rsa", good, kid="one"), **{"X-User": "mallory"})
        assert r.json()["headers"]["x-user"] == "ann"
        r = _bearer(e, RS, keys.token("rsa", dict(good, sub=None), kid="one"),
                    **{"X-User": "mallory"})
        assert r.status_code == 200 and "x-user" not in r.json()["headers"]
        # the audience may be a list
        assert _bearer(e, RS, keys.token("rsa", dict(good, aud=["web", "api"]),
                                         kid="one")).status_code == 200


def _unsigned(claims, sig):
    return (_b64url(json.dumps({"alg": "none", "kid": "one"}).encode()) + "." +
            _b64url(json.dumps(claims).encode()) + "." + sig)


@pytest.mark.parametrize("why,make", [
    ("expired", lambda k, c: k.token("rsa", dict(c, exp=int(time.time()) - 60), kid="one")),
    ("not yet valid", lambda k, c: k.token("rsa", dict(c, nbf=int(time.time()) + 60), kid="one")),
    ("wrong issuer", lambda k, c: k.token("rsa", dict(c, iss="https://evil.test"), kid="one")),
    ("wrong audience", lambda k, c: k.token("rsa", dict(c, aud="web"), kid="one")),
    ("bad signature", lambda k, c: k.token("rsa2", c, kid="one")),
    ("bad signature", lambda k, c: k.token("rsa", c, kid="one")[:-4] + "AAAA"),
    ("unknown key", lambda k, c: k.token("rsa", c, kid="two")),
    ("wrong algorithm", lambda k, c: k.token("rsa", c, kid="one", alg="RS384")),
    # unsigned (alg none): with no signature the token is malformed; with one, refused
    ("malformed", lambda k, c: _unsigned(c, "")),
    ("wrong algorithm", lambda k, c: _unsigned(c, "c2ln")),
    ("malformed", lambda k, c: "abc.def"),
    ("malformed", lambda k, c: "a.b.c"),
    ("malformed", lambda k, c: _b64url(b"{}") + "." + _b64url(b"not json") + "." + _b64url(b"x")),
])
def test_bad_tokens_get_401(edges, routes, backends, why, make):
    now = int(time.time())
    claims = {"sub": "ann", "iss": "https://id.test", "aud": "api", "exp": now + 60}
    token = make(routes, claims)
    b = backends["b2"]
    for e in edges:
        before = b.hits
        r = _bearer(e, RS, token)
        assert r.status_code == 401, (why, r.status_code, r.text)
        challenge = r.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer error="invalid_token"'), challenge
        assert f'error_description="{why}"' in challenge, challenge
        assert b.hits == before


def test_missing_token_is_a_bare_challenge(edges, routes):
    for e in edges:
        for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
            r = _get(e, RS, **headers)
            assert r.status_code == 401
            assert r.headers["WWW-Authenticate"] == "Bearer"


def test_es256_and_the_leeway(edges, routes):
    keys = routes
    now = int(time.time())
    for e in edges:
        assert _bearer(e, ES, keys.token("ec", {"sub": "x", "exp": now + 60})).status_code == 200
        # the default leeway is 30 s
        assert _bearer(e, ES, keys.token("ec", {"exp": now - 10})).status_code == 200
        assert _bearer(e, ES, keys.token("ec", {"exp": now - 40})).status_code == 401
        assert _bearer(e, ES, keys.token("ec", {"nbf": now + 10})).status_code == 200
        assert _bearer(e, ES, keys.token("ec", {"nbf": now + 40})).status_code == 401
        # an RSA signature under the EC key, and a truncated r||s
        assert _bearer(e, ES, keys.token("rsa", {}, alg="ES256")).status_code == 401
        t = keys.token("ec", {"sub": "x"})
        head, _, sig = t.rpartition(".")
        short = _b64url(base64.urlsafe_b64decode(sig + "==")[:63])
        assert _bearer(e, ES, head + "." + short).status_code == 401


def test_token_from_a_cookie(edges, routes):
    keys = routes
    t = keys.token("ec", {"sub": "x"})
    for e in edges:
        assert _get(e, COOKIE, Cookie="session=" + t).status_code == 200
        assert _get(e, COOKIE, Authorization="Bearer " + t).status_code == 401
        assert _get(e, COOKIE, Cookie="other=" + t).status_code == 401


def _rejection_lines(edge, route, *having):
    text = requests.get(edge.metrics_url + "/metrics", timeout=5).text
    return [ln for ln in text.splitlines()
            if ln.startswith("switchyard_edge_rejections_total") and f'route="{route}"' in ln
            and all(h in ln for h in having)]


def test_rejections_are_counted_as_auth(edges, routes):
    e = edges[0]
    for _ in range(3):
        assert _get(e, BASIC).status_code == 401
    wait_until(lambda: any(float(ln.rsplit(" ", 1)[1]) >= 3
                           for ln in _rejection_lines(e, "basic", 'reason="auth"')),
               5, interval=0.2, what="basic's rejections counted as auth")


def test_explain_names_the_authentication(controller, edges, routes):
    r = controller.request("GET", "/api/v1/explain?url=http://" + RS + "/x")
    assert r.status_code == 200, r.text
    text = json.dumps(r.json())
    assert '"kind": "jwt"' in text and "RS256" in text and "https://id.test" in text, text


@pytest.mark.parametrize("auth,field", [
    ({"basic_auth": {"users": [{"name": "a", "hash": "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="}]}},
     "basic_auth.users[0].hash"),
    ({"basic_auth": {"users": [{"name": "a", "hash": "$apr1$x$y"}]}}, "basic_auth.users[0].hash"),
    ({"basic_auth": {"users": [{"name": "a:b", "hash": "$6$s$" + "b" * 86}]}},
     "basic_auth.users[0].name"),
    ({"basic_auth": {"realm": "x"}}, "basic_auth.users"),
    ({"jwt": {"keys": [{"alg": "HS256", "pem": "secret"}]}}, "jwt.keys[0].pem"),
    ({"jwt": {"keys": [{"alg": "HS256", "secret": "too short"}]}}, "jwt.keys[0].secret"),
    ({"jwt": {"keys": [{"alg": "none", "pem": "x"}]}}, "jwt.keys[0].alg"),
    ({"jwt": {"keys": [{"alg": "RS256", "pem": "-----BEGIN PUBLIC KEY-----\nAAAA\n"
                                              "-----END PUBLIC KEY-----\n"}]}}, "jwt.keys[0].pem"),
    ({"jwt": {"keys": [{"alg": "RS256"}]}}, "jwt.keys[0].pem"),
    ({"jwt": {}}, "jwt.keys"),
    ({"jwt": {"keys": "*"}}, "jwt.keys"),
])
def test_bad_auth_is_422_naming_the_field(controller, edges, routes, auth, field):
    body = dict({"host": "bad.auth.test", "path": "/", "match": "prefix", "upstream": "auth-up"},
                **auth)
    r = controller.request("PUT", "/api/v1/routes/bad-auth", body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field, (field, r.text)
    assert controller.request("GET", "/api/v1/routes/bad-auth").status_code == 404


def test_key_type_must_fit_the_algorithm(controller, routes):
    body = {"host": "bad.auth.test", "path": "/", "match": "prefix", "upstream": "auth-up",
            "jwt": {"keys": [{"alg": "RS256", "pem": routes.pub("ec")}]}}
    r = controller.request("PUT", "/api/v1/routes/bad-auth", body)
    assert r.status_code == 422 and "jwt.keys[0].pem" in r.text, r.text
    assert "EC P-256" in r.text


def test_hashes_are_not_logged(edges, routes):
    for e in edges:
        _get(e, BASIC, Authorization=_basic("ann", "wrong-password-xyz"))
        log = ""
        for path in glob.glob(os.path.join(e.prefix, "**", "*.log"), recursive=True):
            with open(path, errors="replace") as f:
                log += f.read()
        assert "wrong-password-xyz" not in log
        assert "$2b$04$" not in log



class _AuthService(BaseHTTPRequestHandler):
    """The authentication service forward_auth asks: "Bearer good" 200 (X-User: ann),
    "Bearer deny" 403, "Bearer slow" after 2 s, anything else 401."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        server = self.server
        with server.lock:
            server.hits += 1
            server.seen.append({k.lower(): v for k, v in self.headers.items()})
        auth = self.headers.get("Authorization", "")
        if auth == "Bearer slow":
            time.sleep(2)
        if auth in ("Bearer good", "Bearer slow"):
            self.send_response(200)
            self.send_header("X-User", "ann")
            self.send_header("X-Other", "not-copied")
        elif auth == "Bearer deny":
            self.send_response(403)
        elif auth == "Bearer broken":
            self.send_response(500)
        else:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="svc"')
        body = b"auth service\n"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _serve(cls, host):
    server = cls((host, 0), _AuthService)
    server.daemon_threads = True
    server.lock = threading.Lock()
    server.hits = 0
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def auth_service():
    server = _serve(ThreadingHTTPServer, "127.0.0.1")
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def auth_service_v6():
    server = _serve(_V6Server, "::1")
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def forward_routes(controller, edges, backends, auth_service):
    controller.upstream("auth-up", backends["b2"].port)
    url = f"http://127.0.0.1:{auth_service.server_address[1]}/check?x=1"
    closed = f"http://127.0.0.1:{free_port()}/check"
    base = {"path": "/", "match": "prefix", "upstream": "auth-up"}
    put_route(controller, "fa", dict(base, host=FA, forward_auth={
        "url": url, "request_headers": ["Authorization", "X-Tenant"],
        "response_headers": ["X-User"]}))
    put_route(controller, "fa-cached", dict(base, host=FA_CACHED, forward_auth={
        "url": url, "response_headers": ["X-User"], "cache_s": 30}))
    put_route(controller, "fa-down", dict(base, host=FA_DOWN, forward_auth={"url": closed}))
    put_route(controller, "fa-open", dict(base, host=FA_OPEN, forward_auth={
        "url": closed, "fail_open": True, "response_headers": ["X-User"]}))
    put_route(controller, "fa-slow", dict(base, host=FA_SLOW, forward_auth={
        "url": url, "timeout_ms": 300}))
    for e in edges:
        for host in (FA, FA_CACHED, FA_SLOW):
            wait_until(lambda e=e, host=host: _get(e, host).status_code == 401, 10,
                       what=f"{host} on {e.id}")
        wait_until(lambda e=e: _get(e, FA_DOWN).status_code == 503, 10, what="fa-down")
    return auth_service


def test_forward_auth_allows_and_copies_the_chosen_headers(edges, forward_routes):
    svc = forward_routes
    for e in edges:
        before = svc.hits
        r = _get(e, FA, "/app/x?q=1", Authorization="Bearer good", **{"X-Tenant": "t1",
                                                                      "X-User": "mallory"})
        assert r.status_code == 200, r.text
        seen = r.json()["headers"]
        assert seen["x-user"] == "ann"
        assert "x-other" not in seen
        assert svc.hits == before + 1
        asked = svc.seen[-1]
        assert asked["authorization"] == "Bearer good"
        assert asked["x-tenant"] == "t1"
        assert asked["x-forwarded-method"] == "GET"
        assert asked["x-forwarded-uri"] == "/app/x?q=1"
        assert asked["x-forwarded-host"] == FA
        assert "x-user" not in asked


def test_forward_auth_passes_401_and_403(edges, forward_routes, backends):
    b = backends["b2"]
    for e in edges:
        before = b.hits
        r = _get(e, FA)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="svc"'
        r = _get(e, FA, Authorization="Bearer deny")
        assert r.status_code == 403
        assert b.hits == before
    # the service's 403 is counted as an authentication rejection, not allow/deny (other
    # workers flush their counts within a second)
    lines = wait_until(lambda: _rejection_lines(edges[0], "fa", 'reason="auth"'), 5,
                       interval=0.2, what="fa's rejections")
    time.sleep(1.2)
    lines = _rejection_lines(edges[0], "fa")
    assert not any('reason="allow_deny"' in ln for ln in lines), lines


def test_forward_auth_caches_answers_by_credential(edges, forward_routes):
    svc = forward_routes
    e = edges[0]
    # a worker asks once per credential; two workers: at most two asks per credential
    before = svc.hits
    for _ in range(10):
        r = _get(e, FA_CACHED, Authorization="Bearer good", **{"X-User": "mallory"})
        assert r.status_code == 200 and r.json()["headers"]["x-user"] == "ann"
    assert svc.hits - before <= 2, svc.hits - before
    before = svc.hits
    for _ in range(6):
        assert _get(e, FA_CACHED, Authorization="Bearer deny").status_code == 403
    assert svc.hits - before <= 2
    # without cache_s every request asks
    before = svc.hits
    for _ in range(4):
        assert _get(e, FA, Authorization="Bearer good").status_code == 200
    assert svc.hits - before == 4


def test_forward_auth_fails_closed_unless_told(edges, forward_routes):
    for e in edges:
        r = _get(e, FA_DOWN, Authorization="Bearer good")
        assert r.status_code == 503
        r = _get(e, FA_OPEN, Authorization="Bearer good", **{"X-User": "mallory"})
        assert r.status_code == 200
        assert "x-user" not in r.json()["headers"], "the client's own header went upstream"
        # too slow: 503 after timeout_ms
        t = time.monotonic()
        r = _get(e, FA_SLOW, Authorization="Bearer slow")
        assert r.status_code == 503
        assert time.monotonic() - t < 1.5
        # an answer other than 2xx/401/403 is a failure too
        assert _get(e, FA, Authorization="Bearer broken").status_code == 503


def test_forward_auth_url_is_validated(controller, forward_routes):
    for url, why in (("https://127.0.0.1:1/x", "forward_auth.url"),
                     ("http://auth.example:80/x", "forward_auth.url"),
                     ("http://127.0.0.1/x", "forward_auth.url"),
                     ("http://127.0.0.1:80", "forward_auth.url")):
        r = controller.request("PUT", "/api/v1/routes/bad-auth", {
            "host": "bad.auth.test", "path": "/", "upstream": "auth-up",
            "forward_auth": {"url": url}})
        assert r.status_code == 422 and r.json()["error"]["field"] == why, (url, r.text)


def test_forward_auth_over_ipv6(controller, edges, forward_routes, auth_service_v6):
    put_route(controller, "fa-v6", {
        "host": FA_V6, "path": "/", "match": "prefix", "upstream": "auth-up",
        "forward_auth": {"url": f"http://[::1]:{auth_service_v6.server_address[1]}/v6",
                         "response_headers": ["X-User"]}})
    for e in edges:
        wait_until(lambda e=e: _get(e, FA_V6).status_code == 401, 10, what=f"fa-v6 on {e.id}")
        r = _get(e, FA_V6, Authorization="Bearer good")
        assert r.status_code == 200, r.text
        assert r.json()["headers"]["x-user"] == "ann"
    assert auth_service_v6.seen[-1]["host"].startswith("[::1]:")


# --- jwt keys as a JWKS document (docs/traffic-policies.md "Authentication") ---

JWKS_HOST = "jwks.auth.test"


def _jwk(keys, name, kid):
    """The public JWK of one of `keys`' key pairs, from the openssl CLI."""
    if name == "ec":
        der = subprocess.run(["openssl", "pkey", "-pubin", "-in", f"{keys.d}/{name}.pub",
                              "-outform", "DER"], check=True, capture_output=True).stdout
        point = der[-65:]
        assert point[0] == 4
        return {"kty": "EC", "crv": "P-256", "kid": kid, "x": _b64url(point[1:33]),
                "y": _b64url(point[33:])}
    out = subprocess.run(["openssl", "rsa", "-pubin", "-in", f"{keys.d}/{name}.pub", "-noout",
                          "-modulus"], check=True, capture_output=True, text=True).stdout
    n = bytes.fromhex(out.strip().split("=", 1)[1])
    return {"kty": "RSA", "kid": kid, "n": _b64url(n), "e": _b64url(b"\x01\x00\x01")}


@pytest.fixture(scope="module")
def jwks_route(controller, edges, routes):
    keys = routes
    rsa = dict(_jwk(keys, "rsa", "r1"), alg="RS256", use="sig", x5t="ignored",
               key_ops=["verify"])
    body = {"host": JWKS_HOST, "path": "/", "match": "prefix", "upstream": "auth-up",
            "jwt": {"jwks": {"keys": [rsa, _jwk(keys, "ec", "e1")]}}}
    stored = put_route(controller, "jwks", body)
    for e in edges:
        wait_until(lambda e=e: _get(e, JWKS_HOST).status_code == 401, 10)
    return keys, stored


def test_jwks_keys_are_answered_as_given_without_the_derived_pem(controller, jwks_route):
    keys, stored = jwks_route
    got = controller.ok("GET", "/api/v1/routes/jwks")
    assert got["jwt"] == stored["jwt"]
    jwks = got["jwt"]["jwks"]["keys"]
    assert [k["kid"] for k in jwks] == ["r1", "e1"]
    assert jwks[0] == dict(_jwk(keys, "rsa", "r1"), alg="RS256")  # x5t, key_ops, use dropped
    assert jwks[1] == dict(_jwk(keys, "ec", "e1"), alg="ES256")
    assert "pem" not in json.dumps(got) and "keys" not in got["jwt"]
    # sent back as answered, nothing changes
    got.pop("version")
    r = controller.request("PUT", "/api/v1/routes/jwks", got)
    assert r.status_code == 200 and r.json()["version"] == stored["version"], r.text


def test_jwks_tokens_choose_their_key_by_kid(edges, jwks_route, backends):
    keys, _ = jwks_route
    for e in edges:
        assert _bearer(e, JWKS_HOST, keys.token("rsa", {"sub": "a"}, kid="r1")).status_code == 200
        assert _bearer(e, JWKS_HOST, keys.token("ec", {"sub": "a"}, kid="e1")).status_code == 200
        for why, tok in (("bad signature", keys.token("rsa2", {}, kid="r1")),
                         ("unknown key", keys.token("rsa", {}, kid="r2")),
                         ("unknown key", keys.token("rsa", {})),
                         ("wrong algorithm", keys.token("rsa", {}, kid="e1")),
                         ("wrong algorithm", keys.token("ec", {}, kid="r1", alg="ES256")),
                         ("wrong algorithm", _unsigned({}, "c2ln").replace(
                             _b64url(json.dumps({"alg": "none", "kid": "one"}).encode()),
                             _b64url(json.dumps({"alg": "none", "kid": "r1"}).encode())))):
            r = _bearer(e, JWKS_HOST, tok)
            assert r.status_code == 401, (why, r.text)
            assert f'error_description="{why}"' in r.headers["WWW-Authenticate"], why


def _bad_jwk(routes, **change):
    k = _jwk(routes, "ec", "e1")
    k.update(change)
    return {k2: v for k2, v in k.items() if v is not None}


@pytest.mark.parametrize("make,field", [
    (lambda k: {"keys": [_bad_jwk(k, x="not base64url!")]}, "jwt.jwks.keys[0].x"),
    (lambda k: {"keys": [_bad_jwk(k, x=_b64url(b"\x01" * 32))]}, "jwt.jwks.keys[0].x"),
    (lambda k: {"keys": [_bad_jwk(k, x=_b64url(b"\x01" * 31))]}, "jwt.jwks.keys[0].x"),
    (lambda k: {"keys": [_bad_jwk(k, crv="P-384")]}, "jwt.jwks.keys[0].crv"),
    (lambda k: {"keys": [_bad_jwk(k, d=_b64url(b"\x01" * 32))]}, "jwt.jwks.keys[0].d"),
    (lambda k: {"keys": [_bad_jwk(k, alg="RS256")]}, "jwt.jwks.keys[0].alg"),
    (lambda k: {"keys": [_bad_jwk(k, use="enc")]}, "jwt.jwks.keys[0].use"),
    (lambda k: {"keys": [_bad_jwk(k, y=None)]}, "jwt.jwks.keys[0].y"),
    (lambda k: {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "jwt.jwks.keys[0].k"),
    (lambda k: {"keys": [{"kty": "oct"}]}, "jwt.jwks.keys[0].kty"),
    (lambda k: {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA"}]}, "jwt.jwks.keys[0].kty"),
    (lambda k: {"keys": [dict(_jwk(k, "rsa", "r"), n=_b64url(b"\xc1" * 128))]},
     "jwt.jwks.keys[0].n"),
    (lambda k: {"keys": [dict(_jwk(k, "rsa", "r"), e=_b64url(b"\x02"))]}, "jwt.jwks.keys[0].e"),
    (lambda k: {"keys": [_jwk(k, "ec", "a"), _jwk(k, "rsa", "a")]}, "jwt.jwks.keys[1].kid"),
    (lambda k: {"keys": [_bad_jwk(k, kid=None), _jwk(k, "rsa", None)]}, "jwt.jwks.keys"),
    (lambda k: {"keys": []}, "jwt.jwks.keys"),
    (lambda k: {}, "jwt.jwks.keys"),
    (lambda k: [], "jwt.jwks"),
    (lambda k: {"keys": [_jwk(k, "ec", "a")], "x": 1}, "jwt.jwks.x"),
])
def test_bad_jwks_is_422_naming_the_member(controller, routes, make, field):
    body = {"host": "bad.auth.test", "path": "/", "match": "prefix", "upstream": "auth-up",
            "jwt": {"jwks": make(routes)}}
    r = controller.request("PUT", "/api/v1/routes/bad-auth", body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field, (field, r.text)
    both = dict(body, jwt={"jwks": {"keys": [_jwk(routes, "ec", "a")]},
                           "keys": [{"alg": "ES256", "pem": routes.pub("ec")}]})
    r = controller.request("PUT", "/api/v1/routes/bad-auth", both)
    assert r.status_code == 422 and r.json()["error"]["field"] == "jwt.jwks", r.text
    assert controller.request("GET", "/api/v1/routes/bad-auth").status_code == 404
