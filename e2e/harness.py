"""Real parts for the end-to-end tests: redis-server, the controller, nginx edges and
backends, each started on a free loopback port and stopped afterwards. No mocks."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "deploy"))
from demo_backend import Backend  # noqa: E402

BIN = os.path.abspath(os.environ.get("SWITCHYARD_BIN", os.path.join(ROOT, ".build/debug/switchyard")))
BASE = "switchyard:{cfg}:"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout=5.0, interval=0.02, what="condition"):
    """Polls check() until it returns a truthy value; bounded in time."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - the check may race with start-up
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def _tcp_open(port, host="127.0.0.1"):
    with socket.create_connection((host, port), timeout=0.5):
        return True


class Process:
    def __init__(self, name, argv, env=None, cwd=None, log_dir=None):
        self.name = name
        self.log_path = os.path.join(log_dir or tempfile.gettempdir(), f"{name}.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd or ROOT, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def output(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def send_signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.alive():
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


class Redis:
    def __init__(self, workdir, password=None):
        self.port = free_port()
        self.password = password
        argv = [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1",
                "--port", str(self.port), "--save", "", "--appendonly", "no",
                "--dir", workdir]
        if password:
            argv += ["--requirepass", password]
        self.process = Process(f"redis-{self.port}", argv, log_dir=workdir)
        wait_until(lambda: _tcp_open(self.port), 5, what="redis-server")

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def cli(self, *args, raw=False):
        argv = ["redis-cli", "-p", str(self.port)]
        if self.password:
            argv += ["--no-auth-warning", "-a", self.password]
        if raw:
            argv.append("--raw")
        out = subprocess.run(argv + [str(a) for a in args], capture_output=True, check=True,
                             timeout=10)
        return out.stdout.decode().rstrip("\n")

    def get(self, key):
        v = self.cli("GET", key, raw=True)
        return v if v != "" else None

    def version(self):
        return int(self.get(BASE + "version") or 0)

    def config_keys(self):
        """Every configuration key (SCAN is fine in a test, never in product code)."""
        out = self.cli("--scan", "--pattern", BASE + "*", raw=True)
        return sorted(k for k in out.splitlines() if k and not k.startswith(BASE + "edge"))

    def stop(self):
        self.process.stop()


class Controller:
    def __init__(self, redis, workdir, token="test-token", extra=(), env=None):
        self.port = free_port()
        self.token = token
        env = dict(os.environ, SWITCHYARD_ADMIN_TOKEN=token, **(env or {}))
        if redis.password:
            env["SWITCHYARD_REDIS_PASSWORD"] = redis.password
        self.process = Process(f"controller-{self.port}",
                               [BIN, "controller", "--listen", f"127.0.0.1:{self.port}",
                                "--redis", redis.address, *extra], env=env, log_dir=workdir)
        self.url = f"http://127.0.0.1:{self.port}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        wait_until(self._healthy, 60, what=f"controller (log: {self.process.log_path})")

    def _healthy(self):
        if not self.process.alive():
            raise AssertionError("controller exited:\n" + self.process.output())
        return requests.get(self.url + "/healthz", timeout=1).status_code == 200

    def request(self, method, path, body=None, raw=None, headers=None):
        kw = {"timeout": 10, "headers": headers or {}}
        if raw is not None:
            kw["data"] = raw
            kw["headers"].setdefault("Content-Type", "application/json")
        elif body is not None:
            kw["json"] = body
        return self.session.request(method, self.url + path, **kw)

    def put(self, path, body):
        return self.request("PUT", path, body)

    def ok(self, method, path, body=None):
        r = self.request(method, path, body)
        assert r.status_code in (200, 201, 204), f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def upstream(self, name, *ports, weights=None, balance="round_robin"):
        eps = [{"address": f"127.0.0.1:{p}", "weight": (weights or {}).get(p, 1)} for p in ports]
        return self.ok("PUT", f"/api/v1/upstreams/{name}", {"endpoints": eps, "balance": balance})

    def route(self, rid, host, path, upstream, match="prefix", priority=0):
        return self.ok("PUT", f"/api/v1/routes/{rid}",
                       {"host": host, "path": path, "match": match, "upstream": upstream,
                        "priority": priority})

    def status(self):
        return self.ok("GET", "/api/v1/status")

    def stop(self):
        self.process.stop()


class Edge:
    def __init__(self, redis, workdir, name, workers=2, extra=(), env=None):
        self.port = free_port()
        # /metrics, /_switchyard/status and /_switchyard/explain (--metrics-listen)
        self.metrics_port = free_port()
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}"
        self.id = name
        self.prefix = os.path.join(workdir, name)
        env = dict(os.environ, **(env or {}))
        if redis.password:
            env["SWITCHYARD_REDIS_PASSWORD"] = redis.password
        self.process = Process(name, [BIN, "edge", "--listen", f"127.0.0.1:{self.port}",
                                      "--redis", redis.address, "--prefix", self.prefix,
                                      "--id", name, "--workers", str(workers),
                                      "--metrics-listen", f"127.0.0.1:{self.metrics_port}",
                                      *extra],
                               env=env, log_dir=workdir)
        self.url = f"http://127.0.0.1:{self.port}"
        self.session = requests.Session()
        wait_until(self._listening, 20, what=f"edge {name} (log: {self.process.log_path})")

    def _listening(self):
        if not self.process.alive():
            raise AssertionError(f"edge {self.id} exited:\n" + self.process.output())
        return _tcp_open(self.port)

    def get(self, path, host=None, headers=None, **kw):
        h = dict(headers or {})
        if host:
            h["Host"] = host
        return self.session.get(self.url + path, headers=h, timeout=5, allow_redirects=False,
                                **kw)

    def backend(self, path, host):
        """Name of the backend that served path on host, or the status code if none did."""
        r = self.get(path, host)
        if r.status_code != 200 or not r.headers.get("X-Backend"):
            return r.status_code
        return r.headers["X-Backend"]

    def pids(self):
        """(master pid, sorted worker pids)."""
        master = self.process.pid
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True)
        return master, sorted(int(p) for p in out.stdout.split())

    def stop(self):
        self.process.stop()


