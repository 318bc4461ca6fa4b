"""The admin API contract against a real controller and Redis: status codes, error bodies,
and above all that a rejected request writes nothing and does not bump the version."""
import json

import pytest
import requests

from harness import BASE, json_of


@pytest.fixture(scope="module")
def seeded(controller):
    controller.ok("PUT", "/api/v1/upstreams/api-up",
                  {"endpoints": [{"address": "127.0.0.1:9", "weight": 1}]})
    controller.ok("PUT", "/api/v1/routes/api-route",
                  {"host": "api.example.com", "path": "/", "upstream": "api-up"})
    return controller


GOOD_ROUTE = {"host": "bbs.test.com", "path": "/api", "match": "prefix", "upstream": "api-up",
              "priority": 0}
GOOD_UPSTREAM = {"endpoints": [{"address": "10.0.0.1:10001", "weight": 1}],
                 "balance": "round_robin"}


def _route(**kw):
    body = dict(GOOD_ROUTE)
    body.update(kw)
    return {k: v for k, v in body.items() if v is not _DROP}


def _upstream(**kw):
    body = json.loads(json.dumps(GOOD_UPSTREAM))
    body.update(kw)
    return body


def _eps(*addrs, weight=1):
    return {"endpoints": [{"address": a, "weight": weight} for a in addrs]}


_DROP = object()

# (method, path, body or raw string, expected status, expected error field or None)
BAD = [
    ("PUT", "/api/v1/routes/r1", "{not json", 400, None),
    ("PUT", "/api/v1/routes/r1", "[1,2]", 400, None),
    ("PUT", "/api/v1/routes/Bad_ID", _route(), 422, "id"),
    ("PUT", "/api/v1/routes/" + "a" * 64, _route(), 422, "id"),
    ("PUT", "/api/v1/routes/r1", _route(host="bad host"), 422, "host"),
    ("PUT", "/api/v1/routes/r1", _route(host="**"), 422, "host"),
    ("PUT", "/api/v1/routes/r1", _route(host="a.*.example.com"), 422, "host"),
    ("PUT", "/api/v1/routes/r1", _route(host="-lead.example.com"), 422, "host"),
    ("PUT", "/api/v1/routes/r1", _route(host="x" * 64 + ".example.com"), 422, "host"),
    ("PUT", "/api/v1/routes/r1", _route(path="noslash"), 422, "path"),
    ("PUT", "/api/v1/routes/r1", _route(path="/with space"), 422, "path"),
    ("PUT", "/api/v1/routes/r1", _route(match="fuzzy"), 422, "match"),
    ("PUT", "/api/v1/routes/r1", _route(match="regex", path="^/(unclosed"), 422, "path"),
    ("PUT", "/api/v1/routes/r1", _route(upstream="nope"), 422, "upstream"),
    ("PUT", "/api/v1/routes/r1", _route(upstream=_DROP), 422, "upstream"),
    ("PUT", "/api/v1/routes/r1", _route(priority="high"), 422, "priority"),
    ("PUT", "/api/v1/routes/r1", _route(hots="typo.example.com"), 422, "hots"),
    ("PUT", "/api/v1/routes/r1", _route(id="other"), 422, "id"),
    ("PUT", "/api/v1/upstreams/Bad", _upstream(), 422, "name"),
    ("PUT", "/api/v1/upstreams/u1", _eps("10.0.0.1"), 422, "endpoints[0].address"),
    ("PUT", "/api/v1/upstreams/u1", _eps("300.0.0.1:80"), 422, "endpoints[0].address"),
    ("PUT", "/api/v1/upstreams/u1", _eps("10.0.0.1:0"), 422, "endpoints[0].address"),
    ("PUT", "/api/v1/upstreams/u1", _eps("10.0.0.1:65536"), 422, "endpoints[0].address"),
    ("PUT", "/api/v1/upstreams/u1", _eps("::1:80"), 422, "endpoints[0].address"),
    ("PUT", "/api/v1/upstreams/u1", _eps("[::1]"), 422, "endpoints[0].address"),
    ("PUT", "/api/v1/upstreams/u1", _eps("[fe80::zz]:80"), 422, "endpoints[0].address"),
    ("PUT", "/api/v1/upstreams/u1", _eps("app.internal:80"), 422, "endpoints[0].address"),
    ("PUT", "/api/v1/upstreams/u1", _eps("10.0.0.1:80", weight=0), 422, "endpoints[0].weight"),
    ("PUT", "/api/v1/upstreams/u1", _eps("10.0.0.1:80", weight=1001), 422,
     "endpoints[0].weight"),
    ("PUT", "/api/v1/upstreams/u1", _eps("10.0.0.1:80", "10.0.0.1:80"), 422,
     "endpoints[1].address"),
    ("PUT", "/api/v1/upstreams/u1", _upstream(balance="random"), 422, "balance"),
    ("PUT", "/api/v1/upstreams/u1", {"endpoints": "10.0.0.1:80"}, 422, "endpoints"),
    ("PUT", "/api/v1/upstreams/nope/endpoints/10.0.0.1:80", {"weight": 1}, 404, None),
    ("PUT", "/api/v1/upstreams/api-up/endpoints/10.0.0.1", {"weight": 1}, 422, "address"),
    ("PUT", "/api/v1/upstreams/api-up/endpoints/10.0.0.1:80", {"weight": -1}, 422, "weight"),
    ("DELETE", "/api/v1/upstreams/api-up/endpoints/10.9.9.9:80", None, 404, None),
    ("DELETE", "/api/v1/routes/does-not-exist", None, 404, None),
    ("DELETE", "/api/v1/upstreams/does-not-exist", None, 404, None),
    ("DELETE", "/api/v1/upstreams/api-up", None, 409, None),
    ("GET", "/api/v1/routes/does-not-exist", None, 404, None),
    ("POST", "/api/v1/apply", {"routes": [dict(_route(), id="x1", host="bad host")]}, 422,
     "routes[0].host"),
]


