"""HS256 jwt keys (issue 22 item 4; docs/traffic-policies.md "HS256 secrets"): the shared
secret sealed at rest with SWITCHYARD_CERT_KEY (or in plaintext without it, as certificate
keys), never in an answer, a history entry, a dry run or a log; a GET'd route PUT back (or
applied) keeps its secret; rotation and revert; tokens verified with HMAC-SHA256 by real
edges, and the bad ones (wrong secret, alg none, alg confusion with an RS256 key, unknown
kid) refused with 401. Real redis-server, controller, nginx edges and backend."""
import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import time

import pytest
import requests

from harness import BASE, Controller, Edge, Redis, start_backends, wait_until

CERT_KEY = base64.b64encode(os.urandom(32)).decode()
SECRET = "first-" + secrets.token_hex(24)
OTHER = "second-" + secrets.token_hex(24)
THIRD = "third-" + secrets.token_hex(24)
HOST = "hs.auth.test"
RS_HOST = "rs.hs.auth.test"


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(secret, claims=None, kid="h1", alg="HS256"):
    h = {"alg": alg, "typ": "JWT"}
    if kid:
        h["kid"] = kid
    signed = _b64url(json.dumps(h).encode()) + "." + _b64url(json.dumps(claims or {}).encode())
    sig = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
    return signed + "." + _b64url(sig)


def fingerprint(secret):
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def _bearer(edge, host, tok):
    return requests.get(edge.url + "/x", headers={"Host": host, "Authorization": "Bearer " + tok},
                        timeout=10)


def _route(secret=None, **key):
    k = {"alg": "HS256", "kid": "h1", **key}
    if secret:
        k["secret"] = secret
    return {"host": HOST, "path": "/", "match": "prefix", "upstream": "hs-up",
            "jwt": {"keys": [k], "claims_to_headers": {"sub": "X-User"}}}


def _no_secret_in(text):
    for s in (SECRET, OTHER, THIRD):
        assert s not in text
    assert "secret_enc" not in text
    assert "aes-256-gcm" not in text


@pytest.fixture(scope="module")
def stack(workdir):
    redis = Redis(workdir)
    controller = Controller(redis, workdir, env={"SWITCHYARD_CERT_KEY": CERT_KEY})
    edge = Edge(redis, workdir, "hs-edge", env={"SWITCHYARD_CERT_KEY": CERT_KEY})
    bs = start_backends("h1")
    controller.upstream("hs-up", bs["h1"].server_address[1])
    d = os.path.join(workdir, "rsa")
    os.makedirs(d)
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", f"{d}/k.pem"], check=True, capture_output=True)
    pub = subprocess.run(["openssl", "pkey", "-in", f"{d}/k.pem", "-pubout"], check=True,
                         capture_output=True, text=True).stdout
    controller.ok("PUT", "/api/v1/routes/rs-only", {
        "host": RS_HOST, "path": "/", "match": "prefix", "upstream": "hs-up",
        "jwt": {"keys": [{"alg": "RS256", "kid": "r1", "pem": pub}]}})
    r = controller.request("PUT", "/api/v1/routes/hs", _route(SECRET))
    assert r.status_code == 201, r.text
    wait_until(lambda: _bearer(edge, HOST, token(SECRET)).status_code == 200, 10,
               what="the HS256 route on the edge")
    yield redis, controller, edge, pub, r
    for b in bs.values():
        b.shutdown()
        b.server_close()
    edge.stop()
    controller.stop()
    redis.stop()


