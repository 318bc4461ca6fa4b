"""Error pages (issue 22, docs/traffic-policies.md "Error pages"): a route's error_pages
replace the edge's own answers for that route (403, 429, 503, nginx's 502), inline or as a
redirect, changed live; the edge's default pages (switchyard edge --error-pages FILE) for
requests no route matches and routes without a page; an oversized page refused (422) and a
bad file refused at start. Real redis-server, controller, nginx edges."""
import json
import os
import subprocess

import requests

from harness import BIN, Edge, free_port, put_route, wait_until

HOST = "pages.example.com"
DOWN = "<h1>Down for maintenance</h1>"


def _get(edge, path, host=HOST):
    return requests.get(edge.url + path, headers={"Host": host}, timeout=5, allow_redirects=False)


def test_route_pages_replace_the_edges_answers(controller, edges, backends):
    controller.ok("PUT", "/api/v1/upstreams/pages-empty", {"endpoints": []})
    controller.upstream("pages-closed", free_port())          # nothing listens: nginx's 502
    controller.upstream("pages-ok", backends["b3"].port)
    pages = {"503": {"body": DOWN},
             "502": {"body": '{"error":"bad gateway"}', "content_type": "application/json"},
             "403": {"body": "no entry", "content_type": "text/plain"},
             "429": {"redirect": "https://status.example.com/busy"}}
    put_route(controller, "pages-503", {"host": HOST, "path": "/down", "match": "prefix",
                                        "upstream": "pages-empty", "error_pages": pages})
    put_route(controller, "pages-502", {"host": HOST, "path": "/broken", "match": "prefix",
                                        "upstream": "pages-closed", "error_pages": pages})
    put_route(controller, "pages-acl", {"host": HOST, "path": "/acl", "match": "prefix",
                                        "upstream": "pages-ok", "deny": ["127.0.0.0/8"],
                                        "error_pages": pages})
    put_route(controller, "pages-rate", {"host": HOST, "path": "/rate", "match": "prefix",
                                         "upstream": "pages-ok", "error_pages": pages,
                                         "rate_limit": {"rps": 1, "burst": 0}})
    put_route(controller, "pages-none", {"host": HOST, "path": "/plain-down", "match": "prefix",
                                         "upstream": "pages-empty"})
    e = edges[0]
    wait_until(lambda: _get(e, "/plain-down").status_code == 503, 10, what="routes")
    wait_until(lambda: _get(e, "/down").text == DOWN, 10, what="pages")

    r = _get(e, "/down")
    assert r.status_code == 503 and r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["X-Switchyard-Route"] == "pages-503"
    r = _get(e, "/broken")
    assert r.status_code == 502 and r.json() == {"error": "bad gateway"}
    assert r.headers["Content-Type"] == "application/json"
    r = _get(e, "/acl")
    assert r.status_code == 403 and r.text == "no entry"
    statuses = [_get(e, "/rate") for _ in range(3)]
    limited = [r for r in statuses if r.status_code != 200]
    assert limited, [r.status_code for r in statuses]
    assert limited[0].status_code == 302
    assert limited[0].headers["Location"] == "https://status.example.com/busy"
    # a status without a page, and a route without pages: the edge's own short text
    r = _get(e, "/plain-down")
    assert r.status_code == 503 and r.text == "no endpoints\n"
    # live: a new body
    pages["503"] = {"body": "back soon", "content_type": "text/plain"}
    put_route(controller, "pages-503", {"host": HOST, "path": "/down", "match": "prefix",
                                        "upstream": "pages-empty", "error_pages": pages})
    for edge in edges:
        wait_until(lambda edge=edge: _get(edge, "/down").text == "back soon", 10,
                   what="new page on " + edge.id)


def test_oversized_and_bad_pages_are_refused(controller, edges):
    e = edges[1]
    wait_until(lambda: _get(e, "/down").text == "back soon", 10, what="page")
    for pages, field in [
        ({"503": {"body": "x" * 16385}}, "error_pages.503.body"),
        ({"503": {"redirect": "//evil.example"}}, "error_pages.503.redirect"),
        ({"200": {"body": "ok"}}, "error_pages.200"),
        ({"503": {"body": "x", "redirect": "/a"}}, "error_pages.503.redirect"),
    ]:
        r = controller.request("PUT", "/api/v1/routes/pages-503",
                               {"host": HOST, "path": "/down", "match": "prefix",
                                "upstream": "pages-empty", "error_pages": pages})
        assert r.status_code == 422, r.text
        assert field in r.text, (field, r.text)
    # nothing was written: the page is the one stored before
    assert _get(e, "/down").text == "back soon"
    stored = controller.ok("GET", "/api/v1/routes/pages-503")
    assert stored["error_pages"]["503"]["body"] == "back soon"


def test_edge_default_pages(redis, controller, workdir, edges):
    path = os.path.join(workdir, "edge-pages.json")
    with open(path, "w") as f:
        json.dump({"404": {"body": "<h1>nothing here</h1>"},
                   "503": {"body": "edge says down", "content_type": "text/plain"}}, f)
    e = Edge(redis, workdir, "edge-pages", workers=1, extra=["--error-pages", path])
    try:
        # the route's own page shows the edge has the configuration (a 503 alone could be an
        # edge that has not synced yet)
        wait_until(lambda: _get(e, "/down").text == "back soon", 20, what="edge-pages synced")
        r = _get(e, "/nowhere", host="unknown.example.com")
        assert r.status_code == 404 and r.text == "<h1>nothing here</h1>"
        assert r.headers["Content-Type"] == "text/html; charset=utf-8"
        assert r.headers["X-Switchyard-Route"] == "none"
        # a route without pages gets the edge's; a route with its own page keeps it
        assert _get(e, "/plain-down").text == "edge says down"
        assert _get(e, "/down").text == "back soon"
        # the other edges have no default: their own text
        assert _get(edges[0], "/nowhere", host="unknown.example.com").text == "no route\n"
    finally:
        e.stop()


def test_a_bad_error_pages_file_stops_the_edge(workdir, redis):
    path = os.path.join(workdir, "bad-pages.json")
    with open(path, "w") as f:
        json.dump({"503": {"body": "x" * 16385}}, f)
    out = subprocess.run([BIN, "edge", "--listen", f"127.0.0.1:{free_port()}", "--redis",
                          redis.address, "--prefix", os.path.join(workdir, "bad-pages"),
                          "--error-pages", path, "--render-only"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "503.body" in out.stderr and "16384" in out.stderr, out.stderr
