"""gzip per route (issue 22, docs/traffic-policies.md "Compression"): the route's types and
min_bytes decide, per response, what nginx's gzip filter compresses in @sy_gzip; a response
the upstream already encoded is left alone; changes apply live; bad input is a 422. Real
redis-server, controller, nginx edges and a loopback backend serving fixed bodies."""
import gzip
import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import put_route, wait_until

HOST = "gzip.example.com"
PLAIN_HOST = "nogzip.example.com"
HTML = ("<html><body>" + "hello gzip " * 500 + "</body></html>").encode()   # ~5.5 kB
SMALL = b"<p>small</p>"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        ctype, body, encoding = {
            "/html": ("text/html; charset=utf-8", HTML, None),
            "/small": ("text/html", SMALL, None),
            "/png": ("image/png", PNG, None),
            "/encoded": ("text/html", gzip.compress(HTML), "gzip"),
        }.get(self.path, ("text/plain", b"?", None))
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def files():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def fetch(edge, path, host=HOST, accept="gzip"):
    """(status, headers dict lowercased, raw body bytes as sent by the edge)."""
    conn = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=5)
    try:
        headers = {"Host": host}
        if accept:
            headers["Accept-Encoding"] = accept
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def _route(controller, gz):
    body = {"host": HOST, "path": "/", "match": "prefix", "upstream": "gzip-files"}
    if gz is not None:
        body["gzip"] = gz
    put_route(controller, "gzip", body)


@pytest.fixture(scope="module")
def routes(controller, edges, files):
    controller.upstream("gzip-files", files)
    _route(controller, {"min_bytes": 1000, "types": ["text/html", "application/json"]})
    put_route(controller, "nogzip", {"host": PLAIN_HOST, "path": "/", "match": "prefix",
                                     "upstream": "gzip-files"})
    for e in edges:
        wait_until(lambda e=e: fetch(e, "/html")[1].get("content-encoding") == "gzip", 10,
                   what="gzip route on " + e.id)
        wait_until(lambda e=e: fetch(e, "/html", PLAIN_HOST)[0] == 200, 10, what="plain route")


def test_listed_types_above_the_minimum_are_compressed(edges, routes):
    e = edges[0]
    status, h, body = fetch(e, "/html")
    assert status == 200 and h["content-encoding"] == "gzip"
    assert gzip.decompress(body) == HTML
    assert len(body) < len(HTML) // 5
    assert "accept-encoding" in h.get("vary", "").lower()
    # a client that does not accept gzip gets the body as it is
    status, h, body = fetch(e, "/html", accept=None)
    assert status == 200 and "content-encoding" not in h and body == HTML
    status, h, body = fetch(e, "/html", accept="br")
    assert "content-encoding" not in h and body == HTML


def test_other_types_short_bodies_and_encoded_responses_are_left_alone(edges, routes):
    e = edges[0]
    status, h, body = fetch(e, "/small")            # below min_bytes
    assert status == 200 and "content-encoding" not in h and body == SMALL
    status, h, body = fetch(e, "/png")              # not a listed type
    assert status == 200 and "content-encoding" not in h and body == PNG
    status, h, body = fetch(e, "/encoded")          # the upstream's own gzip, untouched
    assert status == 200 and h["content-encoding"] == "gzip"
    assert gzip.decompress(body) == HTML            # compressed once, not twice
    # a route without gzip never compresses
    status, h, body = fetch(e, "/html", PLAIN_HOST)
    assert status == 200 and "content-encoding" not in h and body == HTML


def test_gzip_changes_live_and_bad_input_is_refused(controller, edges, routes):
    e = edges[1]
    _route(controller, {"min_bytes": 10, "types": ["image/png", "text/html"]})
    wait_until(lambda: fetch(e, "/png")[1].get("content-encoding") == "gzip", 10, what="png")
    status, h, body = fetch(e, "/small")
    assert h.get("content-encoding") == "gzip" and gzip.decompress(body) == SMALL
    for gz, field in [({"types": ["Text/HTML"]}, "gzip.types[0]"),
                      ({"min_bytes": -1}, "gzip.min_bytes"),
                      ({"types": []}, "gzip.types")]:
        r = controller.request("PUT", "/api/v1/routes/gzip",
                               {"host": HOST, "path": "/", "match": "prefix",
                                "upstream": "gzip-files", "gzip": gz})
        assert r.status_code == 422 and field in r.text, r.text
    assert fetch(e, "/png")[1].get("content-encoding") == "gzip"   # unchanged
    _route(controller, None)
    wait_until(lambda: "content-encoding" not in fetch(e, "/html")[1], 10, what="gzip removed")