@pytest.mark.parametrize("method,path,body,status,field", BAD,
                         ids=[f"{m} {p[:48]} {s} {f}" for m, p, _, s, f in BAD])
def test_bad_input_is_rejected_and_nothing_is_written(seeded, redis, method, path, body,
                                                      status, field):
    version, keys = redis.version(), redis.config_keys()
    if isinstance(body, str):
        r = seeded.request(method, path, raw=body)
    else:
        r = seeded.request(method, path, body)
    assert r.status_code == status, r.text
    err = json_of(r).get("error")
    assert isinstance(err, dict), r.text
    assert err.get("code") and err.get("message"), err
    if field is not None:
        assert err.get("field") == field, err
    assert redis.version() == version
    assert redis.config_keys() == keys


def test_delete_of_upstream_in_use_names_the_routes(seeded):
    r = seeded.request("DELETE", "/api/v1/upstreams/api-up")
    assert r.status_code == 409
    assert "api-route" in r.text


def test_batch_lists_every_problem_and_writes_nothing(seeded, redis):
    version, keys = redis.version(), redis.config_keys()
    batch = {
        "upstreams": [{"name": "batch-up", "endpoints": [{"address": "10.0.0.1:99999"}]}],
        "routes": [
            {"id": "batch-ok", "host": "batch.example.com", "path": "/", "upstream": "api-up"},
            {"id": "batch-bad-host", "host": "bad_host", "path": "/", "upstream": "api-up"},
            {"id": "batch-bad-up", "host": "batch.example.com", "path": "/x",
             "upstream": "missing"},
        ],
    }
    r = seeded.request("POST", "/api/v1/apply", batch)
    assert r.status_code == 422, r.text
    details = r.json()["error"]["details"]
    fields = {d["field"] for d in details}
    assert {"upstreams[0].endpoints[0].address", "routes[1].host",
            "routes[2].upstream"} <= fields, details
    assert redis.version() == version
    assert redis.config_keys() == keys