def start_backends(*names):
    return {n: Backend("127.0.0.1", 0, n).start_in_thread() for n in names}


def json_of(r):
    try:
        return r.json()
    except ValueError:
        return {"_raw": r.text}


class Prober:
    """`switchyard prober` against a Redis; `health(upstream)` reads what it wrote."""

    def __init__(self, redis, workdir, name, lease_ms=3000, extra=()):
        self.id = name
        self.redis = redis
        self.lease_ms = lease_ms
        env = dict(os.environ)
        if redis.password:
            env["SWITCHYARD_REDIS_PASSWORD"] = redis.password
        self.process = Process(name, [BIN, "prober", "--redis", redis.address, "--id", name,
                                      "--lease-ms", str(lease_ms), "--log-level", "debug", *extra],
                               env=env, log_dir=workdir)
        wait_until(self._loaded, 20, what=f"prober {name} (log: {self.process.log_path})")

    def _loaded(self):
        if not self.process.alive():
            raise AssertionError(f"prober {self.id} exited:\n" + self.process.output())
        return "configuration loaded" in self.process.output()

    def holds_lease(self):
        return self.redis.get(BASE + "prober:lease") == self.id

    def health(self, upstream):
        """address -> record dict, from the upstream's health hash."""
        out = self.redis.cli("HGETALL", BASE + "health:" + upstream, raw=True).splitlines()
        return {out[i]: json.loads(out[i + 1]) for i in range(0, len(out) - 1, 2)}

    def kill(self):
        """SIGKILL: no chance to release the lease or delete the heartbeat."""
        self.process.stop(sig=signal.SIGKILL)

    def stop(self):
        self.process.stop()


# --- resilience: a Redis that can be frozen, killed and brought back; request loops ---

