#!/usr/bin/env python3
"""Switchyard benchmarks, side by side with static nginx in the same run.

  (a) static nginx: proxy_pass to an upstream block with keepalive
  (b) bare Lua floor: one shared-dict get in access_by_lua + balancer_by_lua
  (c) a Switchyard edge, routing from Redis-fed shared dicts

Same backend (an nginx `return 200`), same worker count, runs alternated (the order
rotated every round) so drift hits every variant alike. With two or more CPUs the load
generator and the proxy under test are pinned apart with taskset: wrk and the backend on
one CPU, the proxy being measured (whichever variant) alone on another, so a variant's
number is its own cost and not a share of a CPU fought over with wrk. Each run also
records how busy both CPUs were, so a reader can see which side was the bottleneck. Scale: edges with 1, 10,000 and 100,000 routes loaded (each its own Redis), runs alternated.
Propagation: route changes through the API, time until every edge serves each.

Results go to docs/benchmarks.md (and a JSON next to it); `--smoke` runs everything tiny
so `make test` proves the harness works without measuring anything.
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "e2e"))
from harness import BIN, Controller, Edge, Redis, free_port, wait_until  # noqa: E402

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MODULES = "/usr/lib/nginx/modules"

COMMON = """
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
    {body}
}}
"""

BACKEND = """
    server {{ listen 127.0.0.1:{port} reuseport backlog=4096;
             keepalive_requests 1000000;
             location / {{ return 200 "ok\\n"; }} }}
"""

STATIC = """
    upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; keepalive_requests 1000000; }}
    server {{ listen 127.0.0.1:{port} reuseport backlog=4096;
             location / {{ proxy_pass http://backend; proxy_http_version 1.1;
                          proxy_set_header Connection "";
                          proxy_set_header Host $http_host;
                          proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                          proxy_set_header X-Forwarded-Proto $scheme;
                          proxy_set_header X-Forwarded-Host $host;
                          proxy_set_header X-Real-IP $remote_addr; }} }}
"""

BARE_LUA = """
    lua_shared_dict floor 1m;
    init_by_lua_block {{ ngx.shared.floor:set("peer", {backend}) }}
    upstream backend {{
        server 0.0.0.1;
        balancer_by_lua_block {{
            require("ngx.balancer").set_current_peer("127.0.0.1", ngx.ctx.port)
        }}
        keepalive 64; keepalive_requests 1000000;
    }}
    server {{ listen 127.0.0.1:{port} reuseport backlog=4096;
             location / {{
                 access_by_lua_block {{ ngx.ctx.port = ngx.shared.floor:get("peer") }}
                 proxy_pass http://backend; proxy_http_version 1.1;
                          proxy_set_header Connection "";
                          proxy_set_header Host $http_host;
                          proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                          proxy_set_header X-Forwarded-Proto $scheme;
                          proxy_set_header X-Forwarded-Host $host;
                          proxy_set_header X-Real-IP $remote_addr; }} }}
