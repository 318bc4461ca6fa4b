#!/usr/bin/env python3
"""Cold start of a large configuration and the prober at scale (issue 21, item 7).

Cold start: 100,000 routes (bench.py's mix: exact hosts with prefixes, wildcards, a few
regexes) are loaded through the API into Redis (timed: "Redis load"); then, per round, a new
edge (one worker, an empty prefix: no snapshot to start from) is started and timed until it
serves the route loaded last. The edge's log line of its first full reload splits the time:
the fetch from Redis (SMEMBERS, pipelined MGET/HMGET and their decoding), the digest of what
Redis has, and the shared-dict writes (lua/switchyard/sync/full_reload.lua); the rest is
nginx starting, the syncer's first round and the worker building its tables.
Goal: < 2 s.

Prober: bench/prober.py with 10,000 endpoints checked every second; its CPU in cores over a
steady window. Goal: < 0.2 core.

  python3 bench/coldstart.py            # writes docs/benchmarks-coldstart.json and its section
  python3 bench/coldstart.py --smoke    # tiny, unmeasured
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import BIN, Nginx, free_port, load_routes, routes_batch, tcp_open, wait_until  # noqa: E402
from harness import Controller, Edge, Redis  # noqa: E402

ROOT = bench.ROOT
BUILD = re.compile(r"worker rebuilt its tables: (\d+) routes, \d+ upstreams in (\d+) ms")
RELOAD = re.compile(r"full reload done: version \d+, (\d+) objects, \d+ changed in (\d+) ms "
                    r"\(fetch (\d+) ms, digest (\d+) ms, dict writes (\d+) ms\)")


def served(url, host, path):
    h, p = url.split("//", 1)[1].rsplit(":", 1)
    c = http.client.HTTPConnection(h, int(p), timeout=2)
    try:
        c.request("GET", path, headers={"Host": host})
        r = c.getresponse()
        r.read()
        return r.status == 200
    finally:
        c.close()


def edge_log(edge):
    """The edge's own output and its nginx error log (wherever the reload line went)."""
    text = edge.process.output()
    for name in ("logs/error.log", "error.log"):
        path = os.path.join(edge.prefix, name)
        if os.path.exists(path):
            text += open(path, errors="replace").read()
    return text


