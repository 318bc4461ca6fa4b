"""CORS per route (issue 22, docs/traffic-policies.md "CORS"): preflights answered by the
edge without reaching the upstream, the Access-Control-* headers and Vary: Origin on
proxied answers, a foreign origin refused, a change applied live, and the controller's 422
for "*" with credentials. Real redis-server, controller, nginx edges and backend."""
import requests

from harness import put_route, wait_until

HOST = "cors.example.com"
ANY = "cors-any.example.com"
APP = "https://app.example.com"
CORS = {"origins": [APP, "http://localhost:3000"], "methods": ["GET", "PUT"],
        "headers": ["X-Token", "Content-Type"], "expose_headers": ["X-Backend"],
        "credentials": True, "max_age_s": 120}


def _req(edge, method, path, host=HOST, **headers):
    return requests.request(method, edge.url + path, headers=dict(headers, Host=host), timeout=5,
                            allow_redirects=False)


def _preflight(edge, origin, host=HOST, method="PUT"):
    return _req(edge, "OPTIONS", "/api/x", host, Origin=origin,
                **{"Access-Control-Request-Method": method,
                   "Access-Control-Request-Headers": "x-token"})


def _vary(r):
    return [v.strip().lower() for v in r.headers.get("Vary", "").split(",") if v.strip()]


def _setup(controller, edges, backends):
    controller.upstream("cors-up", backends["b2"].port)
    put_route(controller, "cors", {"host": HOST, "path": "/", "match": "prefix",
                                   "upstream": "cors-up", "cors": CORS})
    put_route(controller, "cors-any", {"host": ANY, "path": "/", "match": "prefix",
                                       "upstream": "cors-up",
                                       "cors": {"origins": ["*"], "headers": ["*"]}})
    for e in edges:
        wait_until(lambda e=e: _preflight(e, APP).status_code == 204, 10, what="cors on " + e.id)
        wait_until(lambda e=e: _preflight(e, APP, ANY).status_code == 204, 10, what="any on " + e.id)


def test_preflight_is_answered_at_the_edge(controller, edges, backends):
    _setup(controller, edges, backends)
    b = backends["b2"]
    for e in edges:
        before = b.hits
        r = _preflight(e, APP)
        assert r.status_code == 204, r.text
        assert r.content == b""
        assert r.headers["Access-Control-Allow-Origin"] == APP
        assert r.headers["Access-Control-Allow-Credentials"] == "true"
        assert r.headers["Access-Control-Allow-Methods"] == "GET, PUT"
        assert r.headers["Access-Control-Allow-Headers"] == "X-Token, Content-Type"
        assert r.headers["Access-Control-Max-Age"] == "120"
        assert "origin" in _vary(r)
        assert "X-Backend" not in r.headers
        assert b.hits == before, "the preflight reached the upstream"


def test_preflight_from_a_foreign_origin_is_refused(controller, edges, backends):
    b = backends["b2"]
    e = edges[0]
    for origin in ("https://evil.example", "https://app.example.com.evil.example", "null",
                   APP.upper(), APP + "/"):
        before = b.hits
        r = _preflight(e, origin)
        assert r.status_code == 403, (origin, r.status_code)
        assert "Access-Control-Allow-Origin" not in r.headers
        assert "Access-Control-Allow-Methods" not in r.headers
        assert "origin" in _vary(r)
        assert b.hits == before


def test_requests_get_the_headers_for_allowed_origins_only(controller, edges):
    e = edges[0]
    r = _req(e, "GET", "/api/data", Origin=APP)
    assert r.status_code == 200 and r.headers["X-Backend"] == "b2"
    assert r.headers["Access-Control-Allow-Origin"] == APP
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert r.headers["Access-Control-Expose-Headers"] == "X-Backend"
    assert "origin" in _vary(r)
    # a foreign origin is proxied (the browser, not the edge, withholds the answer) but
    # gets no Access-Control-* header; Vary still tells caches the answer depends on Origin
    r = _req(e, "GET", "/api/data", Origin="https://evil.example")
    assert r.status_code == 200
    assert not [h for h in r.headers if h.lower().startswith("access-control-")]
    assert "origin" in _vary(r)
    # no Origin at all: the same
    r = _req(e, "GET", "/api/data")
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
    # an OPTIONS that is not a preflight (no Access-Control-Request-Method) goes upstream
    r = _req(e, "OPTIONS", "/api/data", Origin=APP)
    assert r.status_code == 200 and r.headers["X-Backend"] == "b2"