def test_secret_is_sealed_at_rest_and_never_answered(stack):
    redis, controller, edge, _, put = stack
    _no_secret_in(put.text)
    assert put.json()["jwt"]["keys"] == [
        {"alg": "HS256", "kid": "h1", "secret_sha256": fingerprint(SECRET)}]
    stored = redis.get(BASE + "route:hs")
    assert SECRET not in stored and '"secret":' not in stored
    key = json.loads(stored)["jwt"]["keys"][0]
    assert key["secret_enc"].startswith("aes-256-gcm:")
    assert key["secret_sha256"] == fingerprint(SECRET)
    for path in ("/api/v1/routes/hs", "/api/v1/routes", "/api/v1/history",
                 "/api/v1/explain?url=http://" + HOST + "/x"):
        r = controller.request("GET", path)
        assert r.status_code == 200, (path, r.text)
        _no_secret_in(r.text)
    r = _bearer(edge, HOST, token(SECRET, {"sub": "ann"}))
    assert r.status_code == 200 and r.json()["headers"]["x-user"] == "ann"


@pytest.mark.parametrize("why,make", [
    ("bad signature", lambda pub: token(OTHER)),
    ("bad signature", lambda pub: token(SECRET)[:-4] + "AAAA"),
    ("bad signature", lambda pub: token(SECRET).rsplit(".", 1)[0] + "." + _b64url(b"x" * 31)),
    ("unknown key", lambda pub: token(SECRET, kid="h2")),
    ("wrong algorithm", lambda pub: token(SECRET, alg="HS384")),
    ("wrong algorithm", lambda pub: token(SECRET, alg="none")),
    ("expired", lambda pub: token(SECRET, {"exp": int(time.time()) - 120})),
])
def test_bad_hs256_tokens_get_401(stack, why, make):
    _, _, edge, pub, _ = stack
    r = _bearer(edge, HOST, make(pub))
    assert r.status_code == 401, (why, r.text)
    assert f'error_description="{why}"' in r.headers["WWW-Authenticate"]


def test_alg_confusion_an_rs256_key_never_checks_an_hmac(stack):
    # the classic attack: HS256 "signed" with the RSA public key's PEM as the secret
    _, _, edge, pub, _ = stack
    for kid in ("r1", None):
        r = _bearer(edge, RS_HOST, token(pub, {"sub": "x"}, kid=kid))
        assert r.status_code == 401, r.text
        assert r.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_a_get_route_put_back_keeps_its_secret(stack):
    redis, controller, edge, _, _ = stack
    before = redis.get(BASE + "route:hs")
    doc = controller.ok("GET", "/api/v1/routes/hs")
    doc.pop("version")
    assert controller.request("PUT", "/api/v1/routes/hs", doc).status_code == 200
    r = controller.request("POST", "/api/v1/apply", {"routes": [doc]})
    assert r.status_code == 200, r.text
    # the same secret: the ciphertext is kept, nothing changed
    assert redis.get(BASE + "route:hs") == before
    assert _bearer(edge, HOST, token(SECRET)).status_code == 200
    # a fingerprint the route has not stored, or both fields: 422, nothing written
    for key, field in (({"secret_sha256": "0" * 16}, "jwt.keys[0].secret_sha256"),
                       ({"secret": OTHER, "secret_sha256": fingerprint(SECRET)},
                        "jwt.keys[0].secret_sha256"),
                       ({}, "jwt.keys[0].secret"),
                       ({"secret": "short"}, "jwt.keys[0].secret"),
                       ({"secret_enc": "aes-256-gcm:AAAA:AAAA"}, "jwt.keys[0].secret_enc"),
                       ({"secret": SECRET, "pem": "x"}, "jwt.keys[0].pem")):
        r = controller.request("PUT", "/api/v1/routes/hs", _route(**key))
        assert r.status_code == 422, (key, r.text)
        assert r.json()["error"]["field"] == field, (key, r.text)
        assert SECRET not in r.text and OTHER not in r.text  # (it may name the field secret_enc)
        r = controller.request("POST", "/api/v1/apply", {"routes": [dict(_route(**key), id="hs")]})
        assert r.status_code == 422 and r.json()["error"]["field"] == "routes[0]." + field, r.text
    assert redis.get(BASE + "route:hs") == before