def cold_start(redis, base, i, probe_host, probe_path):
    d = os.path.join(base, f"cold-{i}")
    os.makedirs(d)
    t0 = time.monotonic()
    edge = Edge(redis, d, f"cold-{i}", workers=1, extra=("--access-log", "off"))
    listening = time.monotonic() - t0
    try:
        bench.pin(edge.process.pid, "proxy")
        wait_until(lambda: served(edge.url, probe_host, probe_path), 120, interval=0.005,
                   what="cold edge serving the last route")
        ready = time.monotonic() - t0
        m = wait_until(lambda: RELOAD.search(edge_log(edge)), 10, what="the full reload's log line")
        objects, total, fetch, digest, writes = (int(x) for x in m.groups())
        # the worker's first build with everything (the largest of its rebuild lines)
        builds = [(int(n), int(ms)) for n, ms in BUILD.findall(edge_log(edge))]
        build = max(builds)[1] if builds else 0
        return {"ready_s": ready, "listening_s": listening, "objects": objects,
                "reload_ms": total, "fetch_ms": fetch, "digest_ms": digest, "dict_writes_ms": writes,
                "worker_build_ms": build,
                "other_ms": ready * 1000 - total - build - listening * 1000}
    finally:
        edge.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--routes", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--prober-endpoints", type=int, default=10000)
    ap.add_argument("--prober-window", type=int, default=20)
    ap.add_argument("--skip-prober", action="store_true")
    ap.add_argument("--json", default=os.path.join(ROOT, "docs", "benchmarks-coldstart.json"))
    ap.add_argument("--md", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--render", action="store_true", help="only rewrite the Markdown from --json")
    args = ap.parse_args()
    if args.render:
        with open(args.json) as f:
            return publish(json.load(f), args)
    if args.smoke:
        args.routes, args.rounds, args.prober_endpoints, args.prober_window = 500, 1, 50, 2
    bench.PLACEMENT = bench.choose_placement("load")
    base = tempfile.mkdtemp(prefix="switchyard-coldstart-")
    os.chmod(base, 0o755)
    started = []
    results = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "command": "python3 bench/coldstart.py" + (" --smoke" if args.smoke else ""),
               "machine": {"cores": os.cpu_count(), "kernel": platform.release(),
                           "loadavg_at_start": open("/proc/loadavg").read().split()[:3]},
               "routes": args.routes}
    try:
        bport = free_port()
        backend = Nginx("backend", bench.BACKEND.format(port=bport), 1, base)
        started.append(backend)
        wait_until(lambda: tcp_open(bport), 5, what="backend")
        redis = Redis(base)
        started.append(redis)
        controller = Controller(redis, base)
        started.append(controller)
        controller.ok("PUT", "/api/v1/upstreams/bench",
                      {"endpoints": [{"address": f"127.0.0.1:{bport}", "weight": 1}]})
        t = time.monotonic()
        load_routes(controller, args.routes, "bench", start=0)
        results["redis_load_s"] = time.monotonic() - t
        last = routes_batch(1, "bench", start=args.routes - 1)[0]
        probe_host = last["host"].replace("*", "x")
        probe_path = last["path"] + ("/x" if last["match"] == "prefix" else "")
        rounds = [cold_start(redis, base, i, probe_host, probe_path) for i in range(args.rounds)]
        results["rounds"] = rounds
        results["cold_start"] = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
        results["cold_start"]["ready_s_range"] = [min(r["ready_s"] for r in rounds),
                                                  max(r["ready_s"] for r in rounds)]
    finally:
        for s in reversed(started):
            try:
                s.stop()
            except Exception as exc:  # noqa: BLE001
                print(f"stopping {s}: {exc}", file=sys.stderr)
        shutil.rmtree(base, ignore_errors=True)
    if not args.skip_prober:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run([sys.executable, os.path.join(ROOT, "bench", "prober.py"),
                            "--endpoints", str(args.prober_endpoints), "--interval-ms", "1000",
                            "--window", str(args.prober_window),
                            "--kill", str(5 if args.smoke else 200), "--json", out.name,
                            "--bin", BIN], check=True,
                           stdout=subprocess.DEVNULL if args.smoke else None)
            results["prober"] = json.load(open(out.name))
    results["machine"]["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    if args.smoke:
        print(render(results, smoke=True))
        readme(results)
        assert results["cold_start"]["objects"] >= args.routes
        print("coldstart smoke: 1 passed, 0 failed")
        return 0
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
    return publish(results, args)


def render(r, smoke=False):
    m, c = r["machine"], r["cold_start"]
    lines = ["<!-- coldstart:start -->", "## Cold start of 100,000 routes, and the prober at "
             "10,000 endpoints" + (" (smoke run — not a measurement)" if smoke else ""), "",
             f"`bench/coldstart.py` ({r['date']}; `{r['command']}`), {m['cores']} cores, Linux "
             f"{m['kernel']}; the machine was shared with other jobs (load average "
             f"{' / '.join(m['loadavg_at_start'])} at the start, "
             f"{' / '.join(m['loadavg_at_end'])} at the end), so these times are upper bounds.",
             "",
             f"{r['routes']:,} routes loaded through the API (`POST /apply?atomic=false`, "
             f"10,000 per call) in **{r['redis_load_s']:.2f} s**. Then, {len(r['rounds'])} times, "
             "a new edge (one worker, no snapshot) started and timed until it served the route "
             "loaded last (goal < 2 s); the phases come from the edge's log line of its first "
             "full reload:", "",
             "| measure (median of the rounds) | value |", "| --- | ---: |",
             f"| **ready: start → last route served** | **{c['ready_s']:.2f} s** "
             f"(rounds {c['ready_s_range'][0]:.2f}–{c['ready_s_range'][1]:.2f}) |",
             f"| of which: nginx listening | {c['listening_s'] * 1000:.0f} ms |",
             f"| full reload, in all ({c['objects']:,} objects) | {c['reload_ms']:.0f} ms |",
             f"| — fetch: SMEMBERS, pipelined MGET + HMGET, decoding the replies | "
             f"{c['fetch_ms']:.0f} ms |",
             f"| — digest of what Redis has (out-of-band check) | {c['digest_ms']:.0f} ms |",
             f"| — shared-dict writes | {c['dict_writes_ms']:.0f} ms |",
             f"| the worker's first table build (router, balancers; its own log line) | "
             f"{c.get('worker_build_ms', 0):.0f} ms |",
             f"| the rest: the syncer starting and its first round's checks, the gaps between "
             f"phases, the first request | {c['other_ms']:.0f} ms |", ""]
    p = r.get("prober")
    if p:
        lines += [f"Prober (`bench/prober.py`): {p['endpoints']:,} endpoints checked every "
                  f"{p['interval_ms']} ms: **{p['prober_cpu_cores']:.3f} core** (goal < 0.2), "
                  f"RSS {p['prober_rss_mib']:.1f} MiB, warm-up {p['warmup_s']:.1f} s, detection "
                  f"median {p['detect_s']['median']:.2f} s (bound {p['bound_s']:.2f} s).", ""]
    lines += ["What would make these figures unfair:", "",
              "- The edge, Redis and the client share 2 cores with other jobs; a cold start is "
              "mostly one worker's CPU, so a loaded machine lengthens it directly.",
              "- The edge starts with an empty prefix; a restart with its snapshot on disk "
              "serves before Redis answers, and is not what is measured.",
              "- The prober's endpoints are one nginx on the same machine: part of the loopback "
              "TCP cost billed to the prober is shared with it.",
              "<!-- coldstart:end -->"]
    return "\n".join(lines)


def readme(r):
    """One line for the README (between its readme-coldstart markers)."""
    c, p = r["cold_start"], r.get("prober")
    return "\n".join([
        "<!-- readme-coldstart:start -->",
        f"Cold start ([bench/coldstart.py](bench/coldstart.py), {r['date']}): a new edge serving "
        f"the last of {r['routes']:,} routes **{c['ready_s']:.2f} s** after it started (goal "
        f"< 2 s; full reload {c['reload_ms']:.0f} ms: fetch {c['fetch_ms']:.0f}, digest "
        f"{c['digest_ms']:.0f}, dict writes {c['dict_writes_ms']:.0f}; the worker's table build "
        f"{c.get('worker_build_ms', 0):.0f} ms; machine loaded)"
        + (f"; the prober at {p['endpoints']:,} endpoints: **{p['prober_cpu_cores']:.3f} core** "
           "(goal < 0.2)" if p else "")
        + "; [details](docs/benchmarks.md#cold-start-of-100000-routes-and-the-prober-at-10000-endpoints).",
        "<!-- readme-coldstart:end -->"])


def publish(results, args):
    text = render(results)
    print(text)
    bench.publish_named("coldstart", args.md, text, readme(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
