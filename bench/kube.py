#!/usr/bin/env python3
"""`switchyard kube` at cluster scale (issue 17, section 6), against the API-server double of
e2e/kubeapi (HTTPS, list/watch as a real API server), a real Redis and two real nginx edges:

  start     2,000 Ingresses, 5,000 Services, 50,000 endpoints already in the cluster: time from
            the source's start until both edges serve everything (each edge's applied version is
            Redis's version after the source's writes, and requests through both edges to the
            hosts of sampled Ingresses, the last-written ones among them, reach their pods); the
            source's CPU (user+sys) and memory
  flips     one pod of a two-pod Service turned not-ready, then ready again (n flips in all)
            through the API: time until both edges stopped (started) sending to it, observed with
            requests over one kept-alive connection per edge; p50/p99
  rollout   100 pods of a Service replaced one at a time (new pod added not-ready, made ready,
            old pod marked terminating, killed after a grace period, then removed from the slice)
            while a bounded request loop goes through both edges: the source's writes (Redis
            version delta) and failed requests

    SWITCHYARD_BIN=.build/release/switchyard python3 bench/kube.py [--out r.json] [--md docs/benchmarks.md]
    python3 bench/kube.py --smoke      # a tiny cluster, unmeasured: the harness works (< 60 s)

The double and the pods run in their own processes (bench/kube_parts.py). Needs redis-server and
nginx with the Lua module.
"""
import argparse
import datetime
import http.client
import json
import os
import random
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
os.environ.setdefault("SWITCHYARD_BIN", os.path.join(ROOT, ".build/release/switchyard"))
os.environ.setdefault("SWITCHYARD_HOME", ROOT)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "e2e"))
from bench import cpu_seconds, percentile, publish_section, stop_all  # noqa: E402
from harness import BIN, Controller, Edge, Process, Redis, free_port, wait_until  # noqa: E402
from kube_parts import cluster, endpoint_slice, slice_endpoint  # noqa: E402

START, END = "<!-- kube:start -->", "<!-- kube:end -->"
FULL = {"ingresses": 2000, "services": 5000, "endpoints_per_service": 10, "namespaces": 20, "probes": 16,
        "rollout_pods": 100, "flips": 60}
SMOKE = {"ingresses": 20, "services": 50, "endpoints_per_service": 10, "namespaces": 2, "probes": 4,
         "rollout_pods": 6, "flips": 6}


def rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Part:
    """A child process of kube_parts.py, talking over stdin/stdout."""

    def __init__(self, *args, log):
        self.log = open(log, "wb")
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "kube_parts.py"), *map(str, args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     start_new_session=True)

    def line(self, timeout):
        """One line of its stdout, within timeout seconds (a reader thread keeps this bounded)."""
        box = []
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        if not box or not box[0]:
            raise AssertionError(f"{self.proc.args[2]} did not answer within {timeout}s (log: {self.log.name})")
        return box[0].decode()

    def command(self, text, timeout=10):
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()
        assert self.line(timeout).strip() == "ok"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class KubeClient:
    """A kept-alive HTTPS connection to the double, for the writes the benchmark makes."""

    def __init__(self, info):
        host, port = info["url"].removeprefix("https://").rsplit(":", 1)
        self.ctx = ssl.create_default_context(cafile=info["ca"])
        self.addr, self.token, self.writes = (host, int(port)), info["token"], 0
        self.conn = None

    def put_slice(self, obj):
        m = obj["metadata"]
        path = f"/apis/discovery.k8s.io/v1/namespaces/{m['namespace']}/endpointslices/{m['name']}"
        body = json.dumps(obj).encode()
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(*self.addr, context=self.ctx, timeout=10)
            try:
                self.conn.request("PUT", path, body, {"Authorization": f"Bearer {self.token}",
                                                      "Content-Type": "application/json"})
                r = self.conn.getresponse()
                data = r.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            assert r.status == 200, f"PUT {path}: {r.status} {data[:300]!r}"
            self.writes += 1
            return


