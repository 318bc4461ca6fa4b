#!/usr/bin/env python3
"""Switchyard beside the proxies that change routes without a restart (issue 21, item 1).

  static nginx   : server blocks, one per host (no API: the data-path reference)
  HAProxy 2.6    : host -> backend map changed with `add map` / `del map` over the runtime API
                   socket (one connection per command); an endpoint change adds a server
                   (`add server ... pool-max-conn`, then `enable server`) and puts the old one
                   in maintenance: `set server addr` would keep using pooled connections to
                   the old address
  Caddy 2.6      : one route per host, added and deleted through the admin API (a new admin
                   connection per call, as a script would)
  Switchyard     : controller + Redis + three edges; a change counts as served when all
                   three edges serve it

The same backend (one nginx, a port per "endpoint", each answering its own name), one worker or
thread per proxy, every proxy pinned alone to the same CPU (wrk and the backend on the other),
`wrk -t1 -c32`. Before any timing every proxy is checked to serve the right backend for the
measured host and for sampled hosts. Measured, per proxy: throughput and CPU per request (the
proxy's own processes, /proc/<pid>/stat) with 1 host and with 10,000 hosts, rounds alternated;
the API call for a new host route and the time until the new host is served; an endpoint flip
under load until served; 100 changes/s under load (errors, CPU per request churning / quiet).

`--smoke` runs everything tiny (well under a minute) so `make test` keeps the harness working.
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import (Keepalive, Nginx, children, free_port, percentile,  # noqa: E402
                   tcp_open, tree_cpu_seconds, wait_until)
from harness import Controller, Edge, Redis  # noqa: E402

ROOT = bench.ROOT
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
CADDY = shutil.which("caddy") or "/usr/bin/caddy"
MEASURED = "bench.peers.test"   # the host wrk asks for (last in every list: linear matchers pay most)
FLIP = "flip.peers.test"        # the host whose endpoint flips between backends A and B

BACKENDS = """
    server {{ listen 127.0.0.1:{a} reuseport backlog=4096; keepalive_requests 1000000;
             location / {{ return 200 "A\\n"; }} }}
    server {{ listen 127.0.0.1:{b} reuseport backlog=4096; keepalive_requests 1000000;
             location / {{ return 200 "B\\n"; }} }}
"""

STATIC = """
    server_names_hash_max_size 65536; server_names_hash_bucket_size 128;
    upstream backend {{ server 127.0.0.1:{a}; keepalive 64; keepalive_requests 1000000; }}
    server {{ listen 127.0.0.1:{port} reuseport backlog=4096 default_server; return 404; }}
{servers}
"""
STATIC_SERVER = """    server {{ listen 127.0.0.1:{port}; server_name {host};
             location / {{ proxy_pass http://backend; proxy_http_version 1.1;
                          proxy_set_header Connection ""; proxy_set_header Host $http_host;
                          proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }} }}
"""

HAPROXY_CFG = """global
    nbthread 1
    maxconn 4000
    stats socket {dir}/admin.sock mode 600 level admin
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    option forwardfor
    http-reuse always
frontend fe
    bind 127.0.0.1:{port}
    use_backend %[req.hdr(host),lower,map({dir}/hosts.map,be_none)]
backend be_none
    http-request return status 404
backend be_a
    server a 127.0.0.1:{a} pool-max-conn 64
backend be_flip
    balance roundrobin
    server s0 127.0.0.1:{a} pool-max-conn 64
