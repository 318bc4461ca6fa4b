"""Real parts for the stream tests and bench/stream.py: `switchyard stream`, TCP and UDP echo
servers on loopback, and stream writes. Everything binds 127.0.0.1 on free ports."""
import json
import os
import re
import socket
import threading
import time
import urllib.request

from harness import BASE, BIN, Process, wait_until


class StreamRole:
    """`switchyard stream` following a Redis; listeners on 127.0.0.1."""

    def __init__(self, redis, workdir, name="stream", threads=1, poll_ms=None, metrics_port=None, bin_path=None,
                 extra=()):
        """poll_ms: the safety-net poll (None: the role's default); metrics_port: serve /metrics
        on 127.0.0.1:<port> (None: no --metrics-listen, so older binaries run too)."""
        env = dict(os.environ)
        if redis.password:
            env["SWITCHYARD_REDIS_PASSWORD"] = redis.password
        args = [bin_path or BIN, "stream", "--redis", redis.address, "--bind", "127.0.0.1", "--threads", str(threads),
                "--log-level", "debug"]
        if poll_ms is not None:
            args += ["--poll-ms", str(poll_ms)]
        self.metrics_port = metrics_port
        if metrics_port:
            args += ["--metrics-listen", f"127.0.0.1:{metrics_port}"]
        args += list(extra)
        self.process = Process(name, args, env=env, log_dir=workdir)
        wait_until(self._started, 30, what=f"stream role (log: {self.process.log_path})")

    def _started(self):
        if not self.process.alive():
            raise AssertionError("stream role exited:\n" + self.process.output())
        return "stream role started" in self.process.output()

    def stop(self):
        self.process.stop()

    def metrics(self):
        """The /metrics samples as {(name, frozenset of label pairs): value}."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=3) as r:
            return parse_metrics(r.read().decode())


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        if not m:
            continue
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def sample(metrics, name, **labels):
    """One sample's value (0 when absent)."""
    return metrics.get((name, frozenset(labels.items())), 0.0)


def put_stream(redis, sid, doc):
    """Writes a stream with one sy_apply (the controller's write path), as redis-cli answers."""
    body = json.dumps(dict(doc, id=sid), sort_keys=True, separators=(",", ":"))
    return redis.cli("FCALL", "sy_apply", "1", BASE + "version", "put", "stream", sid, body, "", "", raw=True)


def delete_stream(redis, sid):
    return redis.cli("FCALL", "sy_apply", "1", BASE + "version", "del", "stream", sid, "", "", "", raw=True)


class TCPEcho:
    """Echoes every byte back, prefixed once per connection with `<name>\\n` so a client can
    tell which endpoint it reached. Threads per connection; bounded by the test."""

    def __init__(self, name):
        self.name = name.encode()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.first_bytes = []  # the first line each connection sent (PROXY protocol checks)
        self.open = True
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while self.open:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        try:
            c.sendall(self.name + b"\n")
            first = True
            while True:
                d = c.recv(65536)
                if not d:
                    break
                if first:
                    self.first_bytes.append(d)
                    first = False
                c.sendall(d)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.open = False
        self.sock.close()


class UDPEcho:
    """Answers every datagram with `<name>:<datagram>`."""

    def __init__(self, name):
        self.name = name.encode()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                d, a = self.sock.recvfrom(65536)
                self.sock.sendto(self.name + b":" + d, a)
            except OSError:
                return

    def close(self):
        self.sock.close()


def connect(port, timeout=3.0):
    """Connects and returns (socket, endpoint name) once the endpoint's greeting arrived."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(100)
        if not d:
            s.close()
            raise ConnectionError("closed before the greeting")
        buf += d
    return s, buf.decode().strip()


def echo_once(s, payload=b"ping"):
    s.sendall(payload)
    got = b""
    deadline = time.monotonic() + 3
    while len(got) < len(payload) and time.monotonic() < deadline:
        d = s.recv(65536)
        if not d:
            break
        got += d
    return got


def udp_ask(port, payload=b"hi", sock=None, timeout=1.0):
    """Sends one datagram to the stream port and returns the endpoint's name (None: no answer)."""
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(payload, ("127.0.0.1", port))
        d, _ = s.recvfrom(65536)
        name, _, echoed = d.partition(b":")
        assert echoed == payload, d
        return name.decode()
    except socket.timeout:
        return None
    finally:
        if sock is None:
            s.close()