class PersistentRedis(Redis):
    """A redis-server with an append-only file (fsync on every write) that can be frozen
    (SIGSTOP: connections stay open, nothing answers), killed, and started again on the
    same port with the same data."""

    def __init__(self, workdir, password=None):  # noqa: D107 - same as Redis
        self.port = free_port()
        self.password = password
        self.data_dir = os.path.join(workdir, f"redis-{self.port}-data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.starts = 0
        self.process = None
        self.start()

    def start(self):
        """Starts the server (again) on the same port and data directory."""
        self.starts += 1
        argv = [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1",
                "--port", str(self.port), "--save", "", "--appendonly", "yes",
                "--appendfsync", "always", "--dir", self.data_dir]
        if self.password:
            argv += ["--requirepass", self.password]
        self.process = Process(f"redis-{self.port}-{self.starts}", argv, log_dir=self.data_dir)
        wait_until(lambda: _tcp_open(self.port), 10, what="redis-server (re)start")
        # listening is not enough: while it loads the append-only file it answers -LOADING
        wait_until(lambda: self.cli("PING") == "PONG", 10, what="redis-server loaded")

    def freeze(self):
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self):
        self.process.send_signal(signal.SIGCONT)

    def kill(self):
        self.process.send_signal(signal.SIGCONT)   # a stopped process cannot die cleanly
        self.process.stop(sig=signal.SIGKILL)

    def stop(self):
        self.process.send_signal(signal.SIGCONT)
        self.process.stop()


def edge_status(edge, timeout=2):
    """The edge's own /_switchyard/status (shared-dict state plus the answering worker)."""
    return edge.session.get(edge.url + "/_switchyard/status", timeout=timeout).json()


class RequestLoop:
    """Sends GET requests round robin to (edge, host, path) targets from a thread until
    stopped, max_requests were sent or max_seconds passed (bounded both ways). Every answer
    other than `expect` (status code) is a failure, kept with its time and reason."""

    def __init__(self, targets, expect=200, max_requests=20000, max_seconds=60, pause=0.003):
        import threading
        self.targets = targets
        self.expect = expect
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.pause = pause
        self.sent = 0
        self.failures = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        sessions = {}
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and self.sent < self.max_requests \
                and time.monotonic() < deadline:
            edge, host, path = self.targets[self.sent % len(self.targets)]
            s = sessions.setdefault(edge.id, requests.Session())
            self.sent += 1
            try:
                r = s.get(edge.url + path, headers={"Host": host}, timeout=5)
                if r.status_code != self.expect:
                    self.failures.append((time.monotonic(), edge.id, path,
                                          f"{r.status_code} {r.text[:100]!r}"))
            except requests.RequestException as e:
                self.failures.append((time.monotonic(), edge.id, path, repr(e)))
            time.sleep(self.pause)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)
        return self


def resp_command(port, *args, password=None, timeout=5):
    """One command over a fresh connection with a minimal RESP2 client: replies as bytes
    (bulk), int, list, None; error replies raise. For byte-exact reads in tests."""
    def encode(parts):
        out = [b"*%d\r\n" % len(parts)]
        for p in parts:
            p = p if isinstance(p, bytes) else str(p).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(p), p))
        return b"".join(out)

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        f = s.makefile("rb")
        if password:
            s.sendall(encode(["AUTH", password]))
            f.readline()
        s.sendall(encode(args))

        def read():
            line = f.readline()
            kind, rest = line[:1], line[1:-2]
            if kind == b"+":
                return rest
            if kind == b"-":
                raise RuntimeError(rest.decode(errors="replace"))
            if kind == b":":
                return int(rest)
            if kind == b"$":
                n = int(rest)
                if n < 0:
                    return None
                data = f.read(n + 2)
                return data[:-2]
            if kind == b"*":
                n = int(rest)
                return None if n < 0 else [read() for _ in range(n)]
            raise RuntimeError(f"unexpected reply {line!r}")

        return read()