"""


def write_conf(directory, body, workers):
    """<directory>/nginx.conf around an http{} `body` (the Lua modules loaded when it uses
    Lua); returns its path."""
    os.makedirs(directory, exist_ok=True)
    conf = os.path.join(directory, "nginx.conf")
    mods = "".join(f"load_module {MODULES}/{m};\n" for m in
                   ("ndk_http_module.so", "ngx_http_lua_module.so")) if "lua" in body else ""
    with open(conf, "w") as f:
        f.write(mods + COMMON.format(workers=workers, dir=directory, body=body))
    return conf


def stop_all(started, base):
    """Stops what a benchmark started (last first; every one even if some fail) and removes
    its directory."""
    for s in reversed(started):
        try:
            s.stop()
        except Exception as exc:  # noqa: BLE001 - stop everything we can
            print(f"stopping {s}: {exc}", file=sys.stderr)
    shutil.rmtree(base, ignore_errors=True)


class Nginx:
    def __init__(self, name, body, workers, base):
        self.dir = os.path.join(base, name)
        conf = write_conf(self.dir, body, workers)
        self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-c", conf, "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def publish_section(path, start, end, section):
    """Puts `section` (which begins with `start` and ends with `end`) into the Markdown file
    at path, in place of the one between the same markers, or appended."""
    text = open(path).read() if os.path.exists(path) else ""
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as f:
        f.write(text)


def publish_named(name, md, text, readme_text):
    """Puts `text` between `<!-- name:start/end -->` in the Markdown file md and, when md is
    the published docs/benchmarks.md, `readme_text` between `<!-- readme-name:... -->` in the
    README (a private --md run leaves the README alone)."""
    publish_section(md, f"<!-- {name}:start -->", f"<!-- {name}:end -->", text)
    if os.path.abspath(md) == os.path.join(ROOT, "docs", "benchmarks.md"):
        publish_section(os.path.join(ROOT, "README.md"), f"<!-- readme-{name}:start -->",
                        f"<!-- readme-{name}:end -->", readme_text)


def tcp_open(port):
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


PLACEMENT = None  # {"load": cpu, "proxy": cpu} when pinning (see choose_placement)


def choose_placement(backend_on):
    """Two CPUs of ours (the lowest two we may run on), or None on a one-CPU machine or
    without taskset: then nothing is pinned and the report says so. The backend shares
    the CPU of `backend_on` ("load": with wrk, the default, so a proxy's CPU does only the
    proxy's work; "proxy": with the proxy under test, for comparison)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or not shutil.which("taskset"):
        return None
    return {"load": cpus[0], "proxy": cpus[1], "backend": backend_on}


def placement_text(placement):
    if not placement:
        return "nothing pinned (fewer than 2 CPUs or no taskset)"
    if placement["backend"] == "load":
        load, proxy = "wrk and the backend nginx", "the proxy under test"
    else:
        load, proxy = "wrk", "the proxy under test and the backend nginx"
    return (f"{load} pinned to CPU {placement['load']}, {proxy} (static nginx, bare Lua, edge, "
            f"reload foil: master and workers) to CPU {placement['proxy']}; Redis, the controller "
            "and the API client unpinned")


def pin(pid, role):
    """Pins a process and its descendants (all threads) to the CPU of `role`."""
    if not PLACEMENT:
        return
    pids, todo = [], [pid]
    while todo:  # bounded: a process tree of a few nginx processes
        p = todo.pop()
        pids.append(p)
        todo += children(p)
        if len(pids) > 64:
            break
    cpu = PLACEMENT[PLACEMENT["backend"]] if role == "backend" else PLACEMENT[role]
    for p in pids:
        subprocess.run(["taskset", "-a", "-c", "-p", str(cpu), str(p)],
                       check=True, capture_output=True)


def cpu_times():
    """{cpu: (busy, total)} jiffies from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *vals = line.split()
                vals = [int(v) for v in vals]
                idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
                out[int(name[3:])] = (sum(vals) - idle, sum(vals))
    return out


def busy_between(before, after, cpu):
    b0, t0 = before.get(cpu, (0, 0))
    b1, t1 = after.get(cpu, (0, 0))
    return (b1 - b0) / (t1 - t0) if t1 > t0 else None


def cpu_seconds(pids):
    """utime + stime of the processes `pids`, and of their children that exited and were
    waited for (cutime + cstime: an nginx master's workers retired by a reload), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / tick
        except (OSError, IndexError, ValueError):
            pass  # gone between the listing and the read: a small undercount
    return total


def tree_cpu_seconds(root):
    """utime + stime of a process and its children (an nginx master and its workers)."""
    return cpu_seconds([root] + children(root))


def wrk(url, host, seconds, connections, threads=1, proxy=None, headers=()):
    """One wrk run (extra request `headers`: "Name: value" strings). `proxy`: pid of the
    nginx master under test, whose CPU time per request is recorded (a cost that does not
    depend on how busy the rest of the machine is). Pinned when PLACEMENT is set."""
    pinned = ["taskset", "-c", str(PLACEMENT["load"])] if PLACEMENT else []
    before = cpu_times()
    proxy_before = tree_cpu_seconds(proxy) if proxy else None
    extra = [a for h in headers for a in ("-H", h)]
    out = subprocess.run(pinned + ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                          "--latency", "-H", f"Host: {host}", *extra, url],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct, val, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        lat[pct] = float(val) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    after = cpu_times()
    m = re.search(r"(\d+) requests in", out)
    result = {"rps": rps, "p50_ms": lat.get("50"), "p99_ms": lat.get("99"), "errors": errors,
              "requests": int(m.group(1)) if m else 0}
    if proxy and result["requests"] > 0:
        result["proxy_us_per_req"] = (tree_cpu_seconds(proxy) - proxy_before) * 1e6 / result["requests"]
    if PLACEMENT:
        result["cpu_busy"] = {role: busy_between(before, after, PLACEMENT[role]) for role in ("load", "proxy")}
    return result


def routes_batch(n, upstream, start=0):
    """Varied hosts and paths: mostly exact hosts with prefixes, some wildcards, a few regex."""
    routes = []
    for i in range(start, start + n):
        if i % 50 == 7:
            r = {"host": f"*.w{i}.bench.test", "path": f"/p{i % 97}", "match": "prefix"}
        elif i % 1000 == 13:
            r = {"host": f"h{i % 5000}.bench.test", "path": f"^/re{i}/[0-9]+$", "match": "regex"}
        else:
            r = {"host": f"h{i % 5000}.bench.test", "path": f"/p{i}", "match": "prefix"}
        r.update(id=f"r{i}", upstream=upstream)
        routes.append(r)
    return routes


def load_routes(controller, total, upstream, start):
    """Loads routes r<start> .. r<start+total-1>, 10,000 per request with ?atomic=false:
    the controller applies them in parts of at most 1,000 (the atomic batch bound, one
    sy_apply call and one version each; README, "Batches")."""
    done = 0
    while done < total:
        n = min(10000, total - done)
        controller.ok("POST", "/api/v1/apply?atomic=false",
                      {"routes": routes_batch(n, upstream, start + done)})
        done += n


def percentile(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def edge_status(edge):
    import requests
    return requests.get(edge.url + "/_switchyard/status", timeout=5).json()


def redis_used_memory(redis):
    info = redis.cli("INFO", "memory")
    return int(re.search(r"used_memory:(\d+)", info).group(1))


class Keepalive:
    """One keep-alive HTTP/1.1 connection for the loops that time or pace calls (propagation,
    churn). `requests` spends ~1.6 ms of CPU per call on this machine, http.client ~0.3 ms:
    with requests the client, not the edge, set the polling resolution and took most of the
    CPU the churn windows lose. Reconnects once when the server closed the connection."""

    def __init__(self, url, headers=None):
        host, port = url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
        self.host, self.port, self.headers = host, int(port), dict(headers or {})
        self.conn = None

    def call(self, method, path, body=None, host=None):
        """Returns (status, body bytes)."""
        headers = dict(self.headers)
        if host:
            headers["Host"] = host
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def ok(self, method, path, body=None):
        status, data = self.call(method, path, body)
        if status not in (200, 201, 204):
            raise AssertionError(f"{method} {path}: {status} {data[:200]!r}")
        return status

    def route(self, rid, host, path, upstream, match="prefix"):
        return self.ok("PUT", f"/api/v1/routes/{rid}", {"host": host, "path": path, "match": match,
                                                        "upstream": upstream, "priority": 0})

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Sampler(threading.Thread):
    """Samples an nginx master's process count and total RSS until stopped."""

    def __init__(self, master):
        super().__init__(daemon=True)
        self.master, self.stop_flag = master, threading.Event()
        self.max_procs, self.max_rss_kb = 0, 0

    def run(self):
        while not self.stop_flag.wait(0.2):
            kids = children(self.master)
            self.max_procs = max(self.max_procs, len(kids))
            self.max_rss_kb = max(self.max_rss_kb, rss_kb(self.master) + sum(map(rss_kb, kids)))


def churn(seconds, rate, change):
    """Calls change(i) `rate` times a second for `seconds`; returns (changes, errors)."""
    n = errors = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        due = start + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            change(n)
        except Exception:  # noqa: BLE001 - counted, the run goes on
            errors += 1
        n += 1
    return n, errors


def wrk_while(url, host, seconds, connections, during, proxy=None):
    """Runs wrk for `seconds` while during() runs in this thread; returns (wrk, during())."""
    result = {}
    t = threading.Thread(target=lambda: result.update(
        w=wrk(url, host, seconds, connections, proxy=proxy)))
    t.start()
    time.sleep(0.2)
    other = during()
    t.join()
    return result["w"], other


def churn_rounds(url, master, args, quiet_fn, change_fn):
    """Alternating windows under load, `args.churn_rounds` of each: `quiet_fn(i)` calls
    (the same request rate, changing nothing) and `change_fn(i)` changes, 100 a second
    (each window churn_seconds / churn_rounds long; the order flips every round so drift
    hits both alike). Returns the summaries, the per-round ratios (churning / quiet req/s),
    the change count and errors, and the proxy's largest process count and RSS while
    churning."""
    secs, rate = (2, 20) if args.smoke else (
        max(1, args.churn_seconds // args.churn_rounds), 100)
    quiet, busy = [], []
    changes = errors = 0
    sampler = Sampler(master)
    sampler.start()
    for r in range(args.churn_rounds):
        offset = r * 1000000  # every round changes something new (an identical PUT is a no-op)
        for kind in (("quiet", "busy") if r % 2 == 0 else ("busy", "quiet")):
            if kind == "quiet":
                w, _ = wrk_while(url, "bench.test", secs, args.connections,
                                 lambda: churn(secs, rate, lambda i: quiet_fn(i + offset)),
                                 proxy=master)
                quiet.append(w)
            else:
                w, (n, errs) = wrk_while(url, "bench.test", secs, args.connections,
                                         lambda: churn(secs, rate, lambda i: change_fn(i + offset)),
                                         proxy=master)
                busy.append(w)
                changes, errors = changes + n, errors + errs
    sampler.stop_flag.set()
    sampler.join()
    # without load: the proxy's CPU per change, quiet calls subtracted (a cost the rest of
    # the machine barely moves)
    idle = {}
    for kind, fn in (("quiet", quiet_fn), ("busy", change_fn)):
        before = tree_cpu_seconds(master)
        n, _ = churn(secs, rate, lambda i, fn=fn: fn(i + 2000000))
        idle[kind] = (tree_cpu_seconds(master) - before) / max(1, n)
    return {"changes": changes, "change_errors": errors, "quiet": _summary(quiet),
            "busy": _summary(busy), "ratio": _ratios(busy, quiet),
            "idle_cpu_us_per_change": max(0.0, idle["busy"] - idle["quiet"]) * 1e6,
            "max_workers": sampler.max_procs, "max_rss_mb": sampler.max_rss_kb / 1024}


RELOAD_FOIL = """
    upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; keepalive_requests 1000000; }}
    server {{ listen 127.0.0.1:{port} reuseport backlog=4096;
             {locations}
             location / {{ proxy_pass http://backend; proxy_http_version 1.1;
                          proxy_set_header Connection ""; }} }}
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="tiny run: proves the harness works")
    ap.add_argument("--seconds", type=int, default=10, help="wrk duration per run")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per variant")
    ap.add_argument("--workers", type=int, default=1, help="nginx workers for every proxy")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--scale", default="1,10000,100000", help="route counts to measure")
    ap.add_argument("--changes", type=int, default=1000, help="propagation samples")
    # 6 windows of 10 s: the issue asks for 30 s of churn; with 3 the per-round ratios
    # (0.76-1.09 in one run) spread wider than the margin the target leaves
    ap.add_argument("--churn-seconds", type=int, default=60, help="churn time in all (per variant)")
    ap.add_argument("--churn-rounds", type=int, default=6,
                    help="churn windows, each alternated with a quiet one")
    ap.add_argument("--prober-endpoints", type=int, default=10000)
    ap.add_argument("--backend-on", choices=("load", "proxy"), default="load",
                    help="with two CPUs: pin the backend nginx with wrk (default) or with the proxy")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--render", metavar="JSON",
                    help="only rewrite docs/benchmarks.md and README from a saved results file")
    args = ap.parse_args()
    if args.render:
        with open(args.render) as f:
            results = json.load(f)
        results["scale"] = {int(k): v for k, v in results["scale"].items()}
        return _publish(results, args)
    if args.smoke:
        args.seconds, args.rounds, args.scale, args.changes = 1, 1, "1,200", 20
        args.churn_rounds = 1
    global PLACEMENT
    PLACEMENT = choose_placement(args.backend_on)

    base = tempfile.mkdtemp(prefix="switchyard-bench-")
    os.chmod(base, 0o755)  # nginx workers (nobody, when started as root) keep the snapshot under it
    started = []
    results = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "machine": {"cores": os.cpu_count(), "kernel": platform.release(),
                           "nginx": subprocess.run([NGINX, "-v"], capture_output=True,
                                                   text=True).stderr.strip(),
                           "wrk": "wrk -t1 -c%d -d%ds" % (args.connections, args.seconds),
                           "workers": args.workers, "placement": placement_text(PLACEMENT)}}
    try:
        bport = free_port()
        backend = Nginx("backend", BACKEND.format(port=bport), 1, base)
        started.append(backend)
        wait_until(lambda: tcp_open(bport), 5, what="backend")
        pin(backend.proc.pid, "backend")
        static_port, floor_port = free_port(), free_port()
        static = Nginx("static", STATIC.format(port=static_port, backend=bport), args.workers, base)
        floor = Nginx("floor", BARE_LUA.format(port=floor_port, backend=bport), args.workers, base)
        started += [static, floor]
        redis = Redis(base)
        started.append(redis)
        controller = Controller(redis, base)
        started.append(controller)
        # access logs off everywhere: the static and bare-Lua variants log nothing either
        edges = [Edge(redis, base, f"bench-edge-{i}", workers=args.workers,
                      extra=("--access-log", "off")) for i in (1, 2)]
        started += edges
        for p in (static_port, floor_port):
            wait_until(lambda p=p: tcp_open(p), 5, what="proxy")
        for proxy in (static.proc.pid, floor.proc.pid, *(e.process.pid for e in edges)):
            pin(proxy, "proxy")
        controller.ok("PUT", "/api/v1/upstreams/bench",
                      {"endpoints": [{"address": f"127.0.0.1:{bport}", "weight": 1}]})
        controller.route("bench-main", "bench.test", "/", "bench")
        wait_until(lambda: edges[0].get("/", "bench.test").status_code == 200, 5, what="route")

        # 1. throughput and latency, alternating a / b / c
        variants = {"static nginx": f"http://127.0.0.1:{static_port}/",
                    "bare Lua floor": f"http://127.0.0.1:{floor_port}/",
                    "switchyard edge": f"{edges[0].url}/"}
        masters = {"static nginx": static.proc.pid, "bare Lua floor": floor.proc.pid,
                   "switchyard edge": edges[0].process.pid}
        runs = {k: [] for k in variants}
        names = list(variants)
        for i in range(args.rounds):
            for name in names[i % 3:] + names[:i % 3]:  # rotated: no variant always goes first
                runs[name].append(wrk(variants[name], "bench.test", args.seconds, args.connections,
                                      proxy=masters[name]))
        results["throughput"] = {k: _summary(v) for k, v in runs.items()}
        results["throughput_ratios"] = {
            key: _ratios(runs[num], runs[den]) for key, num, den in (
                ("edge/static", "switchyard edge", "static nginx"),
                ("edge/bare-Lua", "switchyard edge", "bare Lua floor"),
                ("bare-Lua/static", "bare Lua floor", "static nginx"))}

        redis_base_mem = redis_used_memory(redis)
        base_workers_rss = sum(rss_kb(p) for p in children(edges[0].process.pid))

        # 2. scale: edges with N routes loaded (the measured route is always present), side
        # by side: each smaller size has its own Redis, controller and edge; the largest is
        # the main stack (the later sections use it). Runs alternate like the variants above.
        sizes = sorted(int(x) for x in args.scale.split(","))
        scale_edges, extra, stacks = {}, [], [(redis, controller)]

        def own(s):   # stopped after this section, or with everything if it fails
            extra.append(s)
            started.append(s)
            return s

        for n in sizes[:-1]:
            d = os.path.join(base, f"scale-{n}")
            os.makedirs(d)
            r2 = own(Redis(d))
            c2 = own(Controller(r2, d))
            e2 = own(Edge(r2, d, f"bench-scale-{n}", workers=args.workers,
                          extra=("--access-log", "off")))
            pin(e2.process.pid, "proxy")
            c2.ok("PUT", "/api/v1/upstreams/bench",
                  {"endpoints": [{"address": f"127.0.0.1:{bport}", "weight": 1}]})
            c2.route("bench-main", "bench.test", "/", "bench")
            if n > 1:
                load_routes(c2, n - 1, "bench", start=0)
            scale_edges[n] = e2
            stacks.append((r2, c2))
        loaded = sizes[-1]
        if loaded > 1:
            load_routes(controller, loaded - 1, "bench", start=0)
        scale_edges[loaded] = edges[0]
        for r2, c2 in stacks:   # every size's edges have applied all of its load
            version = r2.version()
            wait_until(lambda: all(e["applied_version"] >= version
                                   for e in c2.status()["edges"]), 60, what="load applied")
        for n, e in scale_edges.items():
            wait_until(lambda e=e: e.get("/", "bench.test").status_code == 200, 60,
                       what=f"edge with {n} routes serving")
        scale_runs = {n: [] for n in sizes}
        for i in range(args.rounds):
            for n in sizes[i % len(sizes):] + sizes[:i % len(sizes)]:
                e = scale_edges[n]
                scale_runs[n].append(wrk(f"{e.url}/", "bench.test", args.seconds, args.connections,
                                         proxy=e.process.pid))
        scale = {n: _summary(v) for n, v in scale_runs.items()}
        for n in sizes:
            scale[n]["vs_one"] = _ratios(scale_runs[n], scale_runs[sizes[0]])
        results["scale"] = scale
        for s2 in reversed(extra):   # idle from here on, but on the proxy's CPU
            s2.stop()
            started.remove(s2)

        # 3. propagation: a change through the API until every edge serves it
        samples = []
        api = Keepalive(controller.url, controller.session.headers)
        pollers = [Keepalive(e.url) for e in edges]
        for i in range(args.changes):
            path = f"/prop{i}-{random.randrange(1 << 30)}"
            t0 = time.monotonic()
            api.route(f"prop-{i % 50}", "prop.bench.test", path, "bench", match="exact")
            for p in pollers:
                wait_until(lambda p=p: p.call("GET", path, host="prop.bench.test")[0] == 200, 5,
                           interval=0.0005, what="propagation")
            samples.append((time.monotonic() - t0) * 1000)
        for c in [api] + pollers:
            c.close()
        results["propagation_ms"] = {"n": len(samples), "p50": percentile(samples, 50),
                                     "p95": percentile(samples, 95),
                                     "p99": percentile(samples, 99), "max": max(samples)}

        # 4. churn vs reload: `rate` changes a second under load. One edge, like the foil's
        # one nginx: the second edge (there for propagation) is stopped, or its syncer would
        # apply every change on the CPU of the edge being measured.
        edges[1].stop()
        started.remove(edges[1])
        controller.ok("PUT", "/api/v1/upstreams/bench-b",
                      {"endpoints": [{"address": f"127.0.0.1:{bport}", "weight": 1}]})

        api = Keepalive(controller.url, controller.session.headers)

        def edge_change(i):
            if i % 10 == 0:  # the measured route itself moves between two upstreams
                api.route("bench-main", "bench.test", "/", ("bench", "bench-b")[i // 10 % 2])
            else:
                api.route(f"churn-{i % 200}", "churn.bench.test", f"/c{i}", "bench")

        # The baseline carries the same API load without changing anything: on 2 cores the
        # churn client and the controller take CPU from wrk and nginx, which is not a cost
        # of applying changes at the edge.
        results["churn"] = {"switchyard edge": churn_rounds(
            variants["switchyard edge"], edges[0].process.pid, args,
            lambda i: api.ok("GET", "/api/v1/routes/bench-main"), edge_change)}
        api.close()

        fport = free_port()
        fdir = os.path.join(base, "reload-foil")

        def foil_conf(i):
            locs = "".join(f"location = /c{j} {{ proxy_pass http://backend; }}\n             "
                           for j in range(max(0, i - 200), i))
            return RELOAD_FOIL.format(port=fport, backend=bport, locations=locs)

        foil = Nginx("reload-foil", foil_conf(0), args.workers, base)
        started.append(foil)
        wait_until(lambda: tcp_open(fport), 5, what="reload foil")
        pin(foil.proc.pid, "proxy")  # workers started by a reload inherit the master's CPU
        conf_path = os.path.join(fdir, "nginx.conf")
        template = open(conf_path).read()
        first_body = foil_conf(0)

        def reload_change(i):
            with open(conf_path + ".tmp", "w") as f:
                f.write(template.replace(first_body, foil_conf(i + 1)))
            os.replace(conf_path + ".tmp", conf_path)
            os.kill(foil.proc.pid, 1)  # SIGHUP: nginx -s reload

        def rewrite_only(i):  # the same file work, without the reload
            with open(conf_path + ".tmp", "w") as f:
                f.write(template.replace(first_body, foil_conf(i + 1)))

        results["churn"]["static nginx + reload"] = churn_rounds(
            f"http://127.0.0.1:{fport}/", foil.proc.pid, args, rewrite_only, reload_change)
        foil.stop()
        started.remove(foil)

        # 5. cold start and memory with everything loaded
        total_routes = len(controller.ok("GET", "/api/v1/routes")["items"])
        last = routes_batch(1, "bench", loaded - 2)[0] if loaded > 1 else None
        probe_host, probe_path = ("bench.test", "/") if last is None else (
            last["host"].replace("*", "x"), last["path"] + "/x")
        t0 = time.monotonic()
        cold = Edge(redis, base, "bench-cold", workers=args.workers, extra=("--access-log", "off"))
        started.append(cold)
        pin(cold.process.pid, "proxy")
        wait_until(lambda: cold.get(probe_path, probe_host).status_code == 200, 60,
                   interval=0.01, what="cold edge serving")
        ready_s = time.monotonic() - t0
        st = edge_status(cold)
        shm_used = st["config_dict"]["capacity"] - st["config_dict"]["free_space"]
        workers_rss = sum(rss_kb(p) for p in children(cold.process.pid))
        results["memory"] = {
            "routes": total_routes, "ready_s": ready_s,
            "redis_bytes_per_route": (redis_used_memory(redis) - redis_base_mem) / max(1, loaded),
            "shm_bytes_per_route": shm_used / max(1, total_routes),
            "worker_rss_kb": workers_rss, "workers": args.workers,
            "worker_rss_bytes_per_route": (workers_rss - base_workers_rss) * 1024 / max(1, loaded),
        }
    finally:
        stop_all(started, base)

    # 6. prober: CPU and RSS with N endpoints checked every second (bench/prober.py)
    n_ep, window, kill = (50, 2, 5) if args.smoke else (args.prober_endpoints, 20, 200)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "prober.py"),
                        "--endpoints", str(n_ep), "--interval-ms", "1000", "--window", str(window),
                        "--kill", str(kill), "--json", out.name,
                        "--bin", BIN], check=True,
                       stdout=subprocess.DEVNULL if args.smoke else None)
        results["prober"] = json.load(open(out.name))

    return _publish(results, args)


def _publish(results, args):
    report = _report(results, smoke=args.smoke)
    print(report)
    if args.smoke:
        assert results["throughput"]["switchyard edge"]["rps"] > 0
        assert results["throughput_ratios"]["edge/static"]["min"] > 0
        assert results["propagation_ms"]["n"] == args.changes
        assert all(s["rps"] > 0 and s["vs_one"]["median"] > 0
                   for s in results["scale"].values()) and len(results["scale"]) >= 2
        edge_churn = results["churn"]["switchyard edge"]
        assert edge_churn["changes"] > 0 and edge_churn["ratio"]["median"] > 0
        print("bench smoke: 1 passed, 0 failed")
        return 0
    kept = ""
    if os.path.exists(args.out):  # sections bench/policies.py, bench/instructions.py and
        old = open(args.out).read()  # bench/kube.py wrote stay (make bench reruns them after this)
        for name in ("policies", "instructions", "findings", "kube", "api-latency", "peers", "tls",
                     "coldstart", "many-edges"):
            start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
            if start in old and end in old:
                kept += "\n" + start + old.split(start, 1)[1].split(end, 1)[0] + end + "\n"
    with open(args.out, "w") as f:
        f.write(report.rstrip("\n") + "\n" + kept)
    if not args.render:
        with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
            json.dump(results, f, indent=2)
    if os.path.abspath(args.out) == os.path.join(ROOT, "docs", "benchmarks.md"):
        _update_readme(report)  # only the published results go into the README
    return 0


README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def _update_readme(report):
    """Puts the headline tables of the report between the README's bench markers."""
    path = os.path.join(ROOT, "README.md")
    text = open(path).read()
    if README_START not in text or README_END not in text:
        return
    keep = []
    for section in report.split("\n## ")[1:]:
        title = section.split("\n", 1)[0]
        if title.startswith(("Throughput", "Scale", "Propagation", "Churn", "Cold start", "Prober")):
            keep.append("#### " + section.strip())
    body = (README_START + "\n" + report.split("\n\n")[1] + "\n\n" + "\n\n".join(keep) +
            "\n\nDetails, and how to rerun each figure: [docs/benchmarks.md](docs/benchmarks.md).\n"
            + README_END)
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    with open(path, "w") as f:
        f.write(text[:start] + body + text[end:])


def _summary(runs):
    out = {"rps": statistics.median(r["rps"] for r in runs),
           "p50_ms": statistics.median(r["p50_ms"] for r in runs),
           "p99_ms": statistics.median(r["p99_ms"] for r in runs),
           "errors": sum(r["errors"] for r in runs), "runs": [r["rps"] for r in runs]}
    cost = [r["proxy_us_per_req"] for r in runs if r.get("proxy_us_per_req")]
    if cost:
        out["proxy_us_per_req"] = statistics.median(cost)
    busy = [r["cpu_busy"] for r in runs if r.get("cpu_busy")]
    if busy:
        out["cpu_busy"] = {role: statistics.median(b[role] for b in busy if b[role] is not None)
                           for role in busy[0]}
    return out


def _ratios(num, den):
    """Per-round ratios of two variants' req/s (round i of one against round i of the
    other: measured minutes apart, so drift mostly cancels), with their spread."""
    per_round = [a["rps"] / b["rps"] for a, b in zip(num, den)]
    return {"median": statistics.median(per_round), "min": min(per_round), "max": max(per_round),
            "rounds": per_round}


def _report(r, smoke):
    t = r["throughput"]
    a, b, c = (t["static nginx"]["rps"], t["bare Lua floor"]["rps"], t["switchyard edge"]["rps"])
    lines = [
        "# Benchmarks" + (" (smoke run — not a measurement)" if smoke else ""), "",
        f"Produced by `make bench` (bench/bench.py) on {r['date']}. Machine: "
        f"{r['machine']['cores']} cores, Linux {r['machine']['kernel']}, {r['machine']['nginx']}, "
        f"{r['machine']['workers']} nginx worker(s) per proxy, load `{r['machine']['wrk']}` on "
        "loopback against an nginx `return 200` backend"
        + (f"; {r['machine']['placement']}" if r["machine"].get("placement") else "")
        + ". Medians of alternating runs.", "",
        "## Throughput and latency vs static nginx", "",
    ]
    busy = all(s.get("cpu_busy") for s in t.values())
    cost = all(s.get("proxy_us_per_req") for s in t.values())
    lines += ["| variant | req/s | p50 ms | p99 ms | errors | vs static | runs (req/s) |"
              + (" proxy CPU µs/req |" if cost else "") + (" CPU busy: proxy / load |" if busy else ""),
              "| --- | ---: | ---: | ---: | ---: | ---: | --- |" + (" ---: |" if cost else "")
              + (" ---: |" if busy else "")]
    for name, s in t.items():
        lines.append(f"| {name} | {s['rps']:.0f} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} | "
                     f"{s['errors']} | {s['rps'] / a:.3f} | "
                     f"{', '.join('%.0f' % x for x in s['runs'])} |"
                     + (f" {s['proxy_us_per_req']:.1f} |" if cost else "")
                     + (f" {s['cpu_busy']['proxy']:.2f} / {s['cpu_busy']['load']:.2f} |" if busy else ""))
    q = r.get("throughput_ratios")
    if q:
        def spread(key):
            x = q[key]
            return f"{x['median']:.3f}** (rounds {x['min']:.3f}–{x['max']:.3f})"
        lines += ["", f"Ratios (median of the per-round ratios, and their range): edge/static = "
                      f"**{spread('edge/static')} (target ≥ 0.88), edge/bare-Lua = "
                      f"**{spread('edge/bare-Lua')} (target ≥ 0.97), bare-Lua/static = "
                      f"{q['bare-Lua/static']['median']:.3f} (rounds {q['bare-Lua/static']['min']:.3f}–"
                      f"{q['bare-Lua/static']['max']:.3f}).", ""]
    else:
        lines += ["", f"Ratios: edge/static = **{c / a:.3f}** (target ≥ 0.88), "
                      f"edge/bare-Lua = **{c / b:.3f}** (target ≥ 0.97), "
                      f"bare-Lua/static = {b / a:.3f}.", ""]
    if cost:
        lines += ["\"Proxy CPU µs/req\" is the CPU time of the proxy's nginx processes divided by "
                  "the requests wrk completed (median of the runs): the cost of one proxied "
                  "request, which other load on the machine barely moves; its inverse ratio "
                  f"static/edge = {t['static nginx']['proxy_us_per_req'] / t['switchyard edge']['proxy_us_per_req']:.3f}.", ""]
    if busy:
        lines += ["\"CPU busy\" is the median share of each pinned CPU in use during the runs "
                  "(every process on it, ours or not): the proxy CPU near 1.00 means the proxy "
                  "was the bottleneck; the load CPU near 1.00 means wrk and the backend were, "
                  "and the req/s ratios understate the differences.", ""]
    lines += ["## Scale: routes loaded", "",
              "One edge per size, each with its own Redis (the same build, the same request), "
              "runs alternated; the ratio is the median of the per-round ratios to the "
              "smallest size, with their range.", "",
              "| routes | req/s | p50 ms | p99 ms | proxy CPU µs/req | vs 1 route (rounds) |",
              "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    one = r["scale"][min(r["scale"])]["rps"]
    for n, s in sorted(r["scale"].items()):
        v = s.get("vs_one") or {"median": s["rps"] / one, "min": s["rps"] / one,
                                "max": s["rps"] / one}
        cost = f"{s['proxy_us_per_req']:.1f}" if s.get("proxy_us_per_req") else "–"
        lines.append(f"| {n} | {s['rps']:.0f} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} | {cost} | "
                     f"{v['median']:.3f} ({v['min']:.3f}–{v['max']:.3f}) |")
    p = r["propagation_ms"]
    lines += ["", "## Propagation: API change until both edges serve it", "",
              f"{p['n']} changes, each timed from the API call until both edges answer the new "
              "route (includes the API round trip and the HTTP polling).", "",
              "| p50 ms | p95 ms | p99 ms | max ms |", "| ---: | ---: | ---: | ---: |",
              f"| {p['p50']:.2f} | {p['p95']:.2f} | {p['p99']:.2f} | {p['max']:.2f} |", "",
              "## Churn: changes per second under load, vs rewriting nginx.conf + reload", "",
              "| variant | changes | change errors | req/s quiet | req/s churning | ratio (rounds) | "
              "proxy CPU µs/req quiet / churning | proxy CPU µs per change, no load | "
              "request errors | max nginx children | max RSS MB |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, c in r["churn"].items():
        ratio = c.get("ratio") or {"median": c["busy"]["rps"] / c["quiet"]["rps"], "rounds": []}
        cost = (f"{c['quiet']['proxy_us_per_req']:.1f} / {c['busy']['proxy_us_per_req']:.1f}"
                if c["quiet"].get("proxy_us_per_req") and c["busy"].get("proxy_us_per_req")
                else "—")
        lines.append(f"| {name} | {c['changes']} | {c['change_errors']} | {c['quiet']['rps']:.0f} | "
                     f"{c['busy']['rps']:.0f} | **{ratio['median']:.3f}** "
                     f"({', '.join('%.3f' % x for x in ratio['rounds'])}) | {cost} | "
                     + (f"{c['idle_cpu_us_per_change']:.0f} | " if "idle_cpu_us_per_change" in c
                        else "— | ")
                     + f"{c['busy']['errors']} | {c['max_workers']} | {c['max_rss_mb']:.1f} |")
    m = r["memory"]
    lines += ["", "Targets for the edge: 0 request errors and ≥ 0.9 of quiet throughput. \"Quiet\" "
              "runs the same request rate against the API (reads for the edge, config rewrites "
              "without reload for the foil) so that the load generator's own CPU on this 2-core "
              "machine is in both columns. Quiet and churning windows alternate (the order "
              "flips every round); the ratio is the median of the per-round ratios. The "
              "proxy's CPU time per request (medians) is its own cost of applying changes; "
              "the req/s ratio also carries what the controller, Redis and the API client take "
              "from both CPUs. \"Per change, no load\": the proxy's CPU time while the "
              "same changes (then the same quiet calls) are made with no requests, the "
              "difference divided by the changes: what applying one change costs it (for the "
              "edge: the syncer's round trips to Redis, the shared-dict commit, the journal "
              "line, the worker's table update; for the foil: a reload).", "",
              "## Cold start and memory", "",
              f"A new edge with {m['routes']} routes in Redis was serving the last-loaded route "
              f"**{m['ready_s']:.2f} s** after it was started (target < 3 s).", "",
              "| measure | value |", "| --- | ---: |",
              f"| Redis memory per route | {m['redis_bytes_per_route']:.0f} bytes (target < 1 KB) |",
              f"| edge shared dict per route | {m['shm_bytes_per_route']:.0f} bytes |",
              f"| worker RSS per route | {m['worker_rss_bytes_per_route']:.0f} bytes "
              f"(RSS of {m['workers']} worker(s) with everything loaded: "
              f"{m['worker_rss_kb'] / 1024:.1f} MB) |", "",
              "## Prober", "",
              f"`bench/prober.py`: {r['prober']['endpoints']} loopback endpoints (one nginx, many "
              f"ports) checked every {r['prober']['interval_ms']} ms (timeout "
              f"{r['prober']['timeout_ms']} ms, rise {r['prober']['rise']}, fall "
              f"{r['prober']['fall']}).", "",
              "| prober CPU (cores) | RSS MiB | nginx CPU (cores) | warm-up s | "
              "detection min / median / p99 / max s | bound s |",
              "| ---: | ---: | ---: | ---: | --- | ---: |",
              f"| {r['prober']['prober_cpu_cores']:.3f} | {r['prober']['prober_rss_mib']:.1f} | "
              f"{r['prober']['nginx_cpu_cores']:.3f} | {r['prober']['warmup_s']:.1f} | "
              f"{r['prober']['detect_s']['min']:.2f} / {r['prober']['detect_s']['median']:.2f} / "
              f"{r['prober']['detect_s']['p99']:.2f} / {r['prober']['detect_s']['max']:.2f} | "
              f"{r['prober']['bound_s']:.2f} |", "",
              "Target: under 0.5 core for 10,000 endpoints at 1 s.", "",
              "## How to rerun, and what would mislead", "",
              "`make bench` (about 21 minutes; `bench/run.sh --smoke` is the unmeasured pass "
              "that `make test` runs). Each section is one part of `bench/bench.py`; "
              "`python3 bench/bench.py --render docs/benchmarks.json` rewrites this page and "
              "the README tables from the saved results.", "",
              "What would mislead:", "",
              "- The machine is shared and has 2 cores; wrk, the proxy, the backend (and for "
              "churn the API client and controller) compete for them. "
              + ("Pinning (above) keeps wrk off the proxy's CPU, but absolute req/s still drift "
                 "between runs; the ratios come from alternating runs in one session, and their "
                 "range across rounds is the noise. " if r["machine"].get("placement") else
                 "Absolute req/s drift between runs by ±15%; the ratios come from alternating "
                 "runs in one session. ")
              + "A run next to another heavy process (a Swift build) is not comparable.",
              "- Edge vs bare-Lua floor: both pay for Lua; a ratio above 1 means the two are "
              "within noise of each other, not that routing is free. The measured route is a "
              "plain one (served from the edge's location `/`); routes with response headers, "
              "cookies, HSTS or HTTPS upstreams take a second access pass in a named location "
              "and cost more (the instruction counts below show how much).",
              "- Scale: the measured request always hits the same host; the other routes are "
              "there to make the tables big (varied hosts, wildcards, a few regexes).",
              "- Propagation is an upper bound: it includes the API round trip and HTTP polling "
              "of both edges every 0.5 ms (one keep-alive `http.client` connection each: with "
              "`requests`, ~1.6 ms of client CPU per call, the poll itself was the resolution).",
              "- The churn and quiet calls go through one keep-alive `http.client` connection "
              "too (about 0.3 ms of client CPU per call instead of ~1.6 ms with `requests`): "
              "the client is the harness, and on 2 cores its CPU comes out of the windows.",
              "- Churn measures one edge against one reloading nginx, each alone on the proxy "
              "CPU: the second edge is stopped first (pinned with the first, it would apply every "
              "change on the measured edge's CPU, a cost a real second machine pays itself).",
              "- Cold start counts nginx start, the full load from Redis and the first request "
              "of the last route loaded.",
              "- Redis memory per route includes the indexes and the (capped) change stream; "
              "worker RSS per route compares a fresh edge with everything loaded to an edge "
              "with one route, so it is an estimate.",
              "- Prober: the endpoints are one nginx on the same 2 cores, so part of the "
              "loopback TCP cost billed to the prober is nginx's.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