def test_batch_is_one_version_and_all_or_nothing(seeded, redis, edges, backends):
    before = redis.version()
    batch = {
        "upstreams": [{"name": "batch-up", "endpoints": [
            {"address": f"127.0.0.1:{backends['b1'].port}", "weight": 1}]}],
        "routes": [{"id": f"batch-{i}", "host": "batch.example.com", "path": f"/p{i}",
                    "upstream": "batch-up"} for i in range(20)],
    }
    r = seeded.request("POST", "/api/v1/apply", batch)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == before + 1 == redis.version()
    stored = json.loads(redis.get(BASE + "route:batch-7"))
    assert stored["version"] == before + 1 and stored["path"] == "/p7"
    # applying the same batch again changes nothing and does not bump the version
    r = seeded.request("POST", "/api/v1/apply", batch)
    assert r.status_code == 200, r.text
    assert redis.version() == before + 1


def test_documents_are_plain_json_in_redis(seeded, redis):
    route = json.loads(redis.get(BASE + "route:api-route"))
    assert route["host"] == "api.example.com" and route["path"] == "/"
    assert route["upstream"] == "api-up" and route["version"] >= 1
    up = json.loads(redis.get(BASE + "upstream:api-up"))
    assert up["endpoints"] == [{"address": "127.0.0.1:9", "weight": 1}]
    assert "api-route" in redis.cli("SMEMBERS", BASE + "routes").split()


def test_get_answers_carry_the_version(seeded, redis):
    r = seeded.ok("GET", "/api/v1/routes/api-route")
    assert r["id"] == "api-route" and r["host"] == "api.example.com"
    assert r["version"] == json.loads(redis.get(BASE + "route:api-route"))["version"]
    lst = seeded.ok("GET", "/api/v1/routes")
    assert any(i["id"] == "api-route" for i in lst["items"])
    assert lst["version"] == redis.version()
    ups = seeded.ok("GET", "/api/v1/upstreams")
    assert any(i["name"] == "api-up" for i in ups["items"])


def test_put_answers_201_then_200(seeded):
    assert seeded.put("/api/v1/upstreams/fresh", GOOD_UPSTREAM).status_code == 201
    assert seeded.put("/api/v1/upstreams/fresh", GOOD_UPSTREAM).status_code == 200
    assert seeded.request("DELETE", "/api/v1/upstreams/fresh").status_code in (200, 204)
    assert seeded.request("GET", "/api/v1/upstreams/fresh").status_code == 404


def test_ipv6_endpoint_in_path(seeded, redis):
    r = seeded.put("/api/v1/upstreams/api-up/endpoints/[::1]:8080", {"weight": 5})
    assert r.status_code in (200, 201), r.text
    up = json.loads(redis.get(BASE + "upstream:api-up"))
    assert {"address": "[::1]:8080", "weight": 5} in up["endpoints"]
    r = seeded.request("DELETE", "/api/v1/upstreams/api-up/endpoints/%5B::1%5D:8080")
    assert r.status_code in (200, 204), r.text


def test_auth_is_required_and_healthz_is_open(seeded, redis):
    version = redis.version()
    url = seeded.url
    assert requests.get(url + "/api/v1/routes", timeout=5).status_code == 401
    r = requests.put(url + "/api/v1/routes/sneaky", json=GOOD_ROUTE, timeout=5,
                     headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"]
    assert requests.get(url + "/api/v1/status", timeout=5,
                        headers={"Authorization": "Basic dGVzdA=="}).status_code == 401
    assert requests.get(url + "/healthz", timeout=5).status_code == 200
    assert redis.version() == version


def test_status_lists_live_edges(seeded, edges, redis):
    seeded.ok("PUT", "/api/v1/routes/status-probe",
              {"host": "status.example.com", "path": "/", "upstream": "api-up"})
    version = redis.version()

    def all_applied():
        st = seeded.status()
        got = {e["id"]: e for e in st["edges"]}
        return st["version"] == version and all(
            e.id in got and got[e.id]["applied_version"] == version for e in edges) and st
    from harness import wait_until
    st = wait_until(all_applied, 5, what="every edge reporting the current version")
    for e in st["edges"]:
        assert e["last_seen"]
