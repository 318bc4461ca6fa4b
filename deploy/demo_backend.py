#!/usr/bin/env python3
"""A tiny HTTP backend for `make run` demos and the integration tests.

It answers every request with JSON naming itself and echoing what it received (method,
path with query exactly as sent, headers), so a person or a test can see which endpoint
served a request and what the edge forwarded. `/healthz` answers 200 unless told otherwise.
"""
import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keepalive, as the edges use it

    def _answer(self):
        server = self.server
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status = server.status
        body = json.dumps({
            "backend": server.name,
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }).encode() + b"\n"
        with server.lock:
            server.hits += 1
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", server.name)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s %s\n" % (self.server.name, fmt % args))


class Backend(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host, port, name, status=200, verbose=False):
        super().__init__((host, port), _Handler)
        self.name = name
        self.status = status
        self.verbose = verbose
        self.hits = 0
        self.lock = threading.Lock()

    @property
    def port(self):
        return self.server_address[1]

    def start_in_thread(self):
        t = threading.Thread(target=self.serve_forever, name=f"backend-{self.name}", daemon=True)
        t.start()
        return self


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:9101", help="host:port to listen on")
    ap.add_argument("--name", default="demo", help="name reported in every answer")
    ap.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")
    server = Backend(host.strip("[]") or "127.0.0.1", int(port), args.name, verbose=args.verbose)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