class EdgeClient:
    """One kept-alive connection to an edge; get() -> (status, X-Backend or None)."""

    def __init__(self, edge):
        self.edge, self.conn = edge, None

    def get(self, host, path):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.edge.port, timeout=5)
            try:
                self.conn.request("GET", path, headers={"Host": host})
                r = self.conn.getresponse()
                r.read()
                return r.status, r.getheader("X-Backend")
            except (OSError, http.client.HTTPException) as e:
                self.conn.close()
                self.conn = None
                if attempt:
                    return 0, repr(e)
        return 0, None

    def status(self):
        """The edge's /_switchyard/status (its applied version among it)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.edge.port, timeout=5)
        try:
            conn.request("GET", "/_switchyard/status")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()


def written_lines(log):
    """The source's "cluster written" log lines (one per reconcile that wrote)."""
    return [ln for ln in log.splitlines() if "cluster written" in ln]


def fields(line):
    """The key=value metadata of a source log line."""
    return dict(re.findall(r"([a-z_.]+)=(\S+)", line))


def reconcile_ms(lines):
    """The source's own time per written reconcile (translate + validate + write: elapsed_ms)."""
    ms = [int(fields(ln).get("elapsed_ms", 0)) for ln in lines]
    return {"writes": len(ms), "p50_ms": statistics.median(ms) if ms else None, "max_ms": max(ms) if ms else None}


# -- phase 1: start ------------------------------------------------------------------------------------

def measure_start(source, started_at, redis, clients, c, timeout):
    """Until both edges serve everything; returns the timings (seconds from the source's start)."""
    marks = {}
    deadline = time.monotonic() + timeout
    pid = source.pid
    probes = [(host, path, want) for host, paths in c["probe_hosts"].items() for path, want in paths]
    while time.monotonic() < deadline:
        now = time.monotonic()
        if not source.alive():
            raise AssertionError("the source exited:\n" + source.output()[-3000:])
        out = source.output()
        if "listed" not in marks and "cluster listed; reconciling" in out:
            marks["listed"] = now
        if "written" not in marks and written_lines(out):
            marks["written"] = now
            marks["cpu_written"] = cpu_seconds([pid])
        if "written" in marks:
            version = redis.version()
            if "versions" not in marks and all(cl.status().get("version") == version for cl in clients):
                marks["versions"] = now
            if "versions" in marks:
                bad = [(cl.edge.id, host, path, got) for host, path, want in probes for cl in clients
                       for got in [cl.get(host, path)] if got[0] != 200 or got[1] not in want]
                if not bad and redis.version() == version:
                    marks["served"] = time.monotonic()
                    break
                if redis.version() != version:   # the source wrote again meanwhile: not settled yet
                    marks.pop("versions")
        time.sleep(0.02)
    else:
        raise AssertionError(f"both edges did not serve everything within {timeout}s (marks {marks}):\n"
                             + source.output()[-3000:])
    r = {k: round(v - started_at, 3) for k, v in marks.items() if k in ("listed", "written", "versions", "served")}
    r["cpu_s"] = round(cpu_seconds([pid]), 2)
    r["cpu_s_at_first_write"] = round(marks["cpu_written"], 2)
    r["rss_mb"] = round(rss_kb(pid) / 1024, 1)
    r["redis_version"] = redis.version()
    r["writes"] = written_lines(source.output())
    r["probe_requests"] = len(probes) * len(clients)
    return r


# -- phase 2: ready/not-ready flips ---------------------------------------------------------------------

