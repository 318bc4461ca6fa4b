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
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
        self.id = name
        self.prefix = os.path.join(workdir, name)
        env = dict(os.environ, **(env or {}))
        if redis.password:
            env["SWITCHYARD_REDIS_PASSWORD"] = redis.password
        self.process = Process(name, [BIN, "edge", "--listen", f"127.0.0.1:{self.port}",
                                      "--redis", redis.address, "--prefix", self.prefix,
                                      "--id", name, "--workers", str(workers), *extra],
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
