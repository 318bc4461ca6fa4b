"""GET /api/v1/explain gives the edges' answer: a random route table (exact, wildcard, one-label
wildcard and catch-all hosts; exact, prefix, segment_prefix and regex paths; priorities;
canaries) and a few hundred random requests, each explained through the controller and then
sent to the edge; the route explain names must be the route that serves the request.

Real parts: redis-server, the controller, one nginx edge (whose /_switchyard/explain the
controller asks), two demo backends. Every route sets `X-Route-Id: <id>` on the requests it
proxies and the backend echoes its headers, so the answer itself says which route served.
The table is drawn from a seed (SWITCHYARD_EXPLAIN_SEED=N repeats a run; it is printed).
"""
import os
import random
import time
import urllib.parse

import pytest
from browser_support import browser, css, explain_in_page, open_page, severe  # noqa: F401
from harness import Edge, start_backends
from selenium.webdriver.common.by import By

REQUESTS = 300
ROUTES = 60
DOMAIN = "ex.test"
HOSTS = ["a.ex.test", "b.ex.test", "x.a.ex.test", "ex.test", "*.ex.test", "*.a.ex.test",
         "*.b.ex.test", "*.x.a.ex.test", "*"]
REQUEST_HOSTS = ["a.ex.test", "b.ex.test", "x.a.ex.test", "ex.test", "q.ex.test", "q.a.ex.test",
                 "q.r.a.ex.test", "q.b.ex.test", "q.r.b.ex.test", "y.x.a.ex.test", "z.y.x.a.ex.test",
                 "other.test", "A.EX.TEST", "a.ex.test."]
SEGMENTS = ["api", "v1", "v2", "users", "img", "static", "x"]
REGEXES = [r"^/api/v[0-9]+/", r"/users/[0-9]+$", r"\.png$", r"^/img/", r"^/static/.+\.css$",
           r"^/x", r"v1", r"^/$"]


def random_path(rng, depth=None):
    depth = rng.randint(0, 3) if depth is None else depth
    parts = [rng.choice(SEGMENTS) for _ in range(depth)]
    return "/" + "/".join(parts)


def random_route(rng, i):
    host = rng.choice(HOSTS)
    match = rng.choice(["exact", "prefix", "prefix", "segment_prefix", "regex", "regex"])
    if match == "regex":
        path = rng.choice(REGEXES)
    else:
        path = random_path(rng, rng.randint(0, 2) if match != "exact" else rng.randint(1, 3))
        if match == "prefix" and len(path) > 2 and rng.random() < 0.3:
            path = path[:-1]  # a prefix ending inside a segment: /ap matches /api
        if match == "segment_prefix" and path == "/":
            path = "/" + rng.choice(SEGMENTS)
    rid = f"r{i:03d}"
    route = {"id": rid, "host": host, "path": path, "match": match,
             "priority": rng.choice([0, 0, 1, 2, 5]),
             "upstream": "blue", "request_headers": {"set": {"X-Route-Id": rid}}}
    if host.startswith("*.") and rng.random() < 0.3:
        route["wildcard"] = "one_label"
    if rng.random() < 0.2:
        route["canary"] = {"upstream": "green", "header": "X-Canary", "value": "1"}
    return route


def random_request(rng):
    host = rng.choice(REQUEST_HOSTS)
    path = random_path(rng)
    roll = rng.random()
    if roll < 0.15:
        path += f"/{rng.randint(0, 999)}"
    elif roll < 0.3:
        path += f"/{rng.randint(0, 99)}.png"
    elif roll < 0.35:
        path += "/site.css"
    elif roll < 0.45 and len(path) > 2:
        path += "x"  # /apix: a prefix match, not a segment one
    headers = {"X-Canary": "1"} if rng.random() < 0.3 else {}
    return host, path, headers


@pytest.fixture(scope="module")
def stack(redis, controller, workdir):
    backends = start_backends("blue", "green")
    edge = Edge(redis, workdir, "explain-edge", workers=2)
    yield {"edge": edge, "backends": backends}
    edge.stop()
    for b in backends.values():
        b.shutdown()
        b.server_close()


def explain(controller, url, headers=None, **extra):
    query = [("url", url)] + [("header", f"{k}:{v}") for k, v in (headers or {}).items()]
    query += list(extra.items())
    return controller.request("GET", "/api/v1/explain?" + urllib.parse.urlencode(query))


