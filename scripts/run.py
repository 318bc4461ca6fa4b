#!/usr/bin/env python3
"""`make run`: the whole Switchyard stack on loopback, with a demo configuration.

Starts redis-server (127.0.0.1:6380, data in .run/redis), the controller (127.0.0.1:9180),
two edges (127.0.0.1:8080 and :8081) and four demo backends, loads the demo routes for
bbs.test.com through the API, prints how to try it, and stops everything it started on
Ctrl-C or SIGTERM. If a port is taken it says which and starts nothing.
"""
import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, ".run")

REDIS = ("127.0.0.1", 6380)
CONTROLLER = ("127.0.0.1", 9180)
EDGES = [("edge-1", 8080), ("edge-2", 8081)]
BACKENDS = {
    "frontend": [("frontend-1", 9101), ("frontend-2", 9102)],
    "backend": [("backend-1", 9201), ("backend-2", 9202)],
}

DEMO = {
    "upstreams": [
        {"name": name, "balance": "round_robin",
         "endpoints": [{"address": f"127.0.0.1:{port}", "weight": 1} for _, port in eps]}
        for name, eps in BACKENDS.items()
    ],
    "routes": [
        {"id": "bbs-root", "host": "bbs.test.com", "path": "/", "match": "prefix",
         "upstream": "frontend"},
        {"id": "bbs-api", "host": "bbs.test.com", "path": "/api", "match": "prefix",
         "upstream": "backend"},
        {"id": "bbs-signin", "host": "bbs.test.com", "path": "/signin", "match": "prefix",
         "upstream": "backend"},
        {"id": "bbs-signout", "host": "bbs.test.com", "path": "/signout", "match": "prefix",
         "upstream": "backend"},
    ],
}


def say(msg):
    print(f"switchyard: {msg}", flush=True)


def port_in_use(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def wait_for(check, what, timeout=15.0, procs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{what}: process exited with {p.returncode}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what}: not ready after {timeout:.0f}s")


def tcp_open(host, port):
    with socket.create_connection((host, port), timeout=0.5):
        return True


def http(method, url, token=None, body=None, timeout=5.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Stack:
    def __init__(self, binary):
        self.binary = binary
        self.procs = []  # (name, Popen), in start order

    def start(self, name, argv, env=None, log=None):
        out = open(os.path.join(RUN, "logs", f"{name}.log"), "ab") if log else None
        p = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out or subprocess.DEVNULL,
                             stderr=subprocess.STDOUT if out else None,
                             start_new_session=True)
        self.procs.append((name, p))
        return p

    def stop(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for name, p in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop in time; killing it")
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.procs.clear()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build/release/switchyard"))
    ap.add_argument("--workers", default="2", help="nginx workers per edge")
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        say(f"{binary} is not built; run `make run` (it builds first)")
        return 1

    wanted = [("redis-server", *REDIS), ("controller", *CONTROLLER)]
    wanted += [(f"edge {name}", "127.0.0.1", port) for name, port in EDGES]
    wanted += [(f"demo backend {n}", "127.0.0.1", p)
               for eps in BACKENDS.values() for n, p in eps]
    taken = [f"{what} needs 127.0.0.1:{port}" for what, host, port in wanted
             if port_in_use(host, port)]
    if taken:
        for t in taken:
            say(f"port in use: {t}")
        say("nothing was started; free those ports (or stop the other `make run`) and retry")
        return 1

    token = os.environ.get("SWITCHYARD_ADMIN_TOKEN") or secrets.token_urlsafe(24)
    generated = "SWITCHYARD_ADMIN_TOKEN" not in os.environ
    for d in ("redis", "logs"):
        os.makedirs(os.path.join(RUN, d), exist_ok=True)
    env = dict(os.environ, SWITCHYARD_ADMIN_TOKEN=token)

    stack = Stack(binary)
    stopping = []

    def on_signal(signum, _frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        stack.start("redis", [shutil.which("redis-server") or "redis-server",
                              "--bind", REDIS[0], "--port", str(REDIS[1]),
                              "--dir", os.path.join(RUN, "redis"), "--appendonly", "yes",
                              "--save", "", "--protected-mode", "yes"], log=True)
        wait_for(lambda: tcp_open(*REDIS), "redis-server", procs=[stack.procs[-1][1]])

        for eps in BACKENDS.values():
            for name, port in eps:
                stack.start(name, [sys.executable, os.path.join(ROOT, "deploy/demo_backend.py"),
                                   "--listen", f"127.0.0.1:{port}", "--name", name], log=True)

        ctl = stack.start("controller", [binary, "controller",
                                         "--listen", f"{CONTROLLER[0]}:{CONTROLLER[1]}",
                                         "--redis", f"{REDIS[0]}:{REDIS[1]}"], env=env, log=True)
        base = f"http://{CONTROLLER[0]}:{CONTROLLER[1]}"
        wait_for(lambda: http("GET", f"{base}/healthz")[0] == 200, "controller", procs=[ctl])

        for name, port in EDGES:
            prefix = os.path.join(RUN, name)
            p = stack.start(name, [binary, "edge", "--listen", f"127.0.0.1:{port}",
                                   "--redis", f"{REDIS[0]}:{REDIS[1]}", "--prefix", prefix,
                                   "--id", name, "--workers", args.workers], env=env, log=True)
            wait_for(lambda: tcp_open("127.0.0.1", port), f"edge {name}", procs=[p])

        status, body = http("POST", f"{base}/api/v1/apply", token, DEMO)
        if status != 200:
            raise RuntimeError(f"loading the demo failed: {status} {body}")
        version = json.loads(body).get("version")
        wait_for(lambda: all(e.get("applied_version", 0) >= version
                             for e in json.loads(http("GET", f"{base}/api/v1/status", token)[1])
                             .get("edges", [{}])) and
                 len(json.loads(http("GET", f"{base}/api/v1/status", token)[1])["edges"]) >= 2,
                 "edges applying the demo", timeout=10)

        print(f"""
Switchyard is running (logs in .run/logs, Redis data in .run/redis).

  admin token      {token}{'   (generated; set SWITCHYARD_ADMIN_TOKEN to choose one)' if generated else ''}
  controller       http://127.0.0.1:9180
  edges            http://127.0.0.1:8080  http://127.0.0.1:8081
  redis            127.0.0.1:6380

Try it:
  curl -H 'Host: bbs.test.com' http://127.0.0.1:8080/          # frontend upstream
  curl -H 'Host: bbs.test.com' http://127.0.0.1:8081/api/posts  # backend upstream
  export SWITCHYARD_ADMIN_TOKEN={token}
  curl -H "Authorization: Bearer $SWITCHYARD_ADMIN_TOKEN" http://127.0.0.1:9180/api/v1/status
  curl -X PUT -H "Authorization: Bearer $SWITCHYARD_ADMIN_TOKEN" \\
       -d '{{"host":"bbs.test.com","path":"/help","upstream":"frontend"}}' \\
       http://127.0.0.1:9180/api/v1/routes/bbs-help
  redis-cli -p 6380 get 'switchyard:{{cfg}}:route:bbs-api'

Ctrl-C stops everything.
""", flush=True)

        while True:
            for name, p in stack.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited unexpectedly with {p.returncode}; "
                                       f"see .run/logs/{name}.log")
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("stopping")
        return 0
    except RuntimeError as e:
        say(str(e))
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        say("stopped everything it started")


if __name__ == "__main__":
    sys.exit(main())