def measure_flips(api, clients, c, port, n, rng, run_out=6, timeout=10.0):
    host = "flip.bench.test"
    a, b = (f"{ip}:{port}" for ip in c["flip"])
    flip_slice = endpoint_slice("bench-live", "flip", [(ip, True) for ip in c["flip"]], port)

    def both_seen():
        return all({cl.get(host, "/")[1] for _ in range(4)} == {a, b} for cl in clients)
    wait_until(both_seen, 20, what="both flip pods served on both edges")
    out = []
    ready = True
    for i in range(n):
        ready = not ready
        flip_slice["endpoints"][1] = slice_endpoint(c["flip"][1], ready)
        t0 = time.monotonic()
        api.put_slice(flip_slice)
        acted = [None] * len(clients)
        runs = [None] * len(clients)   # send time of the first request of the current a-only run
        counts = [0] * len(clients)
        deadline = t0 + timeout
        while None in acted and time.monotonic() < deadline:
            for k, cl in enumerate(clients):
                if acted[k] is not None:
                    continue
                sent = time.monotonic()
                status, backend = cl.get(host, "/")
                if ready:
                    if backend == b:
                        acted[k] = sent
                elif backend == a:
                    if runs[k] is None:
                        runs[k], counts[k] = sent, 0
                    counts[k] += 1
                    if counts[k] >= run_out:   # round robin over two: b would have come
                        acted[k] = runs[k]
                else:
                    runs[k] = None
        if None in acted:
            out.append({"ready": ready, "ms": None})
        else:
            out.append({"ready": ready, "ms": round((max(acted) - t0) * 1000, 2),
                        "per_edge_ms": [round((x - t0) * 1000, 2) for x in acted]})
        time.sleep(rng.uniform(0.1, 0.3))
    return out


# -- phase 3: rollout ----------------------------------------------------------------------------------

class Load(threading.Thread):
    """Requests to host through every edge in turn (kept-alive connections), until stopped or
    bounded by count and time; failures are kept with their reasons."""

    def __init__(self, clients, host, max_requests, max_seconds, pause=0.002):
        super().__init__(daemon=True)
        self.clients, self.host = clients, host
        self.max_requests, self.max_seconds, self.pause = max_requests, max_seconds, pause
        self.sent, self.failures, self.backends, self.tail_backends = 0, [], set(), set()
        self.stopped = threading.Event()

    def run(self):
        deadline = time.monotonic() + self.max_seconds
        while not self.stopped.is_set() and self.sent < self.max_requests and time.monotonic() < deadline:
            cl = self.clients[self.sent % len(self.clients)]
            self.sent += 1
            status, backend = cl.get(self.host, "/")
            if status != 200:
                self.failures.append((round(time.monotonic(), 3), cl.edge.id, status, backend))
            else:
                self.backends.add(backend)
                self.tail_backends.add(backend)
            time.sleep(self.pause)

    def stop(self):
        self.stopped.set()
        self.join(30)


def measure_rollout(api, pods, clients, redis, source, c, port, step, grace):
    host = "rollout.bench.test"
    old, new = c["rollout_old"], c["rollout_new"]
    endpoints = [slice_endpoint(ip, True) for ip in old]
    obj = endpoint_slice("bench-live", "rollout", [], port)

    def write():
        obj["endpoints"] = endpoints
        api.put_slice(obj)

    wait_until(lambda: all(cl.get(host, "/")[0] == 200 for cl in clients), 20, what="the rollout host served")
    v0, lines0, cpu0, api0 = redis.version(), len(written_lines(source.output())), cpu_seconds([source.pid]), api.writes
    load = Load(clients, host, max_requests=200_000, max_seconds=60 + len(old) * (3 * step) + grace * 4)
    load.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    dying = []   # (kill at, ip)

    def reap(until):
        while dying and dying[0][0] <= until:
            _, ip = dying.pop(0)
            pods.command(f"close {ip}")
            endpoints[:] = [e for e in endpoints if e["addresses"][0] != ip]
            write()

    for i in range(len(old)):
        endpoints.append(slice_endpoint(new[i], False))           # a new pod, not ready yet
        write()
        time.sleep(step)
        endpoints[-1] = slice_endpoint(new[i], True)              # ready
        write()
        time.sleep(step)
        k = next(j for j, e in enumerate(endpoints) if e["addresses"][0] == old[i])
        endpoints[k] = slice_endpoint(old[i], False, terminating=True)   # terminating
        write()
        dying.append((time.monotonic() + grace, old[i]))
        time.sleep(step)
        reap(time.monotonic())
    while dying:
        time.sleep(max(0.0, dying[0][0] - time.monotonic()))
        reap(time.monotonic())
    took = time.monotonic() - t0
    time.sleep(1.0)   # requests keep going through the settled picture
    load.tail_backends = set()
    time.sleep(0.5)
    load.stop()
    wait_until(lambda: all(cl.status().get("version") == redis.version() for cl in clients), 10,
               what="edges at Redis's version")
    lines = written_lines(source.output())[lines0:]
    return {"pods": len(old), "api_writes": api.writes - api0, "seconds": round(took, 2),
            "source_writes": len(lines), "source": reconcile_ms(lines), "redis_version_delta": redis.version() - v0,
            "requests": load.sent, "failed": len(load.failures), "failures": load.failures[:20],
            "cpu_s": round(cpu_seconds([source.pid]) - cpu0, 2),
            "served_by_new_only_after": not (load.tail_backends - {f"{ip}:{port}" for ip in new}),
            "step_s": step, "grace_s": grace}