"""


def hosts(n):
    """n hosts: n-1 fillers and the measured one, last."""
    return [f"h{i}.peers.test" for i in range(n - 1)] + [MEASURED]


def body_of(url, host):
    """(status, body) of one GET over a fresh connection."""
    h, p = url.split("//", 1)[1].rsplit(":", 1)
    c = http.client.HTTPConnection(h, int(p), timeout=5)
    try:
        c.request("GET", "/", headers={"Host": host})
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace").strip()
    finally:
        c.close()


def pin_all(pids, role):
    for pid in pids:
        bench.pin(pid, role)


# --- the proxies --------------------------------------------------------------------------

class StaticNginx:
    name = "static nginx"
    api = False

    def __init__(self, base, ports):
        self.base, self.ports, self.port, self.nginx = base, ports, free_port(), None

    def start(self, n):
        if self.nginx:
            self.nginx.stop()
        servers = "".join(STATIC_SERVER.format(port=self.port, host=h) for h in hosts(n))
        self.nginx = Nginx(f"static-{n}", STATIC.format(port=self.port, a=self.ports["A"],
                                                        servers=servers), 1, self.base)
        wait_until(lambda: tcp_open(self.port), 20, what="static nginx")
        pin_all([self.nginx.proc.pid], "proxy")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def master(self):
        return self.nginx.proc.pid

    def served_urls(self):
        return [self.url]

    def stop(self):
        if self.nginx:
            self.nginx.stop()
            self.nginx = None


class HAProxy:
    name = "HAProxy"
    api = True

    def __init__(self, base, ports):
        self.dir = os.path.join(base, "haproxy")
        os.makedirs(self.dir, exist_ok=True)
        self.ports, self.port, self.proc, self.flips = ports, free_port(), None, 0
        self.sock = os.path.join(self.dir, "admin.sock")

    def start(self, n):
        self.stop()
        with open(os.path.join(self.dir, "hosts.map"), "w") as f:
            f.write("".join(f"{h} be_a\n" for h in hosts(n)) + f"{FLIP} be_flip\n")
        cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(HAPROXY_CFG.format(dir=self.dir, port=self.port, a=self.ports["A"]))
        self.proc = subprocess.Popen([HAPROXY, "-f", cfg, "-db"], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "haproxy.log"), "ab"))
        wait_until(lambda: tcp_open(self.port) and os.path.exists(self.sock), 20, what="haproxy")
        pin_all([self.proc.pid], "proxy")
        self.flips, self.current = 0, "A"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def master(self):
        return self.proc.pid

    def served_urls(self):
        return [self.url]

    def cmd(self, line):
        """One runtime API command over a new connection; its answer (errors raise)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(self.sock)
            s.sendall(line.encode() + b"\n")
            out = b""
            while True:   # the server closes after one answer
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        text = out.decode(errors="replace").strip()
        if any(w in text.lower() for w in ("unknown", "error", "not found", "cannot", "failed",
                                           "require")):
            raise RuntimeError(f"haproxy {line!r}: {text}")
        return text

    def add_host(self, host):
        self.cmd(f"add map {self.dir}/hosts.map {host} be_a")

    def del_host(self, host):
        self.cmd(f"del map {self.dir}/hosts.map {host}")

    def read(self):
        self.cmd(f"get map {self.dir}/hosts.map {MEASURED}")

    def flip(self):
        """FLIP's endpoint to the other backend: a new server, enabled, the old one put in
        maintenance and (when HAProxy allows: no connections left) deleted."""
        self.current = "B" if self.current == "A" else "A"
        old, self.flips = f"s{self.flips}", self.flips + 1
        new = f"s{self.flips}"
        self.cmd(f"add server be_flip/{new} 127.0.0.1:{self.ports[self.current]} pool-max-conn 64")
        self.cmd(f"enable server be_flip/{new}")
        self.cmd(f"disable server be_flip/{old}")
        return self.current, lambda: self._forget(old)

    def _forget(self, server):
        try:
            self.cmd(f"del server be_flip/{server}")
        except RuntimeError:
            pass   # connections still open to it: stays disabled

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


