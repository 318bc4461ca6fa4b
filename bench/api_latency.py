#!/usr/bin/env python3
"""The admin API's latency for one route PUT (issue 21 item 2), from one keep-alive client:
p50/p90/p99 per call and the controller's CPU per call (utime+stime from /proc/<pid>/stat).

Several controllers can be measured in one run, side by side on the same machine at the same
time (each with its own redis-server): `--bin LABEL=PATH` per binary, and `--tls LABEL` to run
that binary's controller against a TLS-only Redis (client certificate, docs/redis-ha.md).
Rounds are interleaved (A, B, C, A, B, C, ...) so a load change on the machine hits every
configuration alike; report the median of the rounds and their range.

    python3 bench/api_latency.py --bin before=/tmp/switchyard-before --bin after=.build/release/switchyard \
        --tls after --calls 2000 --rounds 5 --out bench/api_latency.json
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "e2e"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
os.environ.setdefault("SWITCHYARD_HOME", ROOT)

import harness  # noqa: E402
from harness import Redis  # noqa: E402
from tls_support import TLSRedis, make_certificates, tls_flags  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK   # utime, stime


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


class Config:
    def __init__(self, label, path, tls, workdir, certs):
        self.label = label + ("+tls" if tls else "")
        self.tls = tls
        d = os.path.join(workdir, self.label)
        os.makedirs(d)
        harness.BIN = os.path.abspath(path)
        self.redis = TLSRedis(d, certs) if tls else Redis(d)
        extra = ["--log-level", "warning"] + (tls_flags(certs) if tls else [])
        self.controller = harness.Controller(self.redis, d, extra=extra)
        from bench import Keepalive  # the bench's http.client keep-alive client (~0.3 ms/call)
        self.api = Keepalive(self.controller.url, self.controller.session.headers)
        self.api.ok("PUT", "/api/v1/upstreams/lat", {"endpoints": [{"address": "127.0.0.1:9", "weight": 1}]})
        self.rounds = []
        self.serial = 0

    def round(self, calls, warmup):
        for _ in range(warmup):
            self.put()
        pid = self.controller.process.pid
        samples = []
        cpu0 = cpu_seconds(pid)
        for _ in range(calls):
            t0 = time.perf_counter()
            self.put()
            samples.append((time.perf_counter() - t0) * 1000)
        cpu = cpu_seconds(pid) - cpu0
        r = {"p50_ms": percentile(samples, 50), "p90_ms": percentile(samples, 90),
             "p99_ms": percentile(samples, 99), "mean_ms": statistics.fmean(samples),
             "cpu_us_per_call": cpu / calls * 1e6}
        self.rounds.append(r)
        return r

    def put(self):
        # 100 routes rewritten in turn, each with a new path: every call is a real change
        self.serial += 1
        i = self.serial
        self.api.ok("PUT", f"/api/v1/routes/lat-{i % 100}",
                    {"host": f"h{i % 100}.lat.test", "path": f"/p{i}", "match": "prefix", "upstream": "lat"})

    def summary(self):
        out = {}
        for key in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "cpu_us_per_call"):
            values = [r[key] for r in self.rounds]
            out[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
        return out

    def stop(self):
        self.api.close()
        self.controller.stop()
        self.redis.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", action="append", required=True, help="LABEL=PATH of a switchyard binary")
    ap.add_argument("--tls", action="append", default=[], help="also run LABEL's controller over TLS")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="switchyard-apilat-")
    certs_dir = os.path.join(workdir, "certs")
    os.makedirs(certs_dir)
    certs = make_certificates(certs_dir)
    configs = []
    try:
        for item in args.bin:
            label, path = item.split("=", 1)
            configs.append(Config(label, path, False, workdir, certs))
            if label in args.tls:
                configs.append(Config(label, path, True, workdir, certs))
        for n in range(args.rounds):
            for c in configs:
                r = c.round(args.calls, args.warmup if n == 0 else 20)
                print(f"round {n + 1} {c.label:>12}: p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  "
                      f"CPU {r['cpu_us_per_call']:.0f} us/call", flush=True)
        results = {"calls_per_round": args.calls, "rounds": args.rounds, "nproc": os.cpu_count(),
                   "loadavg_at_end": os.getloadavg(), "command": " ".join(sys.argv),
                   "configs": {c.label: {"summary": c.summary(), "rounds": c.rounds} for c in configs}}
        print()
        print(f"{'config':>12} | p50 ms (range) | p99 ms (range) | controller CPU us/call (range)")
        for c in configs:
            s = c.summary()
            print(f"{c.label:>12} | {s['p50_ms']['median']:.3f} ({s['p50_ms']['min']:.3f}-{s['p50_ms']['max']:.3f})"
                  f" | {s['p99_ms']['median']:.3f} ({s['p99_ms']['min']:.3f}-{s['p99_ms']['max']:.3f})"
                  f" | {s['cpu_us_per_call']['median']:.0f} ({s['cpu_us_per_call']['min']:.0f}-"
                  f"{s['cpu_us_per_call']['max']:.0f})")
        if args.out:
            with open(args.out, "w") as f:
                json.dump(results, f, indent=2)
    finally:
        for c in configs:
            c.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