def test_a_sealed_secret_copied_to_another_route_does_not_decrypt(stack):
    redis, controller, edge, _, _ = stack
    controller.ok("PUT", "/api/v1/routes/copy", dict(_route(OTHER), host="copy.hs.auth.test"))
    wait_until(lambda: _bearer(edge, "copy.hs.auth.test", token(OTHER)).status_code == 200, 10)
    sealed = json.loads(redis.get(BASE + "route:hs"))["jwt"]["keys"][0]
    # an operator (or an attacker with Redis access) moves hs's secret_enc to route copy:
    # the AAD names the route, so the edge cannot open it and refuses every token
    doc = json.loads(redis.get(BASE + "route:copy"))
    doc.pop("version")
    doc["jwt"]["keys"][0] = sealed
    redis.cli("FCALL", "sy_apply", "1", BASE + "version", "put", "route", "copy",
              json.dumps(doc, separators=(",", ":"), sort_keys=True), "hs-up", "")
    wait_until(lambda: _bearer(edge, "copy.hs.auth.test", token(OTHER)).status_code == 401, 10,
               what="the copied secret_enc refused")
    assert _bearer(edge, "copy.hs.auth.test", token(SECRET)).status_code == 401
    assert _bearer(edge, HOST, token(SECRET)).status_code == 200
    controller.ok("DELETE", "/api/v1/routes/copy")


def test_rotation_dry_run_history_and_revert(stack):
    redis, controller, edge, _, _ = stack
    version = redis.version()
    r = controller.request("PUT", "/api/v1/routes/hs?dry_run=true", _route(THIRD))
    assert r.status_code == 200, r.text
    _no_secret_in(r.text)
    assert "secret_sha256" in r.text
    assert _bearer(edge, HOST, token(SECRET)).status_code == 200
    controller.ok("PUT", "/api/v1/routes/hs", _route(OTHER))
    wait_until(lambda: _bearer(edge, HOST, token(OTHER)).status_code == 200, 10)
    assert _bearer(edge, HOST, token(SECRET)).status_code == 401
    for path in ("/api/v1/history", f"/api/v1/history/{redis.version()}"):
        r = controller.request("GET", path)
        assert r.status_code == 200, r.text
        _no_secret_in(r.text)
    r = controller.request("POST", "/api/v1/revert", {"to_version": version})
    assert r.status_code == 200, r.text
    wait_until(lambda: _bearer(edge, HOST, token(SECRET)).status_code == 200, 10,
               what="the reverted secret")
    assert _bearer(edge, HOST, token(OTHER)).status_code == 401


def test_an_edge_without_the_key_refuses_sealed_secrets(stack, workdir):
    redis, _, _, _, _ = stack
    bare = Edge(redis, workdir, "hs-bare")
    try:
        wait_until(lambda: _bearer(bare, HOST, token(SECRET)).status_code == 401
                   and _bearer(bare, RS_HOST, "x").status_code == 401, 10)
        wait_until(lambda: "cannot be decrypted" in bare.process.output(), 5)
    finally:
        bare.stop()


def test_secrets_are_not_logged(stack, workdir):
    for root, _, files in os.walk(workdir):
        for name in files:
            if name.endswith((".log", ".out", ".err")):
                with open(os.path.join(root, name), errors="replace") as f:
                    text = f.read()
                for s in (SECRET, OTHER, THIRD):
                    assert s not in text, name


def test_without_a_cert_key_the_secret_is_stored_in_plaintext_but_never_answered(
        redis, controller, edges, backends):
    controller.upstream("hs-up", backends["b1"].port)
    r = controller.request("PUT", "/api/v1/routes/hs-plain", dict(_route(SECRET), host="p.hs.test"))
    assert r.status_code == 201, r.text
    _no_secret_in(r.text)
    assert json.loads(redis.get(BASE + "route:hs-plain"))["jwt"]["keys"][0]["secret"] == SECRET
    _no_secret_in(controller.request("GET", "/api/v1/routes/hs-plain").text)
    for e in edges:
        wait_until(lambda e=e: _bearer(e, "p.hs.test", token(SECRET)).status_code == 200, 10)
        assert _bearer(e, "p.hs.test", token(OTHER)).status_code == 401