class Caddy:
    name = "Caddy"
    api = True

    def __init__(self, base, ports):
        self.dir = os.path.join(base, "caddy")
        os.makedirs(self.dir, exist_ok=True)
        self.ports, self.port, self.admin, self.proc = ports, free_port(), free_port(), None

    @staticmethod
    def route(host, port, rid=None):
        r = {"match": [{"host": [host]}], "terminal": True,
             "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": f"127.0.0.1:{port}"}]}]}
        if rid:
            r["@id"] = rid
            r["handle"][0]["@id"] = rid + "-proxy"
        return r

    def start(self, n):
        self.stop()
        routes = [self.route(FLIP, self.ports["A"], "flip")]
        routes += [self.route(h, self.ports["A"]) for h in hosts(n)]
        config = {"admin": {"listen": f"127.0.0.1:{self.admin}", "config": {"persist": False}},
                  "logging": {"logs": {"default": {"level": "ERROR"}}},
                  "apps": {"http": {"servers": {"bench": {
                      "listen": [f"127.0.0.1:{self.port}"],
                      "automatic_https": {"disable": True}, "routes": routes}}}}}
        path = os.path.join(self.dir, "caddy.json")
        with open(path, "w") as f:
            json.dump(config, f)
        env = dict(os.environ, GOMAXPROCS="1", HOME=self.dir, XDG_CONFIG_HOME=self.dir,
                   XDG_DATA_HOME=self.dir)
        self.proc = subprocess.Popen([CADDY, "run", "--config", path], env=env,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "caddy.log"), "ab"))
        wait_until(lambda: tcp_open(self.port) and tcp_open(self.admin), 60, what="caddy")
        pin_all([self.proc.pid], "proxy")
        self.current = "A"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def master(self):
        return self.proc.pid

    def served_urls(self):
        return [self.url]

    def call(self, method, path, body=None):
        """One admin API call over a new connection."""
        c = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=60)
        try:
            data = json.dumps(body).encode() if body is not None else None
            c.request(method, path, body=data,
                      headers={"Content-Type": "application/json"} if data else {})
            r = c.getresponse()
            out = r.read()
            if r.status >= 300:
                raise RuntimeError(f"caddy {method} {path}: {r.status} {out[:200]!r}")
            return out
        finally:
            c.close()

    def add_host(self, host):
        self.call("POST", "/config/apps/http/servers/bench/routes",
                  self.route(host, self.ports["A"], "r-" + host))

    def del_host(self, host):
        self.call("DELETE", f"/id/r-{host}")

    def read(self):
        self.call("GET", "/id/flip")

    def flip(self):
        self.current = "B" if self.current == "A" else "A"
        self.call("PATCH", "/id/flip-proxy/upstreams",
                  [{"dial": f"127.0.0.1:{self.ports[self.current]}"}])
        return self.current, None

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None


class Switchyard:
    name = "Switchyard"
    api = True

    def __init__(self, base, ports):
        self.base, self.ports, self.parts, self.loaded = base, ports, [], 0
        self.redis = Redis(base)
        self.parts.append(self.redis)
        self.controller = Controller(self.redis, base)
        self.parts.append(self.controller)
        # one worker each, access logs off (the other proxies log nothing either); the first
        # edge is measured and pinned, the other two are unpinned (they are idle but for
        # applying changes)
        self.edges = []
        for i in (1, 2, 3):
            e = Edge(self.redis, base, f"peers-edge-{i}", workers=1, extra=("--access-log", "off"))
            self.parts.append(e)
            self.edges.append(e)
        pin_all([self.edges[0].process.pid], "proxy")
        self.api_conn = Keepalive(self.controller.url, self.controller.session.headers)
        for name in ("A", "B"):
            self.controller.ok("PUT", f"/api/v1/upstreams/be-{name.lower()}",
                               {"endpoints": [{"address": f"127.0.0.1:{ports[name]}", "weight": 1}]})
        self.controller.ok("PUT", "/api/v1/upstreams/flip",
                           {"endpoints": [{"address": f"127.0.0.1:{ports['A']}", "weight": 1}]})
        self.controller.route("flip", FLIP, "/", "flip")
        self.current = "A"

    def start(self, n):
        """Loads the host routes up to n (never removes: 1 first, then 10,000)."""
        hs = hosts(n)
        self.controller.route("measured", MEASURED, "/", "be-a")
        fillers = [{"id": f"h{i}", "host": h, "path": "/", "match": "prefix", "upstream": "be-a"}
                   for i, h in enumerate(hs[:-1]) if i >= self.loaded]
        for k in range(0, len(fillers), 10000):
            self.controller.ok("POST", "/api/v1/apply?atomic=false",
                               {"routes": fillers[k:k + 10000]})
        self.loaded = max(self.loaded, n - 1)
        version = self.redis.version()
        wait_until(lambda: all(e["applied_version"] >= version
                               for e in self.controller.status()["edges"]), 120,
                   what="edges applied the load")

    @property
    def url(self):
        return self.edges[0].url

    def master(self):
        return self.edges[0].process.pid

    def served_urls(self):
        return [e.url for e in self.edges]

    def add_host(self, host):
        self.api_conn.route("n-" + host, host, "/", "be-a")

    def del_host(self, host):
        self.api_conn.ok("DELETE", "/api/v1/routes/n-" + host)

    def read(self):
        self.api_conn.ok("GET", "/api/v1/routes/measured")

    def flip(self):
        self.current = "B" if self.current == "A" else "A"
        self.api_conn.ok("PUT", "/api/v1/upstreams/flip", {"endpoints": [
            {"address": f"127.0.0.1:{self.ports[self.current]}", "weight": 1}]})
        return self.current, None

    def stop(self):
        self.api_conn.close()
        for p in reversed(self.parts):
            p.stop()


