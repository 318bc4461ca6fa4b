"""The edge's explain handler (/_switchyard/explain, lua/switchyard/explain.lua): for a
handful of requests it must name the route the edge then actually serves, say why the
others lost, and describe the options (allow/deny for a client, canary, rewrite,
redirect). Real redis-server, controller and an nginx edge; every route sends to its own
upstream, whose backend names itself in X-Backend."""
import pytest
import requests

from harness import put_route, wait_until

H = "explain.example.com"


@pytest.fixture(scope="module")
def table(controller, backends, edge):
    for n in ("b1", "b2", "b3", "b4"):
        controller.upstream("x-" + n, backends[n].port)
    put_route(controller, "x-exact", {"host": H, "path": "/api", "match": "exact",
                                      "upstream": "x-b1"})
    put_route(controller, "x-prefix", {"host": H, "path": "/api", "upstream": "x-b2"})
    put_route(controller, "x-root", {"host": H, "path": "/", "upstream": "x-b3"})
    put_route(controller, "x-regex", {"host": H, "path": "^/img/.*\\.png$", "match": "regex",
                                      "upstream": "x-b4", "priority": 5})
    put_route(controller, "x-wild", {"host": "*.example.com", "path": "/", "upstream": "x-b4"})
    put_route(controller, "x-canary", {"host": H, "path": "/canary", "upstream": "x-b1",
                                       "canary": {"upstream": "x-b2", "header": "X-Canary",
                                                  "value": "1"}})
    put_route(controller, "x-deny", {"host": H, "path": "/private", "upstream": "x-b1",
                                     "deny": ["127.0.0.0/8"]})
    put_route(controller, "x-rewrite", {"host": H, "path": "/old", "upstream": "x-b1",
                                        "rewrite": {"replace_prefix": "/new"}})
    put_route(controller, "x-redirect", {"host": H, "path": "/moved",
                                         "redirect": {"to": "https://elsewhere.test/",
                                                      "status": 301}})
    wait_until(lambda: edge.get("/moved", H).status_code == 301, 10, what="the table")
    return {"x-b1": "b1", "x-b2": "b2", "x-b3": "b3", "x-b4": "b4"}