def test_explain_names_the_route_the_edge_serves(stack, controller, redis):
    seed = int(os.environ.get("SWITCHYARD_EXPLAIN_SEED") or time.time_ns() % 1_000_000)
    print(f"explain random table: SWITCHYARD_EXPLAIN_SEED={seed}")
    rng = random.Random(seed)
    edge = stack["edge"]
    blue, green = stack["backends"]["blue"], stack["backends"]["green"]
    routes = [random_route(rng, i) for i in range(ROUTES)]
    body = {"upstreams": [{"name": "blue", "endpoints": [{"address": f"127.0.0.1:{blue.port}"}]},
                          {"name": "green", "endpoints": [{"address": f"127.0.0.1:{green.port}"}]}],
            "routes": routes}
    applied = controller.ok("POST", "/api/v1/apply", body)
    version = applied["version"]
    status = controller.ok("GET", f"/api/v1/status?wait_version={version}&timeout_ms=20000")
    assert status["converged"], status["problems"]
    by_id = {r["id"]: r for r in routes}

    served = {}
    outcomes = {}
    mismatches = []
    for n in range(REQUESTS):
        host, path, headers = random_request(rng)
        url = f"http://{host}{path}"
        r = explain(controller, url, headers)
        assert r.status_code == 200, f"{url}: {r.status_code} {r.text}"
        answer = r.json()
        assert answer["answered_by"]["id"] == edge.id
        assert answer["version"] == version, answer
        chosen = answer["route"]
        outcome = answer["outcome"]
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        # the candidates say the same as the verdict: exactly the chosen one is chosen
        picked = [c["id"] for c in answer["candidates"] if c["chosen"]]
        assert picked == ([chosen] if chosen else []), (url, answer["candidates"])

        actual = edge.get(path, host=host, headers=headers)
        if actual.status_code == 200 and actual.headers.get("X-Backend"):
            echo = actual.json()
            got = echo["headers"].get("x-route-id")
            backend = echo["backend"]
        else:
            # the edge's own answers name the route, "none" when none matched
            got, backend = actual.headers.get("X-Switchyard-Route"), None
            got = None if got == "none" else got
        if got != chosen:
            mismatches.append((url, headers, chosen, outcome, got, actual.status_code))
            continue
        if chosen is None:
            assert outcome == "no_route", (url, answer)
            assert actual.status_code == answer["status"] == 404, (url, actual.status_code, answer)
            continue
        assert outcome == "proxy", (url, answer)
        served[chosen] = served.get(chosen, 0) + 1
        # the upstream explain names is the one that answered (canary hit or not)
        canary = (answer.get("options") or {}).get("canary")
        expected = "green" if canary and canary["hit"] else "blue"
        assert answer["upstream"]["name"] == expected, (url, headers, answer["upstream"], canary)
        assert backend == expected, (url, headers, backend, canary)
        if "canary" not in by_id[chosen]:
            assert canary is None, (url, answer["options"])

    print(f"explain: {sum(served.values())} requests served by {len(served)} routes; outcomes {outcomes}")
    assert not mismatches, (f"seed {seed}: explain and the edge disagree on {len(mismatches)} of "
                            f"{REQUESTS} requests (url, headers, explained, outcome, served, status): "
                            f"{mismatches[:10]}")
    # the draw exercised the router, not only its 404: many routes served, some requests unrouted
    assert len(served) >= 10, (seed, served, outcomes)
    assert sum(served.values()) >= REQUESTS // 5, (seed, served, outcomes)


def fixed_table(stack, controller):
    """Two routes of one host that an exact path tells apart; waits until the edge has them."""
    blue = stack["backends"]["blue"]
    controller.ok("PUT", "/api/v1/upstreams/blue", {"endpoints": [{"address": f"127.0.0.1:{blue.port}"}]})
    controller.route("fixed-exact", "fixed.test", "/api/x", "blue", match="exact")
    controller.route("fixed-prefix", "fixed.test", "/api", "blue")
    v = controller.status()["version"]
    assert controller.ok("GET", f"/api/v1/status?wait_version={v}&timeout_ms=20000")["converged"]
    return blue


def test_explain_reasons_and_refusals(stack, controller):
    blue = fixed_table(stack, controller)

    r = explain(controller, "http://fixed.test/api/x", {"X-Canary": "1"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["route"] == "fixed-exact"
    assert answer["request"]["host"] == "fixed.test" and answer["request"]["path"] == "/api/x"
    assert answer["request"]["headers"].get("x-canary") == "1"
    losers = {c["id"]: c["reason"] for c in answer["candidates"] if not c["chosen"]}
    assert "fixed-prefix" in losers, answer["candidates"]
    assert answer["upstream"]["name"] == "blue"
    assert [e["address"] for e in answer["upstream"]["endpoints"]] == [f"127.0.0.1:{blue.port}"]

    # bad arguments: 422 naming the field, from the controller, before any edge is asked
    for query, field in ((("url", "ftp://fixed.test/"),), "url"), \
                        ((("url", "http://fixed.test/"), ("method", "G T")), "method"), \
                        ((("url", "http://fixed.test/"), ("header", "NoColon")), "header"), \
                        ((("url", "http://fixed.test/"), ("client", "300.1.1.1")), "client"):
        r = controller.request("GET", "/api/v1/explain?" + urllib.parse.urlencode(query))
        assert r.status_code == 422, (query, r.text)
        assert r.json()["error"]["field"] == field, r.text
    r = controller.request("GET", "/api/v1/explain?url=" + urllib.parse.quote("http://fixed.test/", safe=""),
                           headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    # a named edge that does not exist: 503 naming it
    r = explain(controller, "http://fixed.test/", edge="no-such-edge")
    assert r.status_code == 503 and "no-such-edge" in r.json()["error"]["message"], r.text


def test_explain_from_the_status_page(browser, stack, controller):
    """The page's explain form shows the edge's answer: the route, and why the other lost."""
    fixed_table(stack, controller)
    open_page(browser, controller, controller.token)
    browser.get_log("browser")
    verdict = explain_in_page(browser, "http://fixed.test/api/x", headers=["X-Canary: 1"])
    assert verdict.get_attribute("id") == "explain-verdict", verdict.text
    assert verdict.get_attribute("data-route") == "fixed-exact", verdict.text
    assert "proxy" in verdict.text and "explain-edge" in verdict.text, verdict.text
    chosen = css(browser, 'tr[data-candidate="fixed-exact"]')
    lost = css(browser, 'tr[data-candidate="fixed-prefix"]')
    assert chosen and chosen.find_elements(By.CSS_SELECTOR, ".badge.ok"), chosen and chosen.text
    # the loser shows the edge's reason in its last cell, not the chosen badge
    assert lost and not lost.find_elements(By.CSS_SELECTOR, ".badge"), lost and lost.text
    assert lost.find_elements(By.TAG_NAME, "td")[-1].text, lost.text
    assert severe(browser.get_log("browser")) == []
