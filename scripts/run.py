#!/usr/bin/env python3
"""`make run`: the whole Switchyard stack on loopback, with a demo configuration.

Starts redis-server (127.0.0.1:6380, data in .run/redis), the controller (127.0.0.1:9180),
the health prober, two edges (127.0.0.1:8080 and :8081), the TCP/UDP stream role and four
demo backends, loads the demo routes for bbs.test.com and a TCP stream through the API, prints how to try it, and stops
everything it started on Ctrl-C or SIGTERM. If a port is taken it says which and starts nothing.
"""
import argparse
import base64
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
CONTROLLER_METRICS = ("127.0.0.1", 9181)  # GET /metrics, no token (docs/metrics.md)
PROBER_METRICS = ("127.0.0.1", 9182)
STREAM_METRICS = ("127.0.0.1", 9183)
# a demo TCP stream service (docs/stream.md): 127.0.0.1:9300 to the backend upstream
STREAM_DEMO_PORT = 9300
# name, HTTP port, HTTPS port, metrics port (/metrics, /_switchyard/status and explain)
EDGES = [("edge-1", 8080, 8443, 9145), ("edge-2", 8081, 8444, 9146)]
BACKENDS = {
    "frontend": [("frontend-1", 9101), ("frontend-2", 9102)],
    "backend": [("backend-1", 9201), ("backend-2", 9202)],
}