def test_wildcard_origin(controller, edges):
    e = edges[0]
    r = _preflight(e, "https://anyone.example", ANY)
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Access-Control-Allow-Headers"] == "*"
    assert r.headers["Access-Control-Allow-Methods"] == "GET, HEAD, POST"   # the default
    assert "Access-Control-Allow-Credentials" not in r.headers
    for headers in ({"Origin": "https://anyone.example"}, {}):
        r = _req(e, "GET", "/x", ANY, **headers)
        assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "*"


def test_the_edges_own_502_carries_the_cors_headers(controller, edges):
    from harness import free_port
    controller.upstream("cors-closed", free_port())          # nothing listens: nginx's 502
    put_route(controller, "cors-502", {"host": "cors-502.example.com", "path": "/",
                                       "upstream": "cors-closed", "cors": CORS})
    for e in edges:
        wait_until(lambda e=e: _req(e, "GET", "/x", "cors-502.example.com",
                                    Origin=APP).status_code == 502, 10, what="502 on " + e.id)
        r = _req(e, "GET", "/x", "cors-502.example.com", Origin=APP)
        assert r.headers.get("Access-Control-Allow-Origin") == APP, r.headers
        assert r.headers.get("Access-Control-Allow-Credentials") == "true"
        assert "origin" in _vary(r)
        r = _req(e, "GET", "/x", "cors-502.example.com", Origin="https://evil.example.com")
        assert r.status_code == 502 and "Access-Control-Allow-Origin" not in r.headers


def test_ipv6_origins(controller, edges):
    origin = "http://[::1]:3000"
    put_route(controller, "cors-v6", {"host": "cors-v6.example.com", "path": "/",
                                      "upstream": "cors-up", "cors": {"origins": [origin]}})
    for e in edges:
        wait_until(lambda e=e: _preflight(e, origin, "cors-v6.example.com").status_code == 204,
                   10, what="IPv6 origin on " + e.id)
        r = _req(e, "GET", "/x", "cors-v6.example.com", Origin=origin)
        assert r.status_code == 200 and r.headers.get("Access-Control-Allow-Origin") == origin
        assert _preflight(e, "http://[::2]:3000", "cors-v6.example.com").status_code == 403
    r = controller.request("PUT", "/api/v1/routes/cors-v6",
                           {"host": "cors-v6.example.com", "path": "/", "upstream": "cors-up",
                            "cors": {"origins": ["http://[0:0::1]:3000"]}})
    assert r.status_code == 422 and "[::1]" in r.text, r.text


def test_cors_changes_live_and_bad_input_is_refused(controller, edges, backends):
    b = backends["b2"]
    e = edges[1]
    # "*" with credentials: 422 naming the field, nothing written
    r = controller.request("PUT", "/api/v1/routes/cors",
                           {"host": HOST, "path": "/", "match": "prefix", "upstream": "cors-up",
                            "cors": {"origins": ["*"], "credentials": True}})
    assert r.status_code == 422, r.text
    assert "cors.credentials" in r.text
    assert _preflight(e, APP).status_code == 204
    r = controller.request("PUT", "/api/v1/routes/cors",
                           {"host": HOST, "path": "/", "match": "prefix", "upstream": "cors-up",
                            "cors": dict(CORS, origins=["https://app.example.com/"])})
    assert r.status_code == 422 and "cors.origins[0]" in r.text, r.text
    # a new origin, live
    put_route(controller, "cors", {"host": HOST, "path": "/", "match": "prefix",
                                   "upstream": "cors-up",
                                   "cors": dict(CORS, origins=["https://other.example"])})
    wait_until(lambda: _preflight(e, "https://other.example").status_code == 204, 10,
               what="new origin")
    assert _preflight(e, APP).status_code == 403
    # cors removed: the preflight is an ordinary request again and reaches the upstream
    put_route(controller, "cors", {"host": HOST, "path": "/", "match": "prefix",
                                   "upstream": "cors-up"})
    before = b.hits
    wait_until(lambda: _preflight(e, APP).headers.get("X-Backend") == "b2", 10,
               what="cors removed")
    assert b.hits > before
    assert "Access-Control-Allow-Origin" not in _preflight(e, APP).headers
