#!/usr/bin/env python3
"""What traffic policies cost on the request path, measured in one run with runs alternated
(wrk on loopback, one nginx `return 200` backend listening on several ports):

  balancing        the same 4 endpoints behind one upstream per algorithm: round_robin
                   (the reference), least_conn, ip_hash, hash on a header, hash on the
                   URI, sticky for new clients (round robin + Set-Cookie on every answer)
                   and sticky with the cookie sent (a lookup, no Set-Cookie)
  route options    a bare route vs one with every option on: rewrite, request and
                   response headers (set and remove), timeouts, max_body_bytes, a
                   rate_limit no client reaches, allow 127.0.0.0/8, a canary header that
                   is not sent, and a split between two upstreams

Documents are written with FCALL sy_apply (the controller only loads the function
library), so any `switchyard` binary works; the edges run this tree's Lua and template.

    python3 bench/policies.py [--seconds 10] [--rounds 3] [--workers 1] [--out r.json]
    python3 bench/policies.py --smoke      # everything tiny (< 30 s): the harness works

Prints a Markdown table (medians over rounds; cost = request CPU of the edge's workers
per request, relative to the reference) and writes the raw runs as JSON with --out.
Needs SWITCHYARD_BIN (default .build/release/switchyard), wrk, nginx with the Lua module,
redis-server.
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
os.environ.setdefault("SWITCHYARD_BIN", os.path.join(ROOT, ".build/release/switchyard"))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "e2e"))
from bench import (BACKEND, Nginx, cpu_seconds, publish_section, stop_all,  # noqa: E402
                   tcp_open, wrk)
from harness import BASE, Controller, Edge, Redis, free_port, wait_until  # noqa: E402

N_ENDPOINTS = 4


def apply(redis, *ops):
    return redis.cli("FCALL", "sy_apply", "1", BASE + "version", *ops)


def put_upstream(redis, name, ports, **fields):
    doc = {"name": name, "endpoints": [{"address": f"127.0.0.1:{p}"} for p in ports], **fields}
    apply(redis, "put", "upstream", name, json.dumps(doc), "", "")


def put_route(redis, rid, host, refs, **fields):
    doc = {"id": rid, "host": host, "path": "/", "match": "prefix", "priority": 0, **fields}
    apply(redis, "put", "route", rid, json.dumps(doc), ",".join(refs), "")


def setup(redis, ports):
    """Upstreams and routes; returns {variant: (host, headers)} per group."""
    balancing = {}
    algorithms = [
        ("round_robin", {"balance": "round_robin"}, ()),
        ("least_conn", {"balance": "least_conn"}, ()),
        ("ip_hash", {"balance": "ip_hash"}, ()),
        ("hash header:X-User", {"balance": "hash", "hash_on": "header:X-User"},
         ("X-User: user-12345",)),
        ("hash uri", {"balance": "hash", "hash_on": "uri"}, ()),
        ("sticky, new clients (Set-Cookie)", {"balance": "sticky"}, ()),
    ]
    for i, (label, fields, headers) in enumerate(algorithms):
        name = f"alg{i}"
        put_upstream(redis, name, ports, **fields)
        put_route(redis, name, f"{name}.bench", [name], upstream=name)
        balancing[label] = (f"{name}.bench", headers)
    # the sticky upstream again, with the cookie of one endpoint (learnt below)
    balancing["sticky, cookie sent"] = ("alg5.bench", None)

    put_upstream(redis, "plain", ports)
    put_upstream(redis, "blue", ports)
    put_upstream(redis, "green", ports)
    put_upstream(redis, "canary", ports)
    put_route(redis, "bare", "bare.bench", ["plain"], upstream="plain")
    put_route(redis, "full", "full.bench", ["blue", "green", "canary"],
              split=[{"upstream": "blue", "weight": 50}, {"upstream": "green", "weight": 50}],
              canary={"upstream": "canary", "header": "X-Canary", "value": "1"},
              rewrite={"replace_prefix": "/v2"},
              request_headers={"set": {"X-Route": "full"}, "remove": ["X-Debug"]},
              response_headers={"set": {"X-Served-By": "edge"}, "remove": ["X-Powered-By"]},
              timeouts={"connect_ms": 1000, "send_ms": 5000, "read_ms": 5000},
              max_body_bytes=1048576,
              rate_limit={"rps": 100000, "burst": 100000, "key": "ip"},
              allow=["127.0.0.0/8"])
    options = {"bare route": ("bare.bench", ()), "every route option": ("full.bench", ())}
    return balancing, options


START, END = "<!-- policies:start -->", "<!-- policies:end -->"
GROUPS = {"balancing": "round_robin", "route options": "bare route"}


def render(results):
    """The Markdown section of docs/benchmarks.md for one run."""
    m = results["machine"]
    lines = [START, "## Traffic policies: what each costs", "",
             f"Measured {results.get('date', '?')} by `bench/policies.py` (part of `make bench`): "
             f"{m['wrk']}, {m['workers']} edge worker(s), {m['cores']} cores shared by wrk, "
             f"the edge and the backend (an nginx `return 200` on {m['endpoints']} ports); "
             f"medians of {results.get('rounds', '?')} alternated round(s). Edge CPU per "
             "request (the CPU time of the edge's workers divided by the requests served) is "
             "the steadier figure on a shared machine; req/s moves with wrk and the backend.",
             ""]
    for group, ref in GROUPS.items():
        med = results["medians"][group]
        lines += [f"| {group} | req/s | vs {ref} | p50 ms | p99 ms | edge CPU µs/req | "
                  f"CPU vs {ref} | errors |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, v in med.items():
            lines.append(
                f"| {name} | {v['rps']:.0f} | {v['rps'] / med[ref]['rps'] - 1:+.1%} | "
                f"{v['p50_ms']:.3f} | {v['p99_ms']:.3f} | {v['cpu_us_per_request']:.1f} | "
                f"{v['cpu_us_per_request'] / med[ref]['cpu_us_per_request'] - 1:+.1%} | "
                f"{v['errors']} |")
        lines.append("")
    lines += ["What would make it misleading: the \"hash on header\" and \"sticky, cookie "
              "sent\" variants send one more request header, which the edge also forwards, so "
              "part of their cost is not the algorithm; the every-option route's rate limit is "
              "never reached and its canary header never sent (the cost measured is the check, "
              "not a refusal); sticky for new clients adds a Set-Cookie to every answer. "
              "Rerun: `SWITCHYARD_BIN=.build/release/switchyard python3 bench/policies.py "
              "--seconds 10 --rounds 3`.", END]
    return "\n".join(lines)


def publish(path, section):
    publish_section(path, START, END, section)
    print(f"wrote the policies section of {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny run (< 30 s)")
    ap.add_argument("--seconds", type=int, default=10, help="wrk duration per run")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    ap.add_argument("--workers", type=int, default=1, help="edge workers")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--out", help="write the runs and medians as JSON here")
    ap.add_argument("--md", help="put the tables into this Markdown file, between "
                    f"{START} and {END} (appended when the markers are missing)")
    ap.add_argument("--render", metavar="JSON", help="only render a saved --out file "
                    "(with --md: into that file)")
    args = ap.parse_args()
    if args.render:
        with open(args.render) as f:
            results = json.load(f)
        if args.md:
            publish(args.md, render(results))
        else:
            print(render(results))
        return
    if args.smoke:
        args.seconds, args.rounds = 1, 1

    base = tempfile.mkdtemp(prefix="switchyard-policies-bench-")
    os.chmod(base, 0o755)
    started = []
    try:
        ports = [free_port() for _ in range(N_ENDPOINTS)]
        backend = Nginx("backend", "".join(BACKEND.format(port=p) for p in ports), 1, base)
        started.append(backend)
        wait_until(lambda: all(tcp_open(p) for p in ports), 5, what="backends")
        redis = Redis(base)
        started.append(redis)
        controller = Controller(redis, base)   # loads the function library
        started.append(controller)
        edge = Edge(redis, base, "policies-edge", workers=args.workers,
                    extra=("--access-log", "off"))
        started.append(edge)
        balancing, options = setup(redis, ports)

        def ready():
            return all(edge.get("/", host).status_code == 200
                       for host, _ in list(balancing.values()) + list(options.values()))
        wait_until(ready, 10, what="every bench route served")
        r = requests.get(edge.url + "/", headers={"Host": "alg5.bench"}, timeout=5)  # no jar
        cookie = r.headers["Set-Cookie"].split(";", 1)[0]
        balancing["sticky, cookie sent"] = ("alg5.bench", (f"Cookie: {cookie}",))
        full = edge.get("/x", "full.bench")
        options_active = full.headers.get("X-Served-By") == "edge"

        groups = {"balancing": (balancing, "round_robin"),
                  "route options": (options, "bare route")}
        results = {"machine": {"cores": os.cpu_count(), "workers": args.workers,
                               "wrk": f"wrk -t1 -c{args.connections} -d{args.seconds}s",
                               "endpoints": N_ENDPOINTS,
                               "route_options_applied": options_active},
                   "runs": {}, "medians": {}}
        workers = edge.pids()[1]
        for group, (variants, _) in groups.items():
            runs = {k: [] for k in variants}
            names = list(variants)
            for i in range(args.rounds):
                k = i % len(names)
                for name in names[k:] + names[:k]:   # rotated: none always goes first
                    host, headers = variants[name]
                    before = cpu_seconds(workers)
                    res = wrk(edge.url + "/", host, args.seconds, args.connections, headers=headers)
                    res["cpu_us_per_request"] = (cpu_seconds(workers) - before) * 1e6 / max(
                        1, res["requests"])
                    runs[name].append(res)
                    time.sleep(0.2)
            results["runs"][group] = runs
            results["medians"][group] = {
                name: {key: statistics.median(r[key] for r in rs)
                       for key in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request")}
                | {"errors": sum(r["errors"] for r in rs)}
                for name, rs in runs.items()}

        results["date"] = datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC")
        results["rounds"] = args.rounds
        print(render(results))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(results, f, indent=1)
            print(f"wrote {args.out}")
        if args.md:
            publish(args.md, render(results))
        if not options_active:
            sys.exit("the route options were not applied by this edge's Lua (the every-option "
                     "route answered without its response header)")
    finally:
        stop_all(started, base)


if __name__ == "__main__":
    main()
