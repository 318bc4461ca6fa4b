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
    def __init__(self, redis, workdir, token="test-token", extra=()):
        self.port = free_port()
        self.token = token
        env = dict(os.environ, SWITCHYARD_ADMIN_TOKEN=token)
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
    def __init__(self, redis, workdir, name, workers=2, extra=()):
        self.port = free_port()
        self.id = name
        self.prefix = os.path.join(workdir, name)
        env = dict(os.environ)
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
