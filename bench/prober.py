#!/usr/bin/env python3
"""Prober benchmark (not a test): N loopback endpoints checked every interval.

One nginx listens on N consecutive loopback ports and answers GET /healthz with 200, or
503 for a port whose file exists in <dir>/down/ (so an endpoint is "killed" by creating
a file, without touching the others). Redis, the controller and one `switchyard prober`
are started as in the integration tests; the endpoints are loaded as N/per-upstream
upstreams with an http health check.

Reported:
  - prober CPU over a steady-state window (utime+stime from /proc/<pid>/stat), as a
    fraction of one core, and its RSS (VmRSS, VmHWM);
  - nginx CPU over the same window, for scale;
  - warm-up: time until every endpoint is up in Redis;
  - detection: K endpoints killed at once, time until each is marked down (received on
    the health_events channel), as min / median / p90 / p99 / max.

Target: under half a core for 10,000 endpoints at 1 s. The file-descriptor limit is
raised here (as root the hard limit too): every endpoint is a listening socket in nginx
and, with connection reuse, one open connection each in nginx and the prober.

  python3 bench/prober.py --endpoints 10000 --interval-ms 1000 --window 20 --kill 200
"""
import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "e2e"))
from harness import BASE, Controller, Process, Redis, Subscriber, wait_until  # noqa: E402

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CLK_TCK = os.sysconf("SC_CLK_TCK")