def explain(edge, url, base=None, **params):
    r = requests.get((base or edge.metrics_url) + "/_switchyard/explain",
                     params=dict(url=url, **params), timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("host,path,headers", [
    (H, "/api", {}),
    (H, "/api/v1/users", {}),
    (H, "/apix", {}),
    (H, "/img/a/b.png", {}),
    (H, "/img/a/b.jpg", {}),
    ("other.example.com", "/anything", {}),
    (H, "/canary/x", {}),
    (H, "/canary/x", {"X-Canary": "1"}),
    (H, "/old/thing", {}),
    ("nothing.test", "/", {}),
])
def test_explain_names_the_route_the_edge_serves(edge, table, host, path, headers):
    ex = explain(edge, f"http://{host}{path}",
                 header=[f"{k}:{v}" for k, v in headers.items()])
    assert ex["explain_agrees"] is True
    assert ex["version"] >= 1 and ex["edge_id"] == edge.id
    r = edge.get(path, host, headers=headers)
    if ex["route"] is None:
        assert ex["outcome"] == "no_route" and ex["status"] == 404
        assert ex["candidates"] == [] and ex["upstreams"] == []   # lists, also when empty
        assert r.status_code == 404 and r.headers["X-Switchyard-Route"] == "none"
        return
    assert ex["outcome"] == "proxy", ex
    assert r.status_code == 200
    # the upstream explain names is the one whose backend answered
    assert table[ex["upstream"]["name"]] == r.headers["X-Backend"]
    chosen = [c for c in ex["candidates"] if c["chosen"]]
    assert [c["id"] for c in chosen] == [ex["route"]]
    assert all(c["reason"] for c in ex["candidates"])


def test_explain_says_why_the_others_lost(edge, table):
    ex = explain(edge, f"http://{H}/api/v1")
    why = {c["id"]: c["reason"] for c in ex["candidates"]}
    assert ex["route"] == "x-prefix"
    assert ex["host"] == {"entry": H, "kind": "exact", "why": ex["host"]["why"],
                          "tried": [{"entry": H, "kind": "exact", "found": True}]}
    assert why["x-exact"] == "exact path differs"
    assert why["x-root"] == "a longer prefix matched"
    assert why["x-regex"] == "an earlier candidate was chosen"
    assert why["x-wild"] == "host: a more specific host entry has routes"
    ex = explain(edge, "http://other.example.com/x")
    assert ex["host"]["kind"] == "wildcard" and ex["host"]["entry"] == "*.example.com"
    # endpoints in rotation with their health
    eps = ex["upstream"]["endpoints"]
    assert len(eps) == 1 and eps[0]["in_rotation"] is True and eps[0]["health"] == "unknown"


def test_explain_options(edge, table):
    ex = explain(edge, f"http://{H}/private/x", client="127.0.0.1")
    assert ex["options"]["allow_deny"]["verdict"] == "denied"
    assert ex["outcome"] == "forbidden" and ex["status"] == 403
    assert edge.get("/private/x", H).status_code == 403   # the edge agrees
    ex = explain(edge, f"http://{H}/private/x", client="10.1.2.3")
    assert ex["options"]["allow_deny"]["verdict"] == "allowed" and ex["outcome"] == "proxy"
    ex = explain(edge, f"http://{H}/private/x")
    assert ex["options"]["allow_deny"]["verdict"] == "not_checked"
    ex = explain(edge, f"http://{H}/canary/x", header="X-Canary:1")
    assert ex["options"]["canary"]["hit"] is True and ex["upstream"]["name"] == "x-b2"
    assert ex["options"]["canary"]["header"].lower() == "x-canary"
    ex = explain(edge, f"http://{H}/old/thing?q=1")
    assert ex["options"]["rewrite"] == {"from": "/old/thing", "to": "/new/thing"}
    assert edge.get("/old/thing?q=1", H).json()["path"] == "/new/thing?q=1"
    ex = explain(edge, f"http://{H}/moved")
    assert ex["outcome"] == "redirect" and ex["status"] == 301
    assert ex["options"]["redirect"]["location"] == \
        edge.get("/moved", H).headers["Location"]


def test_explain_shows_cors_gzip_and_the_upstream_protocol(controller, backends, edge, table):
    put_route(controller, "x-cors", {"host": H, "path": "/cors", "upstream": "x-b1",
                                     "cors": {"origins": ["https://app.test"],
                                              "credentials": True},
                                     "gzip": {"min_bytes": 10, "types": ["text/plain"]}})
    controller.ok("PUT", "/api/v1/upstreams/x-grpc",
                  {"protocol": "grpc", "endpoints": [{"address": "127.0.0.1:9"}]})
    put_route(controller, "x-grpc", {"host": H, "path": "/pkg.Svc/", "upstream": "x-grpc"})
    wait_until(lambda: explain(edge, f"http://{H}/pkg.Svc/M")["route"] == "x-grpc", 10,
               what="the gRPC route")
    ex = explain(edge, f"http://{H}/cors/x", header="Origin:https://app.test")
    assert ex["options"]["cors"] == {"origin": "https://app.test", "verdict": "allowed",
                                     "allow_origin": "https://app.test", "preflight": False,
                                     "credentials": True}
    assert ex["options"]["gzip"] == {"min_bytes": 10, "types": ["text/plain"]}
    ex = explain(edge, f"http://{H}/cors/x", method="OPTIONS",
                 header=["Origin:https://evil.test", "Access-Control-Request-Method:PUT"])
    assert ex["options"]["cors"]["verdict"] == "refused" and ex["options"]["cors"]["preflight"]
    # the edge agrees: a preflight from a foreign origin is refused
    r = edge.session.options(edge.url + "/cors/x", timeout=5,
                             headers={"Host": H, "Origin": "https://evil.test",
                                      "Access-Control-Request-Method": "PUT"})
    assert r.status_code == 403
    assert explain(edge, f"http://{H}/cors/x")["options"]["cors"]["verdict"] == "no_origin"
    assert explain(edge, f"http://{H}/pkg.Svc/M")["upstream"]["protocol"] == "grpc"
    assert explain(edge, f"http://{H}/api")["upstream"]["protocol"] == "http"


def test_explain_refuses_bad_input_naming_the_field(edge, table):
    for params, field in (({}, "url"), ({"url": "/relative"}, "url"),
                          ({"url": "http://h/", "method": "get me"}, "method"),
                          ({"url": "http://h/", "header": "no colon"}, "header"),
                          ({"url": "http://h/", "client": "999.1.1.1"}, "client")):
        r = requests.get(edge.metrics_url + "/_switchyard/explain", params=params, timeout=5)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["field"] == field and r.json()["error"]


def test_explain_beside_status_on_the_traffic_listener(edge, table):
    ex = explain(edge, f"http://{H}/api", base=edge.url)
    assert ex["route"] == "x-exact"
