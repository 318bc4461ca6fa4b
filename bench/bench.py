#!/usr/bin/env python3
"""Switchyard benchmarks, side by side with static nginx in the same run.

  (a) static nginx: proxy_pass to an upstream block with keepalive
  (b) bare Lua floor: one shared-dict get in access_by_lua + balancer_by_lua
  (c) a Switchyard edge, routing from Redis-fed shared dicts

Same backend (an nginx `return 200`), same worker count, runs alternated so drift hits
every variant alike. Scale: the edge again with 1, 10,000 and 100,000 routes loaded.
Propagation: route changes through the API, time until every edge serves each.

Results go to docs/benchmarks.md (and a JSON next to it); `--smoke` runs everything tiny
so `make test` proves the harness works without measuring anything.
"""
import argparse
import datetime
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
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import Controller, Edge, Redis, free_port, wait_until  # noqa: E402

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
                          proxy_set_header Connection ""; proxy_set_header Host $host; }} }}
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
                 proxy_set_header Connection ""; proxy_set_header Host $host; }} }}
"""


class Nginx:
    def __init__(self, name, body, workers, base):
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(self.dir, "nginx.conf")
        mods = "".join(f"load_module {MODULES}/{m};\n" for m in
                       ("ndk_http_module.so", "ngx_http_lua_module.so")) if "lua" in body else ""
        with open(conf, "w") as f:
            f.write(mods + COMMON.format(workers=workers, dir=self.dir, body=body))
        self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-c", conf, "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def tcp_open(port):
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


def wrk(url, host, seconds, connections, threads=1):
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                          "--latency", "-H", f"Host: {host}", url],
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
    return {"rps": rps, "p50_ms": lat.get("50"), "p99_ms": lat.get("99"), "errors": errors}


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


def load_routes(controller, total, upstream):
    done = 0
    while done < total:
        n = min(10000, total - done)
        controller.ok("POST", "/api/v1/apply", {"routes": routes_batch(n, upstream, done)})
        done += n


def percentile(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="tiny run: proves the harness works")
    ap.add_argument("--seconds", type=int, default=10, help="wrk duration per run")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per variant")
    ap.add_argument("--workers", type=int, default=1, help="nginx workers for every proxy")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--scale", default="1,10000,100000", help="route counts to measure")
    ap.add_argument("--changes", type=int, default=1000, help="propagation samples")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args()
    if args.smoke:
        args.seconds, args.rounds, args.scale, args.changes = 1, 1, "1,200", 20

    base = tempfile.mkdtemp(prefix="switchyard-bench-")
    started = []
    results = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "machine": {"cores": os.cpu_count(), "kernel": platform.release(),
                           "nginx": subprocess.run([NGINX, "-v"], capture_output=True,
                                                   text=True).stderr.strip(),
                           "wrk": "wrk -t1 -c%d -d%ds" % (args.connections, args.seconds),
                           "workers": args.workers}}
    try:
        bport = free_port()
        backend = Nginx("backend", BACKEND.format(port=bport), 1, base)
        started.append(backend)
        wait_until(lambda: tcp_open(bport), 5, what="backend")
        static_port, floor_port = free_port(), free_port()
        static = Nginx("static", STATIC.format(port=static_port, backend=bport), args.workers, base)
        floor = Nginx("floor", BARE_LUA.format(port=floor_port, backend=bport), args.workers, base)
        started += [static, floor]
        redis = Redis(base)
        started.append(redis)
        controller = Controller(redis, base)
        started.append(controller)
        edges = [Edge(redis, base, f"bench-edge-{i}", workers=args.workers) for i in (1, 2)]
        started += edges
        for p in (static_port, floor_port):
            wait_until(lambda p=p: tcp_open(p), 5, what="proxy")
        controller.ok("PUT", "/api/v1/upstreams/bench",
                      {"endpoints": [{"address": f"127.0.0.1:{bport}", "weight": 1}]})
        controller.route("bench-main", "bench.test", "/", "bench")
        wait_until(lambda: edges[0].get("/", "bench.test").status_code == 200, 5, what="route")

        # 1. throughput and latency, alternating a / b / c
        variants = {"static nginx": f"http://127.0.0.1:{static_port}/",
                    "bare Lua floor": f"http://127.0.0.1:{floor_port}/",
                    "switchyard edge": f"{edges[0].url}/"}
        runs = {k: [] for k in variants}
        for _ in range(args.rounds):
            for name, url in variants.items():
                runs[name].append(wrk(url, "bench.test", args.seconds, args.connections))
        results["throughput"] = {k: _summary(v) for k, v in runs.items()}

        # 2. scale: the edge with N routes loaded (the measured route is always present)
        scale = {}
        loaded = 1
        for n in [int(x) for x in args.scale.split(",")]:
            if n > loaded:
                load_routes(controller, n - loaded, "bench")
                loaded = n
            version = redis.version()
            wait_until(lambda: all(e["applied_version"] >= version
                                   for e in controller.status()["edges"]), 60, what="load applied")
            edges[0].get("/", "bench.test")  # let workers take the new version
            scale[n] = _summary([wrk(variants["switchyard edge"], "bench.test", args.seconds,
                                     args.connections) for _ in range(args.rounds)])
        results["scale"] = scale

        # 3. propagation: a change through the API until every edge serves it
        samples = []
        for i in range(args.changes):
            path = f"/prop{i}-{random.randrange(1 << 30)}"
            t0 = time.monotonic()
            controller.route(f"prop-{i % 50}", "prop.bench.test", path, "bench", match="exact")
            for e in edges:
                wait_until(lambda e=e: e.get(path, "prop.bench.test").status_code == 200, 5,
                           interval=0.0005, what="propagation")
            samples.append((time.monotonic() - t0) * 1000)
        results["propagation_ms"] = {"n": len(samples), "p50": percentile(samples, 50),
                                     "p95": percentile(samples, 95),
                                     "p99": percentile(samples, 99), "max": max(samples)}
    finally:
        for s in reversed(started):
            try:
                s.stop()
            except Exception as e:  # noqa: BLE001
                print(f"stopping {s}: {e}", file=sys.stderr)
        shutil.rmtree(base, ignore_errors=True)

    report = _report(results, smoke=args.smoke)
    print(report)
    if args.smoke:
        assert results["throughput"]["switchyard edge"]["rps"] > 0
        assert results["propagation_ms"]["n"] == args.changes
        print("bench smoke: 1 passed, 0 failed")
        return 0
    with open(args.out, "w") as f:
        f.write(report)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(results, f, indent=2)
    return 0


def _summary(runs):
    return {"rps": statistics.median(r["rps"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "errors": sum(r["errors"] for r in runs), "runs": [r["rps"] for r in runs]}


def _report(r, smoke):
    t = r["throughput"]
    a, b, c = (t["static nginx"]["rps"], t["bare Lua floor"]["rps"], t["switchyard edge"]["rps"])
    lines = [
        "# Benchmarks" + (" (smoke run — not a measurement)" if smoke else ""), "",
        f"Produced by `make bench` (bench/bench.py) on {r['date']}. Machine: "
        f"{r['machine']['cores']} cores, Linux {r['machine']['kernel']}, {r['machine']['nginx']}, "
        f"{r['machine']['workers']} nginx worker(s) per proxy, load `{r['machine']['wrk']}` on "
        "loopback against an nginx `return 200` backend. Medians of alternating runs.", "",
        "## Throughput and latency vs static nginx", "",
        "| variant | req/s | p50 ms | p99 ms | errors | vs static | runs (req/s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, s in t.items():
        lines.append(f"| {name} | {s['rps']:.0f} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} | "
                     f"{s['errors']} | {s['rps'] / a:.3f} | "
                     f"{', '.join('%.0f' % x for x in s['runs'])} |")
    lines += ["", f"Ratios: edge/static = **{c / a:.3f}** (target ≥ 0.88), "
                  f"edge/bare-Lua = **{c / b:.3f}** (target ≥ 0.97), "
                  f"bare-Lua/static = {b / a:.3f}.", "",
              "## Scale: routes loaded", "",
              "| routes | req/s | p50 ms | p99 ms | vs 1 route |", "| ---: | ---: | ---: | ---: | ---: |"]
    one = r["scale"][min(r["scale"])]["rps"]
    for n, s in sorted(r["scale"].items()):
        lines.append(f"| {n} | {s['rps']:.0f} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} | "
                     f"{s['rps'] / one:.3f} |")
    p = r["propagation_ms"]
    lines += ["", "## Propagation: API change until both edges serve it", "",
              f"{p['n']} changes, each timed from the API call until both edges answer the new "
              "route (includes the API round trip and the HTTP polling).", "",
              "| p50 ms | p95 ms | p99 ms | max ms |", "| ---: | ---: | ---: | ---: |",
              f"| {p['p50']:.2f} | {p['p95']:.2f} | {p['p99']:.2f} | {p['max']:.2f} |", "",
              "## How to rerun, and what would mislead", "",
              "`make bench` (about 5 minutes). The machine is shared and has 2 cores: wrk, the "
              "proxy and the backend compete for them, so absolute numbers drift between runs; "
              "compare the ratios, which come from alternating runs in one session. A run "
              "with another heavy process on the machine (a Swift build) is not comparable.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