def digest_of_redis(redis):
    """The configuration digest recomputed in Python from the documents in Redis (see
    redis/README.md, "The digest"): sum of the first 13 hex digits of
    sha1("<kind>:<id>\\n<stored bytes>") over every indexed document, mod 2^52."""
    import hashlib
    total = 0
    for kind, index in (("upstream", "upstreams"), ("route", "routes")):
        for member in resp_command(redis.port, "SMEMBERS", BASE + index,
                                   password=redis.password):
            doc = resp_command(redis.port, "GET", BASE.encode() + kind.encode() + b":" + member,
                               password=redis.password)
            if doc is None:
                continue
            h = hashlib.sha1(kind.encode() + b":" + member + b"\n" + doc).hexdigest()
            total = (total + int(h[:13], 16)) % (1 << 52)
    return f"{total:013x}"


# --- balancing: backends that can be slow or die; documents written around the API ---

def _controlled_handler():
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body leave in one write (flushed after each request), so kill() lands
        # between answers, never inside one: a crash mid-answer truncates it and no proxy can
        # hide that, which is not what the kill tests are about
        wbufsize = 1 << 16

        def do_GET(self):
            server = self.server
            with server.lock:
                server.hits += 1
                server.active += 1
                server.max_active = max(server.max_active, server.active)
            try:
                if server.delay:
                    time.sleep(server.delay)
                body = json.dumps({"backend": server.name, "path": self.path}).encode() + b"\n"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Backend", server.name)
                self.end_headers()
                self.wfile.write(body)
            finally:
                with server.lock:
                    server.active -= 1

        def log_message(self, fmt, *args):
            pass

    return Handler


class KillableServer(ThreadingHTTPServer):
    """A threaded loopback HTTP server whose kill() closes the listener AND every open
    connection, like a process dying: the port refuses, kept-alive connections see a reset.
    Serves from a daemon thread as soon as it is created."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler):
        super().__init__(("127.0.0.1", 0), handler)
        self.lock = threading.Lock()
        self.conns = set()
        self.dead = False
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self):
        return self.server_address[1]

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def get_request(self):
        sock, addr = super().get_request()
        with self.lock:
            self.conns.add(sock)
        return sock, addr

    def shutdown_request(self, request):
        with self.lock:
            self.conns.discard(request)
        super().shutdown_request(request)

    def kill(self):
        if self.dead:
            return
        self.dead = True
        self.shutdown()
        self.server_close()
        with self.lock:
            conns, self.conns = list(self.conns), set()
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


def start_controlled_backend(name, delay=0.0):
    """A loopback backend answering 200 with X-Backend: name after `delay` seconds, counting
    hits and concurrent requests; kill() as KillableServer."""
    b = KillableServer(_controlled_handler())
    b.name, b.delay, b.hits, b.active, b.max_active = name, delay, 0, 0, 0
    return b


class Subscriber:
    """A raw RESP pub/sub connection to Redis on `port`, subscribed to `channel`."""

    def __init__(self, port, channel):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.sock.sendall(f"*2\r\n$9\r\nSUBSCRIBE\r\n${len(channel)}\r\n{channel}\r\n".encode())
        assert self._reply()[0] == b"subscribe"

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _reply(self):
        head = self._line()
        if head[:1] == b"*":
            return [self._reply() for _ in range(int(head[1:]))]
        if head[:1] == b"$":
            n = int(head[1:])
            while len(self.buf) < n + 2:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise EOFError
                self.buf += chunk
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        return head[1:]

    def until(self, deadline, stop=lambda: False):
        """Yields (arrival time, payload) until `deadline` (time.monotonic) or stop()."""
        while time.monotonic() < deadline and not stop():
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                reply = self._reply()
            except (socket.timeout, TimeoutError):
                return
            if reply[0] == b"message":
                yield time.monotonic(), reply[2].decode()

    def messages(self, timeout):
        """Payloads received within `timeout` seconds."""
        return [msg for _, msg in self.until(time.monotonic() + timeout)]

    def close(self):
        self.sock.close()


def apply_raw_upstream(redis, doc):
    """Writes an upstream document through the function library (sy_apply), bypassing the
    controller's validation, as an operator with redis-cli could."""
    return redis.cli("FCALL", "sy_apply", "1", BASE + "version", "put", "upstream",
                     doc["name"], json.dumps(doc), "", "")


# --- route options (docs/traffic-policies.md): writing routes, WebSocket echo ---