DEMO = {
    "upstreams": [
        {"name": name, "balance": "round_robin",
         "endpoints": [{"address": f"127.0.0.1:{port}", "weight": 1} for _, port in eps],
         "health_check": {"type": "http", "path": "/healthz", "interval_ms": 1000,
                          "timeout_ms": 500, "rise": 2, "fall": 3}}
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


def certificate_key():
    """The key that encrypts TLS private keys in Redis. Kept in .run/ beside the Redis data
    it protects, so a second `make run` can still read the certificates of the first."""
    if os.environ.get("SWITCHYARD_CERT_KEY"):
        return os.environ["SWITCHYARD_CERT_KEY"]
    path = os.path.join(RUN, "cert-key")
    if not os.path.exists(path):
        os.makedirs(RUN, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(os.urandom(32)).decode())
    with open(path) as f:
        return f.read().strip()


def demo_certificate():
    """A self-signed certificate for bbs.test.com, made once with the openssl CLI."""
    d = os.path.join(RUN, "tls")
    cert, key = os.path.join(d, "bbs.test.com.crt"), os.path.join(d, "bbs.test.com.key")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "365",
                        "-subj", "/CN=bbs.test.com", "-addext",
                        "subjectAltName=DNS:bbs.test.com,DNS:*.bbs.test.com",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
    with open(cert) as c, open(key) as k:
        return {"cert": c.read(), "key": k.read()}


def say(msg):
    print(f"switchyard: {msg}", flush=True)


def redis_has_data():
    """Whether .run/redis holds data a redis-server will load (an AOF or an RDB file)."""
    d = os.path.join(RUN, "redis")
    aof = os.path.join(d, "appendonlydir")
    if os.path.isdir(aof) and any(os.path.getsize(os.path.join(aof, f)) > 0
                                  for f in os.listdir(aof)):
        return True
    return os.path.exists(os.path.join(d, "dump.rdb"))


def forget_stale_snapshots():
    """An edge that starts from its snapshot serves that configuration and refuses to follow
    a Redis that lost it (redis/README.md, "When Redis lost its data"). When the Redis this
    script owns starts without data, the snapshots under .run/ belong to a configuration
    that no longer exists: remove them, so the edges start from the new one."""
    removed = []
    for name, *_ in EDGES:
        state = os.path.join(RUN, name, "state")
        for f in ("snapshot.json", "snapshot.json.journal"):
            path = os.path.join(state, f)
            if os.path.exists(path):
                os.remove(path)
                removed.append(os.path.relpath(path, ROOT))
    if removed:
        say("Redis starts without data (.run/redis is empty): removed the edges' snapshots of "
            "the old configuration: " + ", ".join(removed))


def remedies(base, token, problem, binary):
    """What to do when Redis and the edges disagree about the configuration's history."""
    st = http("GET", f"{base}/api/v1/status", token)
    epoch = "none"
    try:
        epoch = json.loads(st[1]).get("epoch") or "none"
    except ValueError:
        pass
    return f"""
switchyard: Redis and the edges disagree about the configuration: {problem}
switchyard: the edges keep serving what they have, and the controller refuses writes until:
  - you restore Redis's data (stop `make run`, put the files back in .run/redis, start again), or
  - you re-seed: what Redis holds now becomes the configuration of every edge:
      curl -X POST -H "Authorization: Bearer $SWITCHYARD_ADMIN_TOKEN" \\
           -d '{{"confirm":"{epoch}"}}' {base}/api/v1/reseed
    or: {os.path.relpath(binary, ROOT)} reseed --controller {base} --confirm {epoch}
    (then run `make run` again, or load the demo yourself)
"""


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

    wanted = [("redis-server", *REDIS), ("controller", *CONTROLLER),
              ("controller metrics", *CONTROLLER_METRICS), ("prober metrics", *PROBER_METRICS),
              ("stream metrics", *STREAM_METRICS), ("demo stream", "127.0.0.1", STREAM_DEMO_PORT)]
    wanted += [(f"edge {name}", "127.0.0.1", port) for name, *ports in EDGES
               for port in ports]
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
    for d in ("redis", "logs", "tls"):
        os.makedirs(os.path.join(RUN, d), exist_ok=True)
    env = dict(os.environ, SWITCHYARD_ADMIN_TOKEN=token,
               SWITCHYARD_CERT_KEY=certificate_key())

    stack = Stack(binary)
    stopping = []

    def on_signal(signum, _frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if not redis_has_data():
            forget_stale_snapshots()
        stack.start("redis", [shutil.which("redis-server") or "redis-server",
                              "--bind", REDIS[0], "--port", str(REDIS[1]),
                              "--dir", os.path.join(RUN, "redis"), "--appendonly", "yes",
                              "--save", "", "--protected-mode", "yes"], log=True)
        wait_for(lambda: tcp_open(*REDIS), "redis-server", procs=[stack.procs[-1][1]])
        # one ACL user per role (redis/acl.py), with passwords made for this run: an edge
        # can read the configuration and register, not change a route
        acl = {role: secrets.token_urlsafe(18) for role in ("controller", "prober", "edge", "stream")}
        subprocess.run([sys.executable, os.path.join(ROOT, "redis", "acl.py"),
                        "--roles", ",".join(acl), "--apply", f"{REDIS[0]}:{REDIS[1]}"],
                       env=dict(os.environ, **{f"SWITCHYARD_ACL_{r.upper()}_PASSWORD": p
                                               for r, p in acl.items()}),
                       check=True, timeout=30)

        def as_role(role):
            return dict(env, SWITCHYARD_REDIS_PASSWORD=acl[role])

        for eps in BACKENDS.values():
            for name, port in eps:
                stack.start(name, [sys.executable, os.path.join(ROOT, "deploy/demo_backend.py"),
                                   "--listen", f"127.0.0.1:{port}", "--name", name], log=True)

        ctl = stack.start("controller", [binary, "controller",
                                         "--listen", f"{CONTROLLER[0]}:{CONTROLLER[1]}",
                                         "--redis", f"{REDIS[0]}:{REDIS[1]}",
                                         "--redis-user", "switchyard-controller",
                                         "--metrics-listen", "%s:%d" % CONTROLLER_METRICS],
                           env=as_role("controller"), log=True)
        base = f"http://{CONTROLLER[0]}:{CONTROLLER[1]}"
        wait_for(lambda: http("GET", f"{base}/healthz")[0] == 200, "controller", procs=[ctl])

        stack.start("prober", [binary, "prober", "--redis", f"{REDIS[0]}:{REDIS[1]}",
                               "--redis-user", "switchyard-prober",
                               "--id", "prober-1", "--metrics-listen", "%s:%d" % PROBER_METRICS],
                    env=as_role("prober"), log=True)

        stack.start("stream", [binary, "stream", "--redis", f"{REDIS[0]}:{REDIS[1]}",
                               "--redis-user", "switchyard-stream", "--bind", "127.0.0.1",
                               "--threads", "1", "--metrics-listen", "%s:%d" % STREAM_METRICS],
                    env=as_role("stream"), log=True)

        for name, port, tls_port, metrics_port in EDGES:
            prefix = os.path.join(RUN, name)
            p = stack.start(name, [binary, "edge", "--listen", f"127.0.0.1:{port}",
                                   "--listen-tls", f"127.0.0.1:{tls_port}",
                                   "--metrics-listen", f"127.0.0.1:{metrics_port}",
                                   "--redis", f"{REDIS[0]}:{REDIS[1]}", "--prefix", prefix,
                                   "--redis-user", "switchyard-edge",
                                   "--id", name, "--workers", args.workers],
                           env=as_role("edge"), log=True)
            wait_for(lambda: tcp_open("127.0.0.1", port), f"edge {name}", procs=[p])

        status, body = http("POST", f"{base}/api/v1/apply", token, DEMO)
        refused = None
        if status == 409 and json.loads(body).get("error", {}).get("code") in (
                "redis_data_lost", "epoch_conflict"):
            refused = json.loads(body)["error"]["message"]
        elif status != 200:
            raise RuntimeError(f"loading the demo failed: {status} {body}")
        else:
            status, body = http("PUT", f"{base}/api/v1/certificates/bbs-test-com", token,
                                demo_certificate())
            if status not in (200, 201):
                raise RuntimeError(f"loading the demo certificate failed: {status} {body}")
            status, body = http("PUT", f"{base}/api/v1/streams/demo-tcp", token,
                                {"listen": STREAM_DEMO_PORT, "upstream": "backend"})
            if status not in (200, 201):
                raise RuntimeError(f"loading the demo stream failed: {status} {body}")
            wait_for(lambda: tcp_open("127.0.0.1", STREAM_DEMO_PORT), "the stream role's demo port")
            version = json.loads(http("GET", f"{base}/api/v1/status", token)[1])["version"]

            # every edge has applied the demo; whatever else /status finds (a document edited
            # by hand, an edge of another run) is reported below, it does not stop the stack
            def edges_applied():
                st = json.loads(http("GET", f"{base}/api/v1/status?wait_version={version}"
                                     "&timeout_ms=1000", token, timeout=5)[1])
                live = [e for e in st.get("edges", []) if e.get("live")]
                return (len(live) >= len(EDGES)
                        and all((e.get("applied_version") or 0) >= version for e in live))
            wait_for(edges_applied, "edges applying the demo", timeout=15)
            st = json.loads(http("GET", f"{base}/api/v1/status", token)[1])
            conflicts = [p for p in st.get("problems", []) if "keeps its configuration" in p]
            if conflicts:
                refused = conflicts[0]
            for problem in st.get("problems", []):
                if problem not in conflicts:
                    say(f"warning: {problem}")

        print(f"""
Switchyard is running (logs in .run/logs, Redis data in .run/redis).

  admin token      {token}{'   (generated; set SWITCHYARD_ADMIN_TOKEN to choose one)' if generated else ''}
  controller       http://127.0.0.1:9180
  status page      http://127.0.0.1:9180/ui   (paste the admin token)
  edges            http://127.0.0.1:8080  http://127.0.0.1:8081
                   https://127.0.0.1:8443 https://127.0.0.1:8444 (self-signed bbs.test.com)
  edge metrics     http://127.0.0.1:9145/metrics  http://127.0.0.1:9146/metrics
  redis            127.0.0.1:6380   (each role runs as its own ACL user: redis/acl.py,
                   docs/redis-ha.md; redis-cli here is the default user, which has all rights)
  metrics          controller http://127.0.0.1:9181/metrics  prober http://127.0.0.1:9182/metrics
                   stream role http://127.0.0.1:9183/metrics
  TCP stream       127.0.0.1:9300 -> the backend upstream (switchyard stream; docs/stream.md)
                   (Prometheus scrape config and alerts: deploy/prometheus; names: docs/metrics.md)

Try it:
  curl -H 'Host: bbs.test.com' http://127.0.0.1:8080/          # frontend upstream
  curl -H 'Host: bbs.test.com' http://127.0.0.1:8081/api/posts  # backend upstream
  curl -k --resolve bbs.test.com:8443:127.0.0.1 https://bbs.test.com:8443/api/posts
  export SWITCHYARD_ADMIN_TOKEN={token}
  curl -H "Authorization: Bearer $SWITCHYARD_ADMIN_TOKEN" http://127.0.0.1:9180/api/v1/status
  curl -G -H "Authorization: Bearer $SWITCHYARD_ADMIN_TOKEN" http://127.0.0.1:9180/api/v1/explain \\
       --data-urlencode url=http://bbs.test.com/api/posts                  # which route, and why
  curl -X PUT -H "Authorization: Bearer $SWITCHYARD_ADMIN_TOKEN" \\
       -d '{{"host":"bbs.test.com","path":"/help","upstream":"frontend"}}' \\
       http://127.0.0.1:9180/api/v1/routes/bbs-help
  redis-cli -p 6380 get 'switchyard:{{cfg}}:route:bbs-api'
  redis-cli -p 6380 hgetall 'switchyard:{{cfg}}:health:backend'   # prober verdicts
  curl -s http://127.0.0.1:9145/metrics | grep switchyard_edge_requests_total
  curl -s 'http://127.0.0.1:9145/_switchyard/explain?url=http://bbs.test.com/api/posts'
  curl http://127.0.0.1:9300/api/posts                          # through the TCP stream


Ctrl-C stops everything.
""", flush=True)
        if refused:
            print(remedies(base, token, refused, binary), flush=True)

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
