#!/usr/bin/env python3
"""What endpoint health costs on the request path: the same edge code with and without it,
in the same run, runs alternated (wrk on loopback, an nginx `return 200` backend).

  without health   this tree's Lua and template, minus the health hooks: the balancer is
                   the plain pick it was before (no set_more_tries, no ngx.ctx peer
                   tracking) and there is no log_by_lua
  with health      this tree as it is: upstream with the defaults (passive on, 2 retries,
                   no health check), two endpoints
  with health,     this tree, a second route to an upstream with a health check and three
  1 of 3 down      endpoints, one refused and marked down by a running prober (fresh)

    python3 bench/health_cost.py [--seconds 10] [--rounds 3] [--workers 1]

Prints a table and the raw runs as JSON. Throughput on a shared 2-core machine is noisy;
the CPU time the edge's workers spent per request (utime + stime from /proc, over the
run) is the steadier number. Needs a built `switchyard` (SWITCHYARD_BIN,
default .build/debug/switchyard), wrk, nginx with the Lua module, redis-server.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BACKEND, ROOT, Nginx, cpu_seconds, stop_all, tcp_open, wrk  # noqa: E402
from harness import Controller, Edge, Prober, Redis, free_port, wait_until  # noqa: E402

PLAIN_BALANCE = '''
-- bench/health_cost.py: the balancer as it was before endpoint health
function _M.balance()
    local route = router:recent(ngx.var.sy_route)
    local up = ngx.ctx.sy_up or upstreams[route.upstream]
    local peer = up.balancer:pick()
    set_current_peer(peer.host, peer.port)
end

return _M
'''


def without_health(base):
    """A copy of lua/ and the template with the health hooks taken out of the request path."""
    lua = os.path.join(base, "lua-nohealth")
    shutil.copytree(os.path.join(ROOT, "lua"), lua)
    balance = os.path.join(lua, "switchyard", "request", "balance.lua")
    with open(balance) as f:
        text = f.read()
    cut = text.rstrip().rfind("return _M")
    with open(balance, "w") as f:
        f.write(text[:cut] + PLAIN_BALANCE)
    template = os.path.join(base, "edge-nohealth.nginx.conf")
    shutil.copyfile(os.path.join(ROOT, "deploy", "edge.nginx.conf"), template)
    # the snippets beside it (deploy/edge.d), without the log phase
    snippets = os.path.join(base, "edge.d")
    shutil.copytree(os.path.join(ROOT, "deploy", "edge.d"), snippets)
    for name in os.listdir(snippets):
        path = os.path.join(snippets, name)
        with open(path) as f:
            conf = f.read()
        with open(path, "w") as f:
            f.write(re.sub(r"^\s*log_by_lua_block .*\n", "", conf, flags=re.M))
    return lua, template


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()

    base = tempfile.mkdtemp(prefix="switchyard-health-bench-")
    os.chmod(base, 0o755)
    started = []
    try:
        p1, p2 = free_port(), free_port()
        backend = Nginx("backend", BACKEND.format(port=p1) + BACKEND.format(port=p2), 1, base)
        started.append(backend)
        wait_until(lambda: tcp_open(p1) and tcp_open(p2), 5, what="backends")
        redis = Redis(base)
        started.append(redis)
        controller = Controller(redis, base)
        started.append(controller)
        lua, template = without_health(base)
        plain = Edge(redis, base, "edge-nohealth", workers=args.workers,
                     extra=("--access-log", "off", "--lua-dir", lua, "--template", template))
        started.append(plain)
        edge = Edge(redis, base, "edge-health", workers=args.workers,
                    extra=("--access-log", "off"))
        started.append(edge)
        dead = free_port()
        controller.ok("PUT", "/api/v1/upstreams/plain", {"endpoints": [
            {"address": f"127.0.0.1:{p1}"}, {"address": f"127.0.0.1:{p2}"}]})
        controller.ok("PUT", "/api/v1/upstreams/checked", {
            "endpoints": [{"address": f"127.0.0.1:{p}"} for p in (p1, p2, dead)],
            "health_check": {"type": "tcp", "interval_ms": 1000, "timeout_ms": 200,
                             "rise": 1, "fall": 1}})
        controller.route("plain", "plain.bench", "/", "plain")
        controller.route("checked", "checked.bench", "/", "checked")
        prober = Prober(redis, base, "bench-prober", lease_ms=3000)
        started.append(prober)

        def checked_ready():
            st = edge.session.get(edge.url + "/_switchyard/status", timeout=2).json()["health"]
            return st["prober_fresh"] and f"127.0.0.1:{dead}" in st["down"].get("checked", "")
        wait_until(checked_ready, 20, what="the dead endpoint marked down on the edge")
        for e in (plain, edge):
            wait_until(lambda e=e: e.get("/", "plain.bench").status_code == 200, 5, what="route")

        variants = {
            "without health": (plain, "plain.bench"),
            "with health (defaults)": (edge, "plain.bench"),
            "with health (checked, 1 of 3 down)": (edge, "checked.bench"),
        }
        runs = {k: [] for k in variants}
        for _ in range(args.rounds):
            for name, (e, host) in variants.items():
                workers = e.pids()[1]
                before = cpu_seconds(workers)
                r = wrk(e.url + "/", host, args.seconds, args.connections)
                r["cpu_us_per_request"] = (cpu_seconds(workers) - before) * 1e6 / (
                    r["rps"] * args.seconds)
                runs[name].append(r)
                time.sleep(0.5)
        print(f"wrk -t1 -c{args.connections} -d{args.seconds}s, {args.workers} worker(s), "
              f"{os.cpu_count()} cores shared by wrk, the edges and the backend; medians of "
              f"{args.rounds} alternated rounds")
        print(f"{'variant':40} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'edge CPU us/req':>16} {'errors':>7}")
        for name, rs in runs.items():
            print(f"{name:40} {statistics.median(r['rps'] for r in rs):10.0f} "
                  f"{statistics.median(r['p50_ms'] for r in rs):8.3f} "
                  f"{statistics.median(r['p99_ms'] for r in rs):8.3f} "
                  f"{statistics.median(r['cpu_us_per_request'] for r in rs):16.2f} "
                  f"{sum(r['errors'] for r in rs):7d}")
        print(json.dumps(runs, indent=1))
    finally:
        stop_all(started, base)


if __name__ == "__main__":
    main()