# -- rendering -------------------------------------------------------------------------------------------

def render(r):
    p, s, f, ro = r["params"], r["start"], r["flips"], r["rollout"]
    lines = [START, "## Kubernetes: a large cluster, pod readiness, a rollout", "",
             f"Measured {r.get('date', '?')} by `bench/kube.py` (part of `make bench`): `switchyard kube` "
             f"({r['machine']['bin']}) following the API-server double of `e2e/kubeapi` (Python, HTTPS, "
             f"list + watch) with {p['ingresses'] + 2:,} Ingresses, {p['services'] + 2:,} Services and "
             f"{s['endpoints']:,} endpoints ({p['ingresses']:,}/{p['services']:,}/"
             f"{p['services'] * p['endpoints_per_service']:,} plus the flip and rollout Services), writing "
             f"into one Redis followed by two edges (1 worker each), {r['machine']['cores']} cores shared by "
             f"all of it (load average {r['machine'].get('load', '?')} before and after the run: other work was "
             "running). Every endpoint is a loopback address; only the pods of the sampled hosts, the flip "
             "and the rollout Services listen (the other endpoints point at addresses nothing listens on, "
             "and no request goes to them).", "",
             "| start: source launched until | seconds |", "| --- | ---: |",
             f"| every kind listed (the double serving its lists is most of this) | {s['listed']:.2f} |",
             f"| first write done ({s['first_write']}) | {s['written']:.2f} |",
             f"| both edges at Redis's version | {s['versions']:.2f} |",
             f"| both edges serving everything (+ {s['probe_requests']} requests to the hosts of "
             f"{p['probes']} sampled Ingresses reaching their pods) | **{s['served']:.2f}** |", "",
             f"Source CPU (user+sys) until then: {s['cpu_s']:.2f} s; RSS {s['rss_mb']:.0f} MB then, "
             f"peak {r['source_peak_rss_mb']:.0f} MB over the whole run; total source CPU over the run "
             f"{r['source_cpu_total_s']:.2f} s.", ""]
    ok = [x["ms"] for x in f["runs"] if x["ms"] is not None]
    fs, rs = f.get("source") or {}, ro.get("source") or {}

    def own(x):
        return (f"; the source's own time per write (translate, validate, diff and write, reusing what the "
                f"change did not touch): "
                f"p50 {x['p50_ms']:.0f} ms, max {x['max_ms']:.0f} ms over {x['writes']} writes") if x.get("writes") else ""
    lines += [f"**Pod readiness** ({f['n']} flips of one pod of a two-pod Service, alternately not-ready and "
              "ready, PUT of its EndpointSlice; until both edges stopped/started sending to it, seen by "
              "requests over one kept-alive connection per edge, round robin between the two pods): "
              f"p50 **{f['p50_ms']:.1f} ms**, p99 **{f['p99_ms']:.1f} ms**, max {f['max_ms']:.1f} ms "
              f"({len(ok)} of {f['n']} seen within 10 s; the goal, p99 < 100 ms, is "
              f"{'met' if f['p99_ms'] < 100 else '**not met**'}; ingress-nginx syncs endpoints on a 1 s timer). Not-ready p50 {f['p50_not_ready_ms']:.1f} ms, ready p50 {f['p50_ready_ms']:.1f} ms. "
              f"This includes the source's debounce ({r['machine']['debounce_ms']} ms){own(fs)}; source CPU "
              f"{f['cpu_s']:.2f} s for the {f['n']} flips ({f['cpu_s'] / f['n'] * 1000:.0f} ms per change, "
              "everything the source did meanwhile included).", "",
              f"**Rollout** of {ro['pods']} pods, one at a time (new pod added not-ready, made ready, old pod "
              f"terminating, killed {ro['grace_s']:.1f} s later and then removed; {ro['step_s'] * 1000:.0f} ms "
              f"between steps; {ro['api_writes']} EndpointSlice writes in {ro['seconds']:.1f} s): the source "
              f"wrote **{ro['source_writes']}** times (Redis version +{ro['redis_version_delta']}){own(rs)}, "
              f"{ro['cpu_s']:.2f} s of its CPU; **{ro['failed']} failed** of {ro['requests']:,} requests "
              "sent through both edges meanwhile.", "",
              "What would mislead: the double is a Python server, so the listing phase is mostly its time, "
              "not the source's; the flip latency starts when the benchmark sends the PUT (the double's "
              "handling included) and ends at the first request that shows the change, so it has a "
              "resolution of one request (about a millisecond); every process shares two cores. "
              + ("A failed rollout request is a 502 from an edge that still had a killed pod: the grace period "
                 f"({ro['grace_s']:.1f} s, shorter than a usual preStop sleep) ran out before the source wrote "
                 "the pod's removal from rotation. " if ro["failed"] else
                 "No rollout request failed: a pod leaves rotation when its slice marks it terminating, and "
                 f"the source writes that well within the grace period ({ro['grace_s']:.1f} s). ")
              + "Rerun: `SWITCHYARD_BIN=.build/release/switchyard python3 "
              "bench/kube.py` (about 5 minutes, most of it the flips).", END]
    return "\n".join(lines)