def put_route(controller, rid, body):
    """PUT /api/v1/routes/<rid> with `body` (any route fields of docs/traffic-policies.md);
    returns the stored route."""
    r = controller.request("PUT", f"/api/v1/routes/{rid}", body)
    assert r.status_code in (200, 201), f"PUT route {rid}: {r.status_code} {r.text}"
    return r.json()


_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _ws_accept(key):
    import base64
    import hashlib
    return base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()


def _ws_read_frame(f):
    """(opcode, payload) of one frame from a file-like socket reader; None at EOF."""
    head = f.read(2)
    if len(head) < 2:
        return None
    opcode = head[0] & 0x0F
    masked = head[1] & 0x80
    n = head[1] & 0x7F
    if n == 126:
        n = int.from_bytes(f.read(2), "big")
    elif n == 127:
        n = int.from_bytes(f.read(8), "big")
    mask = f.read(4) if masked else None
    data = f.read(n)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return opcode, data


def _ws_frame(opcode, data, mask):
    import os as _os
    head = bytes([0x80 | opcode])
    n = len(data)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + n.to_bytes(8, "big")
    if not mask:
        return head + data
    key = _os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(data))


class WebSocketEcho:
    """A WebSocket server (RFC 6455, standard library only) on a free loopback port: it
    answers the upgrade and echoes every text/binary message prefixed with "<name>:".
    Each connection has its own thread; close() stops accepting (open ones end with the
    process or when the client closes)."""

    def __init__(self, name):
        import threading
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(120)
        f = conn.makefile("rb")
        try:
            lines = []
            while len(lines) < 100:
                line = f.readline(8192)
                if not line or line in (b"\r\n", b"\n"):
                    break
                lines.append(line.decode("latin-1").rstrip("\r\n"))
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            key = headers.get("sec-websocket-key")
            if not key or "upgrade" not in headers.get("connection", "").lower():
                body = f"{self.name}: not a websocket request\n".encode()
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n"
                             b"Connection: close\r\n\r\n%s" % (len(body), body))
                return
            self.connections += 1
            conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nX-Backend: %s\r\n"
                          "Sec-WebSocket-Accept: %s\r\n\r\n" % (self.name, _ws_accept(key)))
                         .encode())
            for _ in range(100000):
                frame = _ws_read_frame(f)
                if frame is None:
                    return
                opcode, data = frame
                if opcode == 8:   # close
                    conn.sendall(_ws_frame(8, data[:2], mask=False))
                    return
                if opcode == 9:   # ping
                    conn.sendall(_ws_frame(10, data, mask=False))
                elif opcode in (1, 2):
                    conn.sendall(_ws_frame(opcode, self.name.encode() + b":" + data, mask=False))
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self._stop.set()
        self.sock.close()


class WebSocketClient:
    """A minimal WebSocket client (standard library): connect through an edge with a Host
    header, send text, receive the echo. Every call is bounded by `timeout`."""

    def __init__(self, port, host, path="/", timeout=10):
        import base64
        import os as _os
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        key = base64.b64encode(_os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        status = self.file.readline(8192).decode("latin-1")
        self.headers = {}
        for _ in range(100):
            line = self.file.readline(8192).decode("latin-1").rstrip("\r\n")
            if not line:
                break
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.status = int(status.split()[1]) if len(status.split()) > 1 else 0
        if self.status != 101:
            self.sock.close()
            raise AssertionError(f"websocket upgrade answered {status.strip()!r}")
        assert self.headers.get("sec-websocket-accept") == _ws_accept(key)

    def echo(self, text):
        """Sends a text message; returns the text of the answer (None: connection closed)."""
        try:
            self.sock.sendall(_ws_frame(1, text.encode(), mask=True))
            frame = _ws_read_frame(self.file)
        except ConnectionError:   # closed by the peer (a timeout is raised, not None)
            return None
        return None if frame is None or frame[0] == 8 else frame[1].decode()

    def close(self):
        try:
            self.sock.sendall(_ws_frame(8, b"\x03\xe8", mask=True))
        except OSError:
            pass
        self.sock.close()