NGINX_CONF = """
worker_processes {workers};
worker_rlimit_nofile {nofile};
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections {connections}; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {{
{listens}
        location = /healthz {{
            if (-f {dir}/down/$server_port) {{ return 503; }}
            return 200 "ok\\n";
        }}
    }}
}}
"""


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
    except (ValueError, PermissionError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def free_port_block(n, start=20000, stop=32700):
    """n consecutive loopback ports nobody listens on (below the ephemeral range)."""
    base = start
    while base + n <= stop:
        ok = True
        for p in range(base, base + n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx does: TIME_WAIT is fine
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
                base = p + 1
                break
            finally:
                s.close()
        if ok:
            return base
    raise SystemExit(f"no block of {n} free ports in {start}-{stop}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def memory_kb(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                k, v = line.split(":")
                out[k] = int(v.split()[0])
    return out


def nginx_pids(master):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True)
    return [master] + [int(p) for p in out.stdout.split()]


def pct(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoints", type=int, default=10000)
    ap.add_argument("--per-upstream", type=int, default=100)
    ap.add_argument("--interval-ms", type=int, default=1000)
    ap.add_argument("--timeout-ms", type=int, default=500)
    ap.add_argument("--rise", type=int, default=2)
    ap.add_argument("--fall", type=int, default=3)
    ap.add_argument("--window", type=float, default=20, help="seconds of steady state to measure CPU over")
    ap.add_argument("--kill", type=int, default=200, help="endpoints to turn unhealthy at once")
    ap.add_argument("--fresh-connections", action="store_true", help="a new connection per probe")
    ap.add_argument("--bin", default=os.environ.get("SWITCHYARD_BIN", os.path.join(ROOT, ".build/release/switchyard")))
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--perf", help="record a perf profile of the prober during the window into this file")
    args = ap.parse_args()
    os.environ["SWITCHYARD_BIN"] = os.path.abspath(args.bin)
    import harness
    harness.BIN = os.path.abspath(args.bin)

    n = args.endpoints
    limits = raise_nofile(max(65536, 3 * n + 4096))
    print(f"RLIMIT_NOFILE {limits}; {n} endpoints, interval {args.interval_ms} ms, "
          f"{'fresh connections' if args.fresh_connections else 'connection reuse'}", flush=True)

    work = tempfile.mkdtemp(prefix="switchyard-bench-prober-")
    started = []
    try:
        os.makedirs(os.path.join(work, "down"))
        os.chmod(work, 0o755)  # nginx workers (nobody, when started as root) stat files in down/
        base = free_port_block(n)
        ports = list(range(base, base + n))
        listens = "\n".join(f"        listen 127.0.0.1:{p};" for p in ports)
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            # each worker holds every listening socket plus its share of kept-alive connections
            workers = 1 if 2 * n + 1024 < limits[0] else 3
            f.write(NGINX_CONF.format(dir=work, listens=listens, nofile=limits[0], workers=workers,
                                      connections=min(limits[0] - 100, 3 * n + 1024)))
        nginx = Process("bench-nginx", [NGINX, "-p", work + "/", "-c", conf, "-g", "daemon off;"], log_dir=work)
        started.append(nginx)
        wait_until(lambda: socket.create_connection(("127.0.0.1", ports[-1]), timeout=0.5).close() or True, 30,
                   what="nginx listening")

        redis = Redis(work)
        started.append(redis)
        controller = Controller(redis, work)
        started.append(controller)
        check = {"type": "http", "path": "/healthz", "interval_ms": args.interval_ms, "timeout_ms": args.timeout_ms,
                 "rise": args.rise, "fall": args.fall}
        names = []
        batch = []
        for i in range(0, n, args.per_upstream):
            name = f"u{i // args.per_upstream:05d}"
            names.append(name)
            batch.append({"name": name, "health_check": check,
                          "endpoints": [{"address": f"127.0.0.1:{p}"} for p in ports[i:i + args.per_upstream]]})
            if len(batch) == 50:
                controller.ok("POST", "/api/v1/apply", {"upstreams": batch})
                batch = []
        if batch:
            controller.ok("POST", "/api/v1/apply", {"upstreams": batch})

        events = Subscriber(redis.port, BASE + "health_events")
        t_start = time.monotonic()
        extra = ["--fresh-connections"] if args.fresh_connections else []
        prober = Process("bench-prober", [args.bin, "prober", "--redis", redis.address, "--id", "bench",
                                          "--log-level", "notice", *extra], log_dir=work)
        started.append(prober)

        # warm-up: every endpoint up (rise successes after the lease is taken)
        up = set()
        for _, msg in events.until(t_start + 120, lambda: len(up) >= n):
            v, u, a, state = msg.split(" ")
            if state == "up":
                up.add(a)
        warm = time.monotonic() - t_start
        print(f"all {len(up)}/{n} endpoints up after {warm:.1f} s", flush=True)
        if len(up) < n:
            print(prober.output()[-3000:])
            raise SystemExit("warm-up incomplete")

        # steady state
        time.sleep(2)
        npids = nginx_pids(nginx.pid)
        c0, n0, w0 = cpu_seconds(prober.pid), sum(cpu_seconds(p) for p in npids), time.monotonic()
        if args.perf:
            subprocess.run(["perf", "record", "-q", "-F", "499", "-g", "-p", str(prober.pid), "-o", args.perf,
                            "--", "sleep", str(args.window)], capture_output=True)
        else:
            time.sleep(args.window)
        c1, n1, w1 = cpu_seconds(prober.pid), sum(cpu_seconds(p) for p in npids), time.monotonic()
        mem = memory_kb(prober.pid)
        cpu = (c1 - c0) / (w1 - w0)
        ncpu = (n1 - n0) / (w1 - w0)
        print(f"prober CPU {cpu:.3f} cores over {w1 - w0:.0f} s; RSS {mem['VmRSS'] / 1024:.1f} MiB "
              f"(peak {mem['VmHWM'] / 1024:.1f} MiB); nginx CPU {ncpu:.3f} cores", flush=True)

        # detection: kill K endpoints at once
        k = min(args.kill, n)
        victims = {f"127.0.0.1:{p}" for p in ports[:: max(1, n // k)][:k]}
        t_kill = time.monotonic()
        for a in victims:
            open(os.path.join(work, "down", a.rsplit(":", 1)[1]), "w").close()
        t_written = time.monotonic()
        detected = {}
        bound = (args.interval_ms * args.fall + args.timeout_ms) / 1000
        for t, msg in events.until(t_kill + bound * 3 + 10, lambda: len(detected) >= len(victims)):
            v, u, a, state = msg.split(" ")
            if state == "down" and a in victims and a not in detected:
                detected[a] = t - t_kill
        times = list(detected.values())
        if not times:
            sample = sorted(victims)[0]
            print(prober.output()[-3000:])
            print(redis.cli("HGET", BASE + "health:u00000", sample), os.listdir(os.path.join(work, "down"))[:5])
            print(subprocess.run(["curl", "-s", "-i", f"http://{sample}/healthz"], capture_output=True).stdout[:300])
            raise SystemExit(f"no endpoint was marked down; e.g. {sample}")
        print(f"killed {len(victims)} endpoints (files written in {(t_written - t_kill) * 1000:.0f} ms); "
              f"{len(times)} marked down: min {min(times):.2f} s, median {statistics.median(times):.2f} s, "
              f"p90 {pct(times, 0.9):.2f} s, p99 {pct(times, 0.99):.2f} s, max {max(times):.2f} s "
              f"(interval x fall + timeout = {bound:.2f} s)", flush=True)

        results = {
            "endpoints": n, "interval_ms": args.interval_ms, "timeout_ms": args.timeout_ms, "rise": args.rise,
            "fall": args.fall, "reuse_connections": not args.fresh_connections, "warmup_s": round(warm, 2),
            "prober_cpu_cores": round(cpu, 4), "prober_rss_mib": round(mem["VmRSS"] / 1024, 1),
            "prober_peak_rss_mib": round(mem["VmHWM"] / 1024, 1), "nginx_cpu_cores": round(ncpu, 4),
            "window_s": round(w1 - w0, 1), "killed": len(victims), "detected": len(times),
            "detect_s": {"min": round(min(times), 3), "median": round(statistics.median(times), 3),
                         "p90": round(pct(times, 0.9), 3), "p99": round(pct(times, 0.99), 3), "max": round(max(times), 3)},
            "bound_s": bound, "cores": os.cpu_count(),
        }
        print(json.dumps(results))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
    finally:
        for p in reversed(started):
            try:
                p.stop()
            except Exception as e:  # noqa: BLE001 - keep stopping the rest
                print(f"stopping {p}: {e}", file=sys.stderr)
        if not os.environ.get("SWITCHYARD_KEEP_BENCH_DIR"):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