def publish(path, section):
    publish_section(path, START, END, section)
    print(f"wrote the kube section of {path}")


# -- main ------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="a tiny cluster, unmeasured (< 60 s)")
    ap.add_argument("--flips", type=int, help="ready/not-ready flips (default 60)")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--md", help=f"put the section into this Markdown file, between {START} and {END}")
    ap.add_argument("--render", metavar="JSON", help="only render a saved --out file")
    args = ap.parse_args()
    if args.render:
        with open(args.render) as f:
            results = json.load(f)
        publish(args.md, render(results)) if args.md else print(render(results))
        return
    params = dict(SMOKE if args.smoke else FULL)
    if args.flips:
        params["flips"] = args.flips
    params["real_port"] = free_port()
    load_before = os.getloadavg()[0]
    c = cluster(params)
    rng = random.Random(17)
    base = tempfile.mkdtemp(prefix="switchyard-kube-bench-")
    os.chmod(base, 0o755)
    started = []
    try:
        with open(os.path.join(base, "params.json"), "w") as f:
            json.dump(params, f)
        pods = Part("pods", params["real_port"], log=os.path.join(base, "pods.log"))
        started.append(pods)
        for i in range(0, len(c["real"]), 200):
            pods.command("open " + " ".join(c["real"][i:i + 200]))
        loaded = time.monotonic()
        double = Part("cluster", os.path.join(base, "params.json"), log=os.path.join(base, "kubeapi.log"))
        started.append(double)
        info = json.loads(double.line(300))
        print(f"cluster loaded into the double in {time.monotonic() - loaded:.1f}s "
              f"({len(c['ingresses'])} Ingresses, {len(c['services'])} Services, {c['endpoints']} endpoints)")
        redis = Redis(base)
        started.append(redis)
        controller = Controller(redis, base)   # loads the function library
        started.append(controller)
        edges = [Edge(redis, base, f"kube-edge-{x}", workers=1, extra=("--access-log", "off")) for x in "ab"]
        started += edges
        clients = [EdgeClient(e) for e in edges]
        debounce_ms = 30   # the source's default
        argv = [BIN, "kube", "--kubeconfig", info["kubeconfig"], "--redis", redis.address, "--id", "kube-bench",
                "--debounce-ms", str(debounce_ms), "--log-level", "info"]
        t_start = time.monotonic()
        source = Process("kube-source", argv, env=dict(os.environ), log_dir=base)
        started.append(source)
        start = measure_start(source, t_start, redis, clients, c, timeout=60 if args.smoke else 300)
        start["endpoints"] = c["endpoints"]
        first = fields(start["writes"][0])
        start["first_write"] = (f"{first.get('puts')} puts in {first.get('calls')} sy_apply calls, "
                                f"{first.get('elapsed_ms')} ms in the source")
        print(f"start: {json.dumps({k: v for k, v in start.items() if k != 'writes'})}")

        api = KubeClient(info)
        cpu0, lines0 = cpu_seconds([source.pid]), len(written_lines(source.output()))
        runs = measure_flips(api, clients, c, params["real_port"], params["flips"], rng)
        ok = [x["ms"] for x in runs if x["ms"] is not None]
        flips = {"n": len(runs), "runs": runs, "cpu_s": round(cpu_seconds([source.pid]) - cpu0, 2),
                 "p50_ms": statistics.median(ok) if ok else None, "p99_ms": percentile(ok, 99) if ok else None,
                 "max_ms": max(ok) if ok else None,
                 "source": reconcile_ms(written_lines(source.output())[lines0:]),
                 "p50_not_ready_ms": statistics.median([x["ms"] for x in runs if x["ms"] is not None and not x["ready"]] or [0]),
                 "p50_ready_ms": statistics.median([x["ms"] for x in runs if x["ms"] is not None and x["ready"]] or [0])}
        print(f"flips: p50 {flips['p50_ms']} ms, p99 {flips['p99_ms']} ms, max {flips['max_ms']} ms "
              f"({len(ok)}/{len(runs)} seen)")

        rollout = measure_rollout(api, pods, clients, redis, source, c, params["real_port"],
                                  step=0.05, grace=0.5 if args.smoke else 1.0)
        print(f"rollout: {json.dumps({k: v for k, v in rollout.items() if k != 'failures'})}")
        if rollout["failures"]:
            print(f"rollout failures (first 20): {rollout['failures']}")

        results = {"params": params, "start": start, "flips": flips, "rollout": rollout,
                   "source_peak_rss_mb": round(rss_kb(source.pid, "VmHWM") / 1024, 1),
                   "source_cpu_total_s": round(cpu_seconds([source.pid]), 2),
                   "machine": {"cores": os.cpu_count(), "debounce_ms": debounce_ms,
                               "load": f"{load_before:.1f} / {os.getloadavg()[0]:.1f}",
                               "bin": os.path.relpath(BIN, ROOT) if BIN.startswith(ROOT) else BIN},
                   "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
        # what must hold for the numbers to mean anything (smoke included)
        assert start["served"] > 0 and start["writes"], "the source never wrote"
        assert rollout["requests"] > 0 and rollout["source_writes"] > 0
        assert rollout["served_by_new_only_after"], "old pods still served after the rollout"
        if args.smoke:   # a tiny cluster: every flip is seen
            assert len(ok) == len(runs), f"flips not seen within 10 s: {[x for x in runs if x['ms'] is None]}"
        if args.smoke:
            print(render(results))
            print("kube bench smoke: 1 passed, 0 failed")
            return
        if args.out:
            with open(args.out, "w") as f:
                json.dump(results, f, indent=1)
            print(f"wrote {args.out}")
        section = render(results)
        publish(args.md, section) if args.md else print(section)
    finally:
        stop_all(started, base)


if __name__ == "__main__":
    main()