# --- the measurements ---------------------------------------------------------------------

def check_serving(proxy, n):
    """Every proxy serves the right backend before any timing: the measured host, sampled
    filler hosts (backend A), the flip host (its current backend) and an unknown host (not A)."""
    sample = hosts(n)
    sample = [sample[-1]] + sample[:: max(1, len(sample) // 5)][:5]
    for url in proxy.served_urls():
        for h in sample:
            st, body = body_of(url, h)
            if (st, body) != (200, "A"):
                raise AssertionError(f"{proxy.name} at {url}: {h} answered {st} {body!r}, not A")
        st, body = body_of(url, "unknown.peers.test")
        if body in ("A", "B"):
            raise AssertionError(f"{proxy.name}: an unknown host reached a backend")
        if proxy.api:
            st, body = body_of(url, FLIP)
            if body != proxy.current:
                raise AssertionError(f"{proxy.name}: {FLIP} answered {body!r}, not {proxy.current}")


def settle(proxy, limit=15.0):
    """Waits (at most `limit` s) until the proxy just measured is idle again: Caddy with
    10,000 routes goes on working through what wrk queued (and collecting garbage) after
    wrk stops, on the pinned CPU, and the next proxy measured paid for it (the first run
    put Switchyard, always next after Caddy, at 1.67x static with 10,000 hosts; alone:
    1.05-1.15x). Returns the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        before = tree_cpu_seconds(proxy.master())
        time.sleep(0.25)
        if tree_cpu_seconds(proxy.master()) - before <= 0.01:   # under 4% of a core
            break
    return time.monotonic() - start


def throughput(proxies, args, n):
    """Rounds of wrk against each proxy (the order rotated every round), each run after the
    one before has gone idle."""
    runs = {p.name: [] for p in proxies}
    for r in range(args.rounds):
        order = proxies[r % len(proxies):] + proxies[:r % len(proxies)]
        for p in order:
            runs[p.name].append(bench.wrk(p.url + "/", MEASURED, args.seconds, args.connections,
                                          proxy=p.master()))
            runs[p.name][-1]["settle_s"] = settle(p)
    static = runs["static nginx"]
    out = {}
    for name, rs in runs.items():
        s = bench._summary(rs)
        s["cpu_us_runs"] = [r.get("proxy_us_per_req") for r in rs]
        s["settle_s_max"] = max(r["settle_s"] for r in rs)
        s["rps_vs_static"] = bench._ratios(rs, static)
        cost = [a["proxy_us_per_req"] / b["proxy_us_per_req"] for a, b in zip(rs, static)]
        s["cpu_vs_static"] = {"median": statistics.median(cost), "min": min(cost),
                              "max": max(cost), "rounds": cost}
        out[name] = s
    return out


def pollers_for(proxy):
    return [Keepalive(u) for u in proxy.served_urls()]


def wait_body(pollers, host, want, timeout=30):
    for p in pollers:
        wait_until(lambda p=p: p.call("GET", "/", host=host)[1].decode().strip() == want,
                   timeout, interval=0.0005, what=f"{host} serving {want}")


def summary_ms(xs):
    return {"n": len(xs), "p50": percentile(xs, 50), "p99": percentile(xs, 99), "max": max(xs)}


def new_hosts(proxy, samples):
    """Per sample: the API call adding a route for a new host (ms), and the time from the
    call until every proxy process serves it (ms); then the route is deleted again."""
    api, served = [], []
    pollers = pollers_for(proxy)
    for i in range(samples):
        host = f"new{i}-{os.getpid()}.peers.test"
        t0 = time.monotonic()
        proxy.add_host(host)
        t1 = time.monotonic()
        wait_body(pollers, host, "A")
        t2 = time.monotonic()
        api.append((t1 - t0) * 1000)
        served.append((t2 - t0) * 1000)
        proxy.del_host(host)
    for p in pollers:
        p.close()
    return {"api_ms": summary_ms(api), "served_ms": summary_ms(served)}


def flips_under_load(proxy, samples, args):
    """wrk on the flip host while its endpoint flips A <-> B `samples` times; each timed from
    the API call until every proxy process serves the new backend."""
    api, served, result = [], [], {}
    pollers = pollers_for(proxy)
    secs = max(2, int(samples * 0.05) + 2) if args.smoke else args.flip_seconds

    def load():
        result["w"] = bench.wrk(proxy.url + "/", FLIP, secs, args.connections, proxy=proxy.master())

    t = threading.Thread(target=load)
    t.start()
    time.sleep(0.3)
    end = time.monotonic() + secs - 0.5
    cleanup = []
    for i in range(samples):
        if time.monotonic() > end:
            break
        t0 = time.monotonic()
        want, forget = proxy.flip()
        t1 = time.monotonic()
        wait_body(pollers, FLIP, want)
        t2 = time.monotonic()
        api.append((t1 - t0) * 1000)
        served.append((t2 - t0) * 1000)
        if forget:
            cleanup.append(forget)
        if len(cleanup) > 2:
            cleanup.pop(0)()
        time.sleep(0.02)
    t.join()
    for p in pollers:
        p.close()
    return {"api_ms": summary_ms(api), "served_ms": summary_ms(served),
            "wrk_errors": result["w"]["errors"], "wrk_rps": result["w"]["rps"]}


def churn(proxy, args):
    """Alternating windows under wrk load: quiet (the same rate of read calls to the API) and
    churning (`args.rate` changes a second: a new host added, the previous one deleted).
    Returns errors, the changes made (a slow API falls behind the rate) and the proxy's CPU per
    request churning / quiet, per round."""
    secs = args.churn_seconds
    quiet, busy, changes, change_errors = [], [], 0, 0
    serial = [0]

    def change(i):
        serial[0] += 1
        host = f"c{(serial[0] + 1) // 2}.churn.peers.test"   # added, then deleted
        if serial[0] % 2:
            proxy.add_host(host)
        else:
            proxy.del_host(host)

    for r in range(args.churn_rounds):
        for kind in (("quiet", "busy") if r % 2 == 0 else ("busy", "quiet")):
            fn = (lambda i: proxy.read()) if kind == "quiet" else change
            w, (n, errs) = bench.wrk_while(proxy.url + "/", MEASURED, secs, args.connections,
                                           lambda fn=fn: bench.churn(secs - 0.4, args.rate, fn),
                                           proxy=proxy.master())
            (quiet if kind == "quiet" else busy).append(w)
            if kind == "busy":
                changes, change_errors = changes + n, change_errors + errs
    ratio = [b["proxy_us_per_req"] / q["proxy_us_per_req"] for b, q in zip(busy, quiet)]
    return {"changes": changes, "change_errors": change_errors,
            "changes_per_s": changes / ((secs - 0.4) * args.churn_rounds),
            "request_errors_busy": sum(w["errors"] for w in busy),
            "request_errors_quiet": sum(w["errors"] for w in quiet),
            "quiet": bench._summary(quiet), "busy": bench._summary(busy),
            "cpu_ratio": {"median": statistics.median(ratio), "min": min(ratio),
                          "max": max(ratio), "rounds": ratio}}


def placement_text():
    p = bench.PLACEMENT
    if not p:
        return "nothing pinned (fewer than 2 CPUs or no taskset)"
    return (f"wrk and the backend nginx pinned to CPU {p['load']}, the proxy under test (all its "
            f"processes and threads) to CPU {p['proxy']}")


def versions():
    def first(argv, stream="stdout"):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (getattr(out, stream) or out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    return {"nginx": first([bench.NGINX, "-v"], "stderr"), "haproxy": first([HAPROXY, "-v"]),
            "caddy": first([CADDY, "version"]), "wrk": first(["wrk", "-v"]).split(" [")[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny unmeasured run (harness check)")
    ap.add_argument("--seconds", type=int, default=5, help="wrk duration per throughput run")
    ap.add_argument("--rounds", type=int, default=5, help="alternating throughput rounds")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--hosts", type=int, default=10000, help="hosts loaded for the change tests")
    ap.add_argument("--samples", type=int, default=200, help="new-host and flip samples per proxy")
    ap.add_argument("--caddy-samples", type=int, default=20,
                    help="the same for Caddy (each change rewrites its whole configuration)")
    ap.add_argument("--flip-seconds", type=int, default=20, help="wrk time during the flips")
    ap.add_argument("--rate", type=int, default=100, help="changes per second while churning")
    ap.add_argument("--churn-seconds", type=int, default=5, help="length of one churn window")
    ap.add_argument("--churn-rounds", type=int, default=2)
    ap.add_argument("--only", default="", help="comma-separated proxies to keep (static is always in)")
    ap.add_argument("--json", default=os.path.join(ROOT, "docs", "benchmarks-peers.json"))
    ap.add_argument("--md", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--render", action="store_true", help="only rewrite the Markdown from --json")
    args = ap.parse_args()
    if args.render:
        with open(args.json) as f:
            return publish(json.load(f), args)
    if args.smoke:
        args.seconds, args.rounds, args.hosts, args.samples, args.caddy_samples = 1, 1, 50, 5, 3
        args.churn_rounds, args.rate, args.churn_seconds = 1, 20, 2
    bench.PLACEMENT = bench.choose_placement("load")
    base = tempfile.mkdtemp(prefix="switchyard-peers-")
    os.chmod(base, 0o755)
    started = []
    results = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "command": "python3 bench/peers.py" + (" --smoke" if args.smoke else ""),
               "machine": {"cores": os.cpu_count(), "kernel": platform.release(),
                           "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
                           "placement": placement_text(),
                           "wrk": f"wrk -t1 -c{args.connections} -d{args.seconds}s",
                           **versions()},
               "settings": {k: getattr(args, k) for k in (
                   "seconds", "rounds", "hosts", "samples", "caddy_samples", "flip_seconds", "rate",
                   "churn_seconds", "churn_rounds")}}
    try:
        ports = {"A": free_port(), "B": free_port()}
        backend = Nginx("backends", BACKENDS.format(**{k.lower(): v for k, v in ports.items()}), 1,
                        base)
        started.append(backend)
        wait_until(lambda: tcp_open(ports["A"]) and tcp_open(ports["B"]), 5, what="backends")
        bench.pin(backend.proc.pid, "backend")
        only = {s.strip().lower() for s in args.only.split(",") if s.strip()}
        classes = [c for c in (StaticNginx, HAProxy, Caddy, Switchyard)
                   if not only or c is StaticNginx or c.name.lower() in only]
        proxies = []
        for cls in classes:
            p = cls(base, ports)
            started.append(p)
            proxies.append(p)
        for n in (1, args.hosts):
            for p in proxies:
                p.start(n)
            for p in proxies:
                check_serving(p, n)
            print(f"peers: throughput with {n} host(s)", file=sys.stderr)
            results.setdefault("throughput", {})[str(n)] = throughput(proxies, args, n)
        for p in proxies:
            if not p.api:
                continue
            print(f"peers: {p.name}: new hosts, flips, churn", file=sys.stderr)
            for q in proxies:
                settle(q)
            samples = args.caddy_samples if p.name == "Caddy" else args.samples
            results.setdefault("changes", {})[p.name] = {
                "new_host": new_hosts(p, samples), "flip": flips_under_load(p, samples, args),
                "churn": churn(p, args)}
            check_serving(p, args.hosts)   # still right after all the changes
            settle(p)
    finally:
        for s in reversed(started):
            try:
                s.stop()
            except Exception as exc:  # noqa: BLE001 - stop everything we can
                print(f"stopping {s}: {exc}", file=sys.stderr)
        shutil.rmtree(base, ignore_errors=True)
    results["machine"]["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    if args.smoke:
        print(render(results, smoke=True))
        readme(results)
        for t in results["throughput"].values():
            assert len(t) == len(classes) and all(s["rps"] > 0 for s in t.values())
        for p, c in results["changes"].items():
            assert c["new_host"]["served_ms"]["n"] > 0 and c["flip"]["served_ms"]["n"] > 0, p
            assert c["churn"]["changes"] > 0, p
        print("peers smoke: 1 passed, 0 failed")
        return 0
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
    return publish(results, args)


def _rng(x, fmt="%.2f"):
    return f"{fmt % x['median']} ({fmt % x['min']}–{fmt % x['max']})"


def render(r, smoke=False):
    m = r["machine"]
    names = list(r["throughput"][min(r["throughput"], key=int)])
    sizes = sorted(r["throughput"], key=int)
    lines = ["<!-- peers:start -->", "## Peers: HAProxy and Caddy beside static nginx"
             + (" (smoke run — not a measurement)" if smoke else ""), "",
             f"`bench/peers.py` ({r['date']}; `{r['command']}`): {m['nginx']}, {m['haproxy']}, "
             f"Caddy {m['caddy']}; {m['cores']} cores, Linux {m['kernel']}; one worker or thread "
             f"per proxy; {m['placement']}; `{m['wrk']}`, {r['settings']['rounds']} rounds "
             "alternated. The machine was shared with other jobs (load average "
             f"{' / '.join(m['loadavg_at_start'])} at the start, {' / '.join(m['loadavg_at_end'])} "
             "at the end): compare CPU per request and the ratios of one round, not absolute "
             "req/s. Ranges in parentheses are the spread of the per-round values.", "",
             "| measure | " + " | ".join(names) + " |",
             "| --- |" + " ---: |" * len(names)]
    for n in sizes:
        t = r["throughput"][n]
        label = "1 host" if n == "1" else f"{int(n):,} hosts"
        lines.append(f"| CPU per request, {label} (µs) | "
                     + " | ".join(f"{t[x]['proxy_us_per_req']:.1f}" for x in names) + " |")
        lines.append(f"| CPU per request vs static, {label} | "
                     + " | ".join(_rng(t[x]["cpu_vs_static"]) for x in names) + " |")
        lines.append(f"| req/s, {label} | " + " | ".join(f"{t[x]['rps']:.0f}" for x in names) + " |")
        lines.append(f"| req/s vs static, {label} | "
                     + " | ".join(_rng(t[x]["rps_vs_static"]) for x in names) + " |")
    c = r.get("changes", {})

    def row(label, fn):
        return f"| {label} | — | " + " | ".join(fn(c[x]) if x in c else "—"
                                                for x in names[1:]) + " |"

    lines += [
        row("API call for a new host route, p50 / p99 (ms)",
            lambda x: f"{x['new_host']['api_ms']['p50']:.2f} / {x['new_host']['api_ms']['p99']:.2f}"),
        row("new host served, p50 / p99 (ms; Switchyard: all three edges)",
            lambda x: f"{x['new_host']['served_ms']['p50']:.2f} / {x['new_host']['served_ms']['p99']:.2f}"),
        row("endpoint flip under load: API call p50 (ms)",
            lambda x: f"{x['flip']['api_ms']['p50']:.2f}"),
        row("endpoint flip under load served, p50 / p99 (ms)",
            lambda x: f"{x['flip']['served_ms']['p50']:.2f} / {x['flip']['served_ms']['p99']:.2f}"),
        row("flip: samples, wrk errors",
            lambda x: f"{x['flip']['served_ms']['n']}, {x['flip']['wrk_errors']}"),
        row(f"churn at {r['settings']['rate']} changes/s: changes made per s",
            lambda x: f"{x['churn']['changes_per_s']:.1f}"),
        row("churn: request errors, change errors",
            lambda x: f"{x['churn']['request_errors_busy']}, {x['churn']['change_errors']}"),
        row("churn: CPU per request churning ÷ quiet",
            lambda x: _rng(x["churn"]["cpu_ratio"])),
        "",
        f"New hosts and flips: {r['settings']['samples']} samples each "
        f"({r['settings']['caddy_samples']} for Caddy), with {r['settings']['hosts']:,} hosts "
        "loaded; \"served\" is timed from the API call until a keep-alive poll (every 0.5 ms) "
        "gets the new backend's answer from every proxy process (Switchyard: each of the three "
        "edges). HAProxy's flip is three runtime API commands (add server, enable it, disable "
        "the old one; the server before that is deleted once its connections are gone), Caddy's one "
        "`PATCH` of the upstream list, Switchyard's one `PUT` of the upstream. Churn: "
        f"{r['settings']['churn_rounds']} windows of {r['settings']['churn_seconds']} s each "
        "churning (a new host added, the previous one deleted, alternately) and quiet (the "
        "same rate of API reads), under wrk on the measured host.", "",
        "What would make this comparison unfair:", "",
        "- CPU per request counts only the proxy's own processes: HAProxy and Caddy hold their "
        "configuration in the process, Switchyard's edge gets it from Redis through a "
        "controller; the controller's and Redis's CPU is not in the edge's figure (it is paid "
        "once per change, not per request, and is shared by every edge).",
        "- Switchyard's \"served\" waits for three edges and its changes are durable in Redis; "
        "HAProxy's and Caddy's are one process's memory (lost on restart unless the map file "
        "or config is also written).",
        "- The measured host is last in every host list: Caddy matches routes in order, so "
        "it pays for all 10,000 host matchers (one route per host is what its admin API adds; "
        "a Caddy user with many hosts on one backend would put them in one route). nginx, "
        "HAProxy and Switchyard look hosts up in hashes or trees, where the position does not "
        "matter.",
        "- On a machine shared with other jobs the CPU time of a request grows with what "
        "else runs beside it (caches, the other hyperthread), so the per-round ranges are "
        "wide; each proxy's run starts only once the one before is idle, but the others' "
        "load is not ours to stop. The 10,000-host Switchyard figure especially should be "
        "read with its range; the instruction counts (bench/instructions.py) are the steadier "
        "measure of the request path.",
        "- Caddy is started with GOMAXPROCS=1; the Go runtime still has a few threads "
        "(garbage collector, timers) on the same pinned CPU.",
        "- The backend, wrk and the pollers share the other CPU; the controller, Redis and the "
        "two unmeasured edges are not pinned and compete with both.",
        "<!-- peers:end -->"]
    return "\n".join(lines)


def readme(r):
    """The headline table for the README (between its readme-peers markers)."""
    names = list(r["throughput"]["1"])
    big = max(r["throughput"], key=int)
    c = r.get("changes", {})
    sy = "Switchyard"

    def cells(fn):
        return " | ".join(fn(x) for x in names)

    def ch(fn):
        return cells(lambda x: fn(c[x]) if x in c else "—")

    rows = [f"| CPU per request, 1 host | " + cells(
                lambda x: f"{r['throughput']['1'][x]['proxy_us_per_req']:.1f} µs"
                + (f" ({r['throughput']['1'][x]['cpu_vs_static']['median']:.2f}× static)"
                   if x == sy else "")) + " |",
            f"| CPU per request, {int(big):,} hosts | " + cells(
                lambda x: f"{r['throughput'][big][x]['proxy_us_per_req']:.1f} µs"
                + (f" ({r['throughput'][big][x]['cpu_vs_static']['median']:.2f}× static)"
                   if x == sy else "")) + " |",
            f"| req/s vs static, 1 / {int(big):,} hosts | " + cells(
                lambda x: f"{r['throughput']['1'][x]['rps_vs_static']['median']:.2f} / "
                          f"{r['throughput'][big][x]['rps_vs_static']['median']:.2f}") + " |",
            "| API call for a new host route, p50 | " + ch(
                lambda x: f"{x['new_host']['api_ms']['p50']:.2f} ms") + " |",
            "| new host served, p50 / p99 (Switchyard: all three edges) | " + ch(
                lambda x: f"{x['new_host']['served_ms']['p50']:.1f} / "
                          f"{x['new_host']['served_ms']['p99']:.1f} ms") + " |",
            "| endpoint flip under load served, p50 / p99 | " + ch(
                lambda x: f"{x['flip']['served_ms']['p50']:.1f} / "
                          f"{x['flip']['served_ms']['p99']:.1f} ms") + " |",
            f"| churn {r['settings']['rate']} changes/s: request errors, CPU/request churn ÷ quiet | "
            + ch(lambda x: f"{x['churn']['request_errors_busy']}, "
                           f"{x['churn']['cpu_ratio']['median']:.2f}×") + " |"]
    return "\n".join([
        "<!-- readme-peers:start -->",
        f"Beside the proxies that change routes without a restart ([bench/peers.py](bench/peers.py), "
        f"{r['date']}, {r['settings']['rounds']} rounds, one worker or thread each on the same "
        f"pinned CPU, `wrk -t1 -c32`, {r['settings']['hosts']:,} hosts loaded for the change "
        "tests; the machine was shared with other jobs, so read CPU per request and ratios, "
        "not req/s; [details](docs/benchmarks.md#peers-haproxy-and-caddy-beside-static-nginx)):",
        "", "| measure | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names),
        *rows, "<!-- readme-peers:end -->"])


def publish(results, args):
    text = render(results)
    print(text)
    bench.publish_named("peers", args.md, text, readme(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
