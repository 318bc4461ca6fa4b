#!/usr/bin/env python3
"""Many edges on one Redis (issue 20, "Measured"): N real nginx edges (default 200), each
one worker with small shared dicts, rendered by the real `switchyard edge --render-only`
and started on their own loopback ports, following one Redis master.

Two scenarios, each with its own N edges:

  master    every edge reads and subscribes at the master;
  replicas  the master has two replicas; half the edges read from replica 1 first, half
            from replica 2 (`switchyard edge --redis-read R1,R2` / `R2,R1`); only their
            registrations (heartbeats) go to the master.

Measured in each:

  * propagation: a new route through the API until every edge has applied its version
    (each edge's registration in Redis, `applied_version`, which the syncer writes right
    after the commit that makes the route served; polled every few ms with one pipelined
    round trip), per change; and each edge's own commit lag (its
    switchyard_config_propagation_lag_seconds: commit time minus the change's Redis
    timestamp); at the end every edge is asked for the last route (it must serve it);
  * Redis CPU per change: utime+stime (and schedstat ns) of every redis-server from /proc
    over windows with changes minus windows without (the edges' heartbeats and checks
    cost Redis something every second), with the commands and bytes out per change from
    INFO; the edges' CPU per change, the same way;
  * memory: each edge's RSS and PSS (master + worker, /proc/<pid>/smaps_rollup); Redis's
    memory and connections per edge (INFO, CLIENT LIST);
  * catch-up storm (master scenario): the master restarted (SIGTERM, AOF kept), one
    change written as soon as it answers; time until every edge has re-subscribed,
    re-registered and applied that change; Redis CPU and commands per edge for it.

Every loop is bounded in count and time; every process started is tracked and stopped at
the end, on an exception and on Ctrl-C.

  SWITCHYARD_BIN=$PWD/.build/release/switchyard python3 bench/many_edges.py          # 200 edges
  python3 bench/many_edges.py --smoke                                              # 5 edges, seconds
  python3 bench/many_edges.py --edges 50 --changes 10 --out /tmp/x.json            # a private run

Results: docs/benchmarks-many-edges.json (not with --smoke unless --out is given);
docs/scaling.md explains them and extrapolates to 1,000 and 10,000 edges.
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "e2e"))
# Measuring: the release build when there is one (what the numbers are about). --smoke
# measures nothing and takes the debug build like the other smoke runs (`make test` builds
# that one, and a release build lying around may be stale).
if not os.environ.get("SWITCHYARD_BIN"):
    _release = os.path.join(ROOT, ".build/release/switchyard")
    os.environ["SWITCHYARD_BIN"] = (_release if os.path.exists(_release) and "--smoke" not in sys.argv
                                    else os.path.join(ROOT, ".build/debug/switchyard"))
from harness import BIN, BASE, Controller, free_port, start_backends  # noqa: E402

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REDIS_SERVER = shutil.which("redis-server") or "redis-server"
TICK = os.sysconf("SC_CLK_TCK")
EVENTS = BASE + "events"


# --- processes: every one we start is tracked here and stopped at the end -------------

class Procs:
    """The processes this run started (each in its own session, so its whole group can be
    signalled: an nginx master and its worker). stop_all() stops every one, last first."""

    def __init__(self):
        self.items = []

    def start(self, name, argv, log_path, env=None):
        log = open(log_path, "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True, cwd=ROOT)
        log.close()
        p.sy_name = name
        self.items.append(p)
        return p

    @staticmethod
    def send(p, sig):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, procs, sig=signal.SIGTERM, timeout=15):
        """Signals all of `procs` first, then waits for each (SIGKILL after timeout)."""
        for p in procs:
            self.send(p, sig)
        deadline = time.monotonic() + timeout
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.send(p, signal.SIGKILL)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    print(f"could not stop {p.sy_name} (pid {p.pid})", file=sys.stderr)
        self.items = [p for p in self.items if p not in procs]

    def stop_all(self):
        self.stop(list(reversed(self.items)))


PROCS = Procs()


def _on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


# --- a small pipelined RESP2 client ----------------------------------------------------

class RespError(Exception):
    pass


class Resp:
    def __init__(self, port, timeout=5):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.sock.makefile("rb")

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2].decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RespError(f"unexpected reply {line!r}")

    def pipeline(self, commands):
        self.sock.sendall(b"".join(self.encode(c) for c in commands))
        return [self._read() for _ in commands]

    def call(self, *args):
        reply = self.pipeline([args])[0]
        if isinstance(reply, RespError):
            raise reply
        return reply

    def info(self, section):
        out = {}
        for line in self.call("INFO", section).splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def resp_quiet(port, *args, timeout=1):
    """One command, or None when Redis does not answer (yet)."""
    try:
        c = Resp(port, timeout=timeout)
        try:
            return c.call(*args)
        finally:
            c.close()
    except (OSError, RespError, ConnectionError):
        return None


def bounded_wait(check, timeout, interval=0.05, what="condition"):
    """Polls check() until truthy; at most `timeout` seconds (and timeout/interval+1 tries)."""
    deadline = time.monotonic() + timeout
    last = None
    for _ in range(int(timeout / interval) + 2):
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - the check may race with start-up
            last = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


# --- Redis -----------------------------------------------------------------------------

class RedisNode:
    """A redis-server on loopback, AOF on (so a restart keeps the configuration), optionally
    a replica of another."""

    def __init__(self, base, name, replica_of=None, port=None):
        self.name = name
        self.port = port or unique_port()
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir, exist_ok=True)
        self.replica_of = replica_of
        self.proc = None
        self.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    # duck-typed for harness.Controller
    password = None

    def start(self):
        argv = [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir,
                "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                "--maxclients", "10000", "--tcp-backlog", "511"]
        if self.replica_of:
            argv += ["--replicaof", "127.0.0.1", str(self.replica_of.port)]
        self.spawned_at = time.monotonic()
        self.proc = PROCS.start(self.name, argv, os.path.join(self.dir, "redis.log"))
        bounded_wait(lambda: resp_quiet(self.port, "PING") == "PONG", 15, 0.01, what=f"{self.name} up")
        self.pong_at = time.monotonic()
        if self.replica_of:
            bounded_wait(lambda: self.client().info("replication").get("master_link_status") == "up",
                         15, what=f"{self.name} replicating")

    def client(self):
        return Resp(self.port)

    def stop(self):
        PROCS.stop([self.proc])

    def cpu(self):
        return proc_cpu([self.proc.pid])


def proc_cpu(pids):
    """(utime+stime seconds from /proc/<pid>/stat, on-CPU ns from /proc/<pid>/task/*/schedstat)
    summed over pids and all their threads."""
    ticks, ns = 0, 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    ns += int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            pass  # gone between the listing and the read
    return ticks / TICK, ns / 1e9


def redis_counters(node):
    c = node.client()
    try:
        stats = c.info("stats")
        repl = c.info("replication")
        persistence = c.info("persistence")
        return {"aof_bytes": int(persistence.get("aof_current_size", 0)),
                "commands": int(stats["total_commands_processed"]),
                "net_out": int(stats["total_net_output_bytes"]),
                "net_in": int(stats["total_net_input_bytes"]),
                # bytes of the replication stream (advances only while a replica is attached)
                "repl_offset": int(repl.get("master_repl_offset", 0))}
    finally:
        c.close()


def commandstats(node):
    """{command: (calls, usec)} from INFO commandstats."""
    c = node.client()
    try:
        out = {}
        for k, v in c.info("commandstats").items():
            f = dict(kv.split("=", 1) for kv in v.split(","))
            out[k.replace("cmdstat_", "")] = (int(f["calls"]), int(f["usec"]))
        return out
    finally:
        c.close()


def commandstats_diff(a, b):
    return {k: (b[k][0] - a.get(k, (0, 0))[0], b[k][1] - a.get(k, (0, 0))[1]) for k in b}


# --- edges -----------------------------------------------------------------------------

class EdgeProc:
    def __init__(self, id, port, metrics_port, prefix, proc):
        self.id, self.port, self.metrics_port, self.prefix, self.proc = id, port, metrics_port, prefix, proc

    def pids(self):
        out = [self.proc.pid]
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                out += [int(p) for p in f.read().split()]
        except OSError:
            pass
        return out


def shrink_dicts(conf_text, size):
    """The rendered nginx.conf with every lua_shared_dict but sy_config at `size`
    (`switchyard edge` has a flag for sy_config only: --config-dict-size)."""
    return re.sub(r"(lua_shared_dict (?!sy_config\b)\w+) \S+;", rf"\1 {size};", conf_text)


def start_edge(base, i, master, read, args):
    """Renders one edge with the real `switchyard edge --render-only`, shrinks its other
    dicts, starts nginx on it. Retries with other ports if a port was taken meanwhile."""
    eid = f"{args.tag}-{i:04d}"
    prefix = os.path.join(base, eid)
    last = None
    for _attempt in range(3):
        port, mport = unique_port(), unique_port()
        argv = [BIN, "edge", "--listen", f"127.0.0.1:{port}", "--redis", master.address,
                "--prefix", prefix, "--id", eid, "--workers", "1",
                "--metrics-listen", f"127.0.0.1:{mport}", "--access-log", "off",
                "--error-log", os.path.join(prefix, "error.log"),
                "--config-dict-size", args.config_dict, "--render-only"]
        if read:
            argv += ["--redis-read", ",".join(r.address for r in read)]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"switchyard edge --render-only failed: {r.stderr or r.stdout}")
        conf = r.stdout.strip().splitlines()[-1]
        if args.other_dicts != "default":
            with open(conf) as f:
                text = f.read()
            with open(conf, "w") as f:
                f.write(shrink_dicts(text, args.other_dicts))
        proc = PROCS.start(eid, [NGINX, "-p", prefix + "/", "-c", conf, "-g", "daemon off;"],
                           os.path.join(prefix, "nginx.out"))
        edge = EdgeProc(eid, port, mport, prefix, proc)
        try:
            bounded_wait(lambda: proc.poll() is None and tcp_open(port) and answers_as(edge), 20, 0.05,
                         f"edge {eid} listening")
            time.sleep(0.2)
            if proc.poll() is None:
                return edge
            last = f"nginx exited with {proc.returncode}"
        except TimeoutError as exc:
            last = exc
            PROCS.stop([proc])
    raise RuntimeError(f"edge {eid} did not start: {last}; see {prefix}/error.log")


_PORTS_LOCK = threading.Lock()
_PORTS_GIVEN = set()


def unique_port():
    """A free loopback port never handed out before in this run: two edges given the same
    one would both listen there (the edge's listener has reuseport) and the second's
    start would look like success."""
    with _PORTS_LOCK:
        for _ in range(1000):
            port = free_port()
            if port not in _PORTS_GIVEN:
                _PORTS_GIVEN.add(port)
                return port
    raise RuntimeError("no unused port found")


def answers_as(edge):
    """The edge on edge.metrics_port is this edge (its own status names it)."""
    status, _, body = http_get(edge.metrics_port, "/_switchyard/status")
    return status == 200 and json.loads(body).get("edge_id") == edge.id


def tcp_open(port):
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


def start_edges(base, n, master, reads, args):
    """n edges, four at a time (the renderer is a process start each); reads: a function
    i -> the replicas edge i reads from (or None)."""
    edges = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(start_edge, base, i, master, reads(i), args) for i in range(n)]
        for fut in futures:
            edges.append(fut.result())
    return edges


def applied_versions(client, edges):
    replies = client.pipeline([("HGET", BASE + "edge:" + e.id, "applied_version") for e in edges])
    return [int(r) if isinstance(r, str) and r.isdigit() else -1 for r in replies]


def wait_all_applied(client, edges, version, timeout, interval, start=None):
    """Polls the edges' registrations until every one has applied `version`; returns the
    time (monotonic, relative to start) each was first seen there. Bounded."""
    start = time.monotonic() if start is None else start
    seen = [None] * len(edges)
    deadline = time.monotonic() + timeout
    polls = 0
    while polls < int(timeout / interval) + 10:
        polls += 1
        now = time.monotonic()
        for k, v in enumerate(applied_versions(client, edges)):
            if seen[k] is None and v >= version:
                seen[k] = now - start
        if all(s is not None for s in seen):
            return seen, polls
        if now >= deadline:
            break
        time.sleep(interval)
    missing = [e for e, s in zip(edges, seen) if s is None]
    for e in missing[:3]:  # what the edge says, for whoever reads the failure
        try:
            print(f"--- {e.id}: status {http_get(e.metrics_port, '/_switchyard/status')[2][:2000]!r}", file=sys.stderr)
        except OSError as exc:
            print(f"--- {e.id}: no status ({exc})", file=sys.stderr)
        try:
            with open(os.path.join(e.prefix, "error.log"), errors="replace") as f:
                print(f"--- {e.id}: error.log\n" + "".join(f.readlines()[-20:]), file=sys.stderr)
        except OSError:
            pass
    missing = [e.id for e in missing]
    raise TimeoutError(f"{len(missing)} edges did not apply version {version} within {timeout}s: {missing[:10]}")


def http_get(port, path, host=None, timeout=3):
    """(status, headers dict, body) of one HTTP/1.0 GET on loopback."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host or 'localhost'}\r\n\r\n".encode())
        data = b""
        for _ in range(1000):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def edge_lag_ms(edge):
    """The edge's own propagation lag of its last catch-up (commit time minus the change's
    Redis timestamp), from its /metrics."""
    status, _, body = http_get(edge.metrics_port, "/metrics")
    if status != 200:
        return None
    m = re.search(rb"^switchyard_edge_config_propagation_lag_seconds(?:\{[^}]*\})? ([0-9.e+-]+)$", body, re.M)
    return float(m.group(1)) * 1000 if m else None


def memory_kib(pid):
    """(rss, pss) KiB of one process from /proc/<pid>/smaps_rollup."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def pct(values, p):
    """The p-th percentile (nearest rank) of values."""
    s = sorted(values)
    if not s:
        return None
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def summary(values, digits=1):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"n": len(values), "p50": round(pct(values, 50), digits), "p90": round(pct(values, 90), digits),
            "p99": round(pct(values, 99), digits), "max": round(max(values), digits),
            "mean": round(statistics.fmean(values), digits)}


# --- the measurements --------------------------------------------------------------------

class Bench:
    def __init__(self, args, base):
        self.args = args
        self.base = base
        self.counter = 0
        self.idle_rate = None   # the master's CPU and commands per second without changes

    def put_route(self, controller, label):
        """A new route (a new host) through the API; returns (version, API seconds)."""
        self.counter += 1
        rid = f"{label}-{self.counter}"
        body = {"host": f"{rid}.many.test", "path": "/", "match": "prefix", "upstream": "many"}
        t0 = time.monotonic()
        r = controller.request("PUT", f"/api/v1/routes/{rid}", body)
        dt = time.monotonic() - t0
        if r.status_code not in (200, 201):
            raise RuntimeError(f"PUT route {rid}: {r.status_code} {r.text}")
        return r.json()["version"], dt, rid

    def propagation(self, controller, master, edges, label):
        """args.changes new routes, one after the other; per change the time until every
        edge registered its version, and every edge's own commit lag."""
        args = self.args
        poll = master.client()
        per_change, first_seen_all, edge_lags, api_ms, polls_total = [], [], [], [], 0
        try:
            for _ in range(args.changes):
                start = time.monotonic()
                version, api_s, rid = self.put_route(controller, label)
                seen, polls = wait_all_applied(poll, edges, version, args.timeout, args.poll_ms / 1000, start)
                polls_total += polls
                per_change.append(max(seen) * 1000)
                first_seen_all += [s * 1000 for s in seen]
                api_ms.append(api_s * 1000)
                with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
                    edge_lags += list(pool.map(edge_lag_ms, edges))
                time.sleep(args.gap)
            # every edge serves the last route (not only registered it)
            host = f"{rid}.many.test"
            with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
                answers = list(pool.map(lambda e: http_get(e.port, "/", host), edges))
            bad = [(e.id, a[0]) for e, a in zip(edges, answers) if a[0] != 200 or a[1].get("x-backend") != "many-1"]
            if bad:
                raise AssertionError(f"edges not serving {host}: {bad[:10]}")
        finally:
            poll.close()
        return {
            "changes": args.changes,
            "all_edges_ms": summary(per_change),
            "all_edges_ms_each": [round(v, 1) for v in per_change],
            "per_edge_registered_ms": summary(first_seen_all),
            "per_edge_commit_lag_ms": summary(edge_lags),
            "api_put_ms": summary(api_ms),
            "polls": polls_total,
            "poll_interval_ms": args.poll_ms,
            "served_last_route": len(edges),
        }

    def cpu_per_change(self, controller, nodes, edges, label):
        """Rounds of a window without changes and a window with args.cpu_changes changes
        spread over it: Redis (each node) and edge CPU per change = (with - without) / k."""
        args = self.args
        window, k = args.cpu_window, args.cpu_changes
        edge_pids = [p for e in edges for p in e.pids()]
        rounds = []
        for _ in range(args.cpu_rounds):
            row = {}
            for phase in ("idle", "changes"):
                s0 = {n.name: commandstats(n) for n in nodes}
                c0 = {n.name: (n.cpu(), redis_counters(n)) for n in nodes}
                e0 = proc_cpu(edge_pids)
                t0 = time.monotonic()
                if phase == "idle":
                    time.sleep(window)
                else:
                    for j in range(k):
                        self.put_route(controller, label + "-cpu")
                        # spread the changes evenly over the window (bounded sleep)
                        time.sleep(max(0.0, min(window, t0 + (j + 1) * window / k - time.monotonic())))
                    time.sleep(max(0.0, min(window, t0 + window - time.monotonic())))
                elapsed = time.monotonic() - t0
                c1 = {n.name: (n.cpu(), redis_counters(n)) for n in nodes}
                e1 = proc_cpu(edge_pids)
                s1 = {n.name: commandstats(n) for n in nodes}
                row[phase] = {
                    "seconds": elapsed,
                    "redis": {name: {"cpu_s": c1[name][0][0] - c0[name][0][0],
                                     "cpu_ns_s": c1[name][0][1] - c0[name][0][1],
                                     **{key: c1[name][1][key] - c0[name][1][key] for key in c0[name][1]}}
                              for name in c0},
                    "edges_cpu_ns_s": e1[1] - e0[1],
                    "commandstats": {name: commandstats_diff(s0[name], s1[name]) for name in s0},
                }
            rounds.append(row)
            time.sleep(0.5)
        # per change, per node: (changes window - idle window scaled to the same length) / k
        out = {"rounds": args.cpu_rounds, "window_s": window, "changes_per_window": k, "per_change": {}}
        for n in nodes:
            vals = {"cpu_ms": [], "commands": [], "net_out_bytes": [], "net_in_bytes": [], "repl_bytes": [],
                    "idle_cpu_pct": [], "idle_commands_per_s": [], "idle_repl_bytes_per_s": [],
                    "idle_aof_bytes_per_s": []}
            for row in rounds:
                idle, busy = row["idle"], row["changes"]
                scale = busy["seconds"] / idle["seconds"]
                ri, rb = idle["redis"][n.name], busy["redis"][n.name]
                vals["cpu_ms"].append((rb["cpu_ns_s"] - ri["cpu_ns_s"] * scale) / k * 1000)
                vals["commands"].append((rb["commands"] - ri["commands"] * scale) / k)
                vals["net_out_bytes"].append((rb["net_out"] - ri["net_out"] * scale) / k)
                vals["net_in_bytes"].append((rb["net_in"] - ri["net_in"] * scale) / k)
                vals["repl_bytes"].append((rb["repl_offset"] - ri["repl_offset"] * scale) / k)
                vals["idle_repl_bytes_per_s"].append(ri["repl_offset"] / idle["seconds"])
                vals["idle_aof_bytes_per_s"].append(ri["aof_bytes"] / idle["seconds"])
                vals["idle_cpu_pct"].append(ri["cpu_ns_s"] / idle["seconds"] * 100)
                vals["idle_commands_per_s"].append(ri["commands"] / idle["seconds"])
            out["per_change"][n.name] = {key: {"median": round(statistics.median(v), 3),
                                               "each": [round(x, 3) for x in v]} for key, v in vals.items()}
            # which commands: calls per second without changes, per edge; extra calls per change
            idle_s = sum(row["idle"]["seconds"] for row in rounds)
            busy_s = sum(row["changes"]["seconds"] for row in rounds)
            idle_calls, busy_calls = {}, {}
            for row in rounds:
                for cmd, (calls, _usec) in row["idle"]["commandstats"][n.name].items():
                    idle_calls[cmd] = idle_calls.get(cmd, 0) + calls
                for cmd, (calls, _usec) in row["changes"]["commandstats"][n.name].items():
                    busy_calls[cmd] = busy_calls.get(cmd, 0) + calls
            out["per_change"][n.name]["idle_calls_per_edge_per_s"] = {
                cmd: round(calls / idle_s / len(edges), 3) for cmd, calls in sorted(idle_calls.items()) if calls}
            fcall = [row["changes"]["commandstats"][n.name].get("fcall", (0, 0)) for row in rounds]
            if sum(c for c, _ in fcall):
                # one sy_apply, nested commands included: Redis answers nobody else meanwhile
                out["per_change"][n.name]["fcall_usec_per_call"] = round(
                    sum(u for _, u in fcall) / sum(c for c, _ in fcall), 1)
            out["per_change"][n.name]["calls_per_change"] = {
                cmd: round((calls - idle_calls.get(cmd, 0) * busy_s / idle_s) / (k * len(rounds)), 1)
                for cmd, calls in sorted(busy_calls.items()) if calls}
            ticks_total = sum(row["changes"]["redis"][n.name]["cpu_s"] for row in rounds)
            out["per_change"][n.name]["proc_stat_cpu_s_in_change_windows"] = round(ticks_total, 2)
        first = nodes[0].name
        idle_s = sum(row["idle"]["seconds"] for row in rounds)
        self.idle_rate = {
            "cpu_ms_per_s": sum(row["idle"]["redis"][first]["cpu_ns_s"] for row in rounds) * 1000 / idle_s,
            "commands_per_s": sum(row["idle"]["redis"][first]["commands"] for row in rounds) / idle_s}
        edge_vals = []
        for row in rounds:
            idle, busy = row["idle"], row["changes"]
            scale = busy["seconds"] / idle["seconds"]
            edge_vals.append((busy["edges_cpu_ns_s"] - idle["edges_cpu_ns_s"] * scale) / k * 1000)
        out["edges_cpu_ms_per_change_all_edges"] = {"median": round(statistics.median(edge_vals), 2),
                                                    "each": [round(x, 2) for x in edge_vals]}
        out["edges_cpu_ms_per_change_per_edge"] = round(statistics.median(edge_vals) / len(edges), 3)
        out["edges_idle_cpu_pct_all_edges"] = round(statistics.median(
            row["idle"]["edges_cpu_ns_s"] / row["idle"]["seconds"] * 100 for row in rounds), 2)
        return out

    def memory(self, nodes, edges, redis_before):
        rss, pss = [], []
        for e in edges:
            r = p = 0
            for pid in e.pids():
                a, b = memory_kib(pid)
                r, p = r + a, p + b
            rss.append(r / 1024)
            pss.append(p / 1024)
        out = {"edge_rss_mib": summary(rss, 2), "edge_pss_mib": summary(pss, 2),
               "edges_total_pss_mib": round(sum(pss), 1), "redis": {}}
        for n in nodes:
            c = n.client()
            try:
                mem = c.info("memory")
                clients = c.info("clients")
                lines = c.call("CLIENT", "LIST").splitlines()
            finally:
                c.close()
            tot = []
            for line in lines:
                f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                if f.get("cmd") in ("client|list", "info"):
                    continue  # ours
                tot.append(int(f.get("tot-mem", 0)))
            used = int(mem["used_memory"])
            out["redis"][n.name] = {
                "used_memory_mib": round(used / 2**20, 2),
                "used_memory_per_edge_kib": round((used - redis_before.get(n.name, used)) / len(edges) / 1024, 1),
                "connected_clients": int(clients["connected_clients"]),
                "clients_per_edge": round(int(clients["connected_clients"]) / len(edges), 2),
                "client_tot_mem_kib": summary([t / 1024 for t in tot], 1),
                "rss_mib": round(int(mem["used_memory_rss"]) / 2**20, 1),
            }
        return out

    def storm(self, controller, master, edges):
        """Restart the master (SIGTERM: the AOF is complete), write one change as soon as it
        answers, and time every edge back: subscribed, registered, at that version."""
        args = self.args
        def poll_commands():
            return ([("PUBSUB", "NUMSUB", EVENTS)] +
                    [("HMGET", BASE + "edge:" + e.id, "applied_version", "last_seen") for e in edges])

        c = master.client()
        try:
            base_version = int(c.call("GET", BASE + "version"))
            # the AOF holds every heartbeat since the start; rewritten, it holds the data only,
            # so what follows is the edges coming back, not Redis replaying old heartbeats
            aof_before = int(c.info("persistence").get("aof_current_size", 0))
            c.call("BGREWRITEAOF")
            bounded_wait(lambda: c.info("persistence").get("aof_rewrite_in_progress") == "0"
                         and c.info("persistence").get("aof_rewrite_scheduled") == "0", 60, 0.1,
                         what="AOF rewrite")
            aof_after = int(c.info("persistence").get("aof_current_size", 0))
            # what one of our polls costs Redis, to take it out of the storm's numbers
            calib = 50
            cpu_a, cnt_a = master.cpu(), redis_counters(master)
            for _ in range(calib):
                c.pipeline(poll_commands())
            cpu_b, cnt_b = master.cpu(), redis_counters(master)
            poll_cpu_s = (cpu_b[1] - cpu_a[1]) / calib
            poll_cmds = (cnt_b["commands"] - cnt_a["commands"]) / calib
            poll_out = (cnt_b["net_out"] - cnt_a["net_out"]) / calib
        finally:
            c.close()
        stop_at = time.monotonic()
        master.stop()
        down_at = time.monotonic()
        time.sleep(args.storm_down)
        master.start()
        # from the new process's start: the edges connect as soon as it listens, even while
        # it still loads the AOF (answering -LOADING)
        up = master.spawned_at
        cpu_at_pong = master.cpu()
        # a heartbeat stamped after this came from a reconnected edge (the AOF holds the ones
        # from before the stop, at least storm_down earlier); the margin covers the edges'
        # cached clocks (ngx.now)
        up_wall_ms = int(time.time() * 1000) - int(min(500, args.storm_down * 500))
        cpu0 = (0.0, 0.0)   # a new process: everything it did since it started counts
        cnt0 = {"commands": 0, "net_out": 0}
        version, put_s = None, None
        for _ in range(200):  # the controller reconnects: 503 until it does (bounded)
            try:
                version, api_s, _rid = self.put_route(controller, "storm")
                put_s = time.monotonic() - up
                break
            except RuntimeError:
                time.sleep(0.05)
        if version is None:
            raise RuntimeError("the controller never wrote after the restart")
        poll = master.client()
        subscribed_s = registered_s = None
        polls = 0
        interval = 0.02
        try:
            seen = [None] * len(edges)
            deadline = up + args.timeout
            for _ in range(int(args.timeout / interval) + 10):
                now = time.monotonic()
                polls += 1
                replies = poll.pipeline(poll_commands())
                subs = replies[0][1]
                if subscribed_s is None and subs >= len(edges):
                    subscribed_s = now - up
                beats = 0
                for k, (v, last) in enumerate(replies[1:]):
                    if last and int(last) >= up_wall_ms:
                        beats += 1
                    if seen[k] is None and v and int(v) >= version:
                        seen[k] = now - up
                if registered_s is None and beats >= len(edges):
                    registered_s = now - up
                if subscribed_s is not None and registered_s is not None and all(s is not None for s in seen):
                    break
                if now >= deadline:
                    raise TimeoutError(f"storm: {sum(s is None for s in seen)} edges not back within {args.timeout}s")
                time.sleep(interval)
        finally:
            poll.close()
        converged = time.monotonic()
        cpu1 = master.cpu()
        cnt1 = redis_counters(master)
        window = converged - up
        cpu_ms = (cpu1[1] - cpu0[1] - polls * poll_cpu_s) * 1000
        commands = cnt1["commands"] - cnt0["commands"] - polls * poll_cmds
        net_out = cnt1["net_out"] - cnt0["net_out"] - polls * poll_out
        # the same window without a restart: the edges' ordinary heartbeats and checks
        idle = self.idle_rate
        idle_cpu_ms = idle["cpu_ms_per_s"] * window if idle else 0.0
        idle_commands = idle["commands_per_s"] * window if idle else 0.0
        return {
            "edges": len(edges),
            "aof_bytes_before_rewrite": aof_before,
            "aof_bytes_after_rewrite": aof_after,
            "stop_s": round(down_at - stop_at, 2),
            "down_s": round(up - down_at, 2),
            "pong_s_after_start": round(master.pong_at - up, 3),
            "version_before": base_version,
            "change_written_s_after_up": round(put_s, 3),
            "all_subscribed_s": round(subscribed_s, 3),
            "all_registered_s": round(registered_s, 3),
            "all_applied_s": round(max(seen), 3),
            "applied_s": summary(seen, 3),
            "our_polls": polls,
            "our_poll_cost_ms": round(poll_cpu_s * 1000, 3),
            "redis_cpu_ms_at_pong": round(cpu_at_pong[1] * 1000, 1),
            "redis_cpu_ms_until_converged": round(cpu_ms, 1),
            "redis_cpu_ms_per_edge": round(cpu_ms / len(edges), 3),
            "redis_cpu_ms_per_edge_above_idle": round((cpu_ms - idle_cpu_ms) / len(edges), 3),
            "commands_until_converged": round(commands),
            "commands_per_edge": round(commands / len(edges), 1),
            "commands_per_edge_above_idle": round((commands - idle_commands) / len(edges), 1),
            "net_out_bytes_per_edge": round(net_out / len(edges)),
            "window_s": round(window, 3),
            "note": "Redis CPU and commands from the moment it answered PING (the AOF already loaded) "
                    "until every edge had re-subscribed, re-registered and applied the change, our own "
                    "polls taken out (their cost measured before the stop); *_above_idle also takes out "
                    "what the edges cost in the same time without a restart (the idle windows)",
        }


def reload_storm(bench, controller, master, edges):
    """Every edge reloads everything at once: args.reload_routes routes loaded through the API,
    one document edited by hand, `FCALL sy_digest` adopts it (an `op resync` entry). Time until
    every edge registered the new version, Redis CPU, commands and bytes per edge, our polls
    taken out."""
    args = bench.args
    routes = [{"id": f"bulk-{i}", "host": f"bulk-{i}.many.test", "path": "/", "upstream": "many"}
              for i in range(args.reload_routes)]
    version = None
    for i in range(0, len(routes), 1000):
        r = controller.request("POST", "/api/v1/apply", {"routes": routes[i:i + 1000]})
        if r.status_code not in (200, 201):
            raise RuntimeError(f"apply: {r.status_code} {r.text[:300]}")
        version = r.json()["version"]
    c = master.client()
    try:
        wait_all_applied(c, edges, version, args.timeout, 0.05)
        before = [json.loads(http_get(e.metrics_port, "/_switchyard/status")[2])["syncer"]["full_reloads"]
                  for e in edges]
        key = BASE + "route:bulk-0"
        c.call("SET", key, c.call("GET", key) + " ")  # a hand edit: same route, other bytes
        commands = [("HGET", BASE + "edge:" + e.id, "applied_version") for e in edges]
        calib = 20
        a, ca = master.cpu(), redis_counters(master)
        for _ in range(calib):
            c.pipeline(commands)
        b, cb = master.cpu(), redis_counters(master)
        poll_cpu = (b[1] - a[1]) / calib
        poll_cmds = (cb["commands"] - ca["commands"]) / calib
        poll_out = (cb["net_out"] - ca["net_out"]) / calib
        dbsize = c.call("DBSIZE")
        cpu0, cnt0 = master.cpu(), redis_counters(master)
        start = time.monotonic()
        reply = c.call("FCALL", "sy_digest", "1", BASE + "version")
        target = int(reply[0])
        seen, polls = wait_all_applied(c, edges, target, args.timeout, 0.02, start)
        elapsed = time.monotonic() - start
        cpu1, cnt1 = master.cpu(), redis_counters(master)
    finally:
        c.close()
    after = [json.loads(http_get(e.metrics_port, "/_switchyard/status")[2])["syncer"]["full_reloads"]
             for e in edges]
    reloaded = sum(1 for x, y in zip(before, after) if y > x)
    if reloaded != len(edges):
        raise AssertionError(f"only {reloaded} of {len(edges)} edges did a full reload")
    idle = bench.idle_rate
    cpu_ms = (cpu1[1] - cpu0[1] - polls * poll_cpu) * 1000
    cmds = cnt1["commands"] - cnt0["commands"] - polls * poll_cmds
    out = cnt1["net_out"] - cnt0["net_out"] - polls * poll_out
    return {
        "routes": args.reload_routes,
        "redis_keys": dbsize,
        "edges": len(edges),
        "edges_that_reloaded": reloaded,
        "all_applied_s": round(max(seen), 3),
        "applied_s": summary(seen, 3),
        "our_polls": polls,
        "redis_cpu_ms": round(cpu_ms, 1),
        "redis_cpu_ms_per_edge": round(cpu_ms / len(edges), 3),
        "redis_cpu_ms_per_edge_above_idle": (round((cpu_ms - idle["cpu_ms_per_s"] * elapsed) / len(edges), 3)
                                             if idle else None),   # None: the idle windows were skipped
        "commands_per_edge": round(cmds / len(edges), 1),
        "net_out_bytes_per_edge": round(out / len(edges)),
        "note": "sy_digest's own run (one FCALL over every document) included; our polls taken out",
    }


def scenario(bench, name, master, replicas, controller, n):
    args = bench.args
    args.tag = {"master": "m", "replicas": "r"}[name]
    nodes = [master] + replicas
    before = {}
    for node in nodes:
        c = node.client()
        try:
            before[node.name] = int(c.info("memory")["used_memory"])
        finally:
            c.close()
    if replicas:
        reads = lambda i: replicas if i % 2 == 0 else list(reversed(replicas))  # noqa: E731
    else:
        reads = lambda i: None  # noqa: E731
    t0 = time.monotonic()
    edges = start_edges(bench.base, n, master, reads, args)
    started_s = time.monotonic() - t0
    c = master.client()
    try:
        version = int(c.call("GET", BASE + "version"))
        seen, _ = wait_all_applied(c, edges, version, max(60, n * 0.5), 0.1)
    finally:
        c.close()
    ready_s = time.monotonic() - t0
    print(f"[{name}] {n} edges started in {started_s:.1f}s, all at version {version} after {ready_s:.1f}s",
          flush=True)
    time.sleep(args.settle)
    result = {"edges": n, "start_s": round(started_s, 1), "ready_s": round(ready_s, 1)}
    result["memory"] = bench.memory(nodes, edges, before)
    print(f"[{name}] memory: {json.dumps(result['memory']['edge_pss_mib'])}", flush=True)
    skip = {p.strip() for p in args.skip.split(",") if p.strip()}
    if "propagation" not in skip:
        result["propagation"] = bench.propagation(controller, master, edges, name)
        print(f"[{name}] propagation (all edges, ms): {json.dumps(result['propagation']['all_edges_ms'])}",
              flush=True)
    if "cpu" not in skip:
        result["cpu"] = bench.cpu_per_change(controller, nodes, edges, name)
        print(f"[{name}] redis CPU per change (ms): "
              + ", ".join(f"{k}={v['cpu_ms']['median']}" for k, v in result["cpu"]["per_change"].items()),
              flush=True)
    if name == "master" and not args.no_storm:
        result["storm"] = bench.storm(controller, master, edges)
        print(f"[{name}] storm: {json.dumps(result['storm'])}", flush=True)
    if name == "master" and args.reload_routes:
        result["reload_storm"] = reload_storm(bench, controller, master, edges)
        print(f"[{name}] full-reload storm: {json.dumps(result['reload_storm'])}", flush=True)
    if replicas:
        c = master.client()
        try:
            result["replication"] = {r.name: None for r in replicas}
            repl = c.info("replication")
            result["replication"] = {k: v for k, v in repl.items() if k.startswith("slave")}
        finally:
            c.close()
    PROCS.stop([e.proc for e in edges])
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="5 edges, 3 changes, short windows: proves the harness")
    ap.add_argument("--edges", type=int, default=200)
    ap.add_argument("--changes", type=int, default=20, help="changes timed for propagation, per scenario")
    ap.add_argument("--cpu-rounds", type=int, default=3)
    ap.add_argument("--cpu-window", type=float, default=8.0, help="seconds per idle and per changes window")
    ap.add_argument("--cpu-changes", type=int, default=16, help="changes in each changes window")
    ap.add_argument("--poll-ms", type=float, default=5.0, help="registration poll interval")
    ap.add_argument("--gap", type=float, default=0.3, help="pause between timed changes (s)")
    ap.add_argument("--settle", type=float, default=3.0, help="pause after the edges are ready (s)")
    ap.add_argument("--timeout", type=float, default=60.0, help="bound on each convergence wait (s)")
    ap.add_argument("--storm-down", type=float, default=2.0, help="how long the master is down (s)")
    ap.add_argument("--config-dict", default="1m", help="--config-dict-size of every edge")
    ap.add_argument("--other-dicts", default="1m",
                    help="size of every other lua_shared_dict in the rendered conf, or 'default'")
    ap.add_argument("--scenarios", default="master,replicas")
    ap.add_argument("--no-storm", action="store_true")
    ap.add_argument("--reload-routes", type=int, default=2000,
                    help="routes loaded for the full-reload storm (master scenario); 0: none")
    ap.add_argument("--skip", default="",
                    help="comma list of parts not to run in a scenario: propagation, cpu")
    ap.add_argument("--out", help="results JSON (default docs/benchmarks-many-edges.json; none with --smoke)")
    args = ap.parse_args()
    if args.smoke:
        args.edges, args.changes, args.cpu_rounds, args.cpu_window, args.cpu_changes = 5, 3, 1, 1.0, 4
        args.settle, args.storm_down, args.timeout, args.gap = 0.5, 0.5, 20.0, 0.05
        args.reload_routes = min(args.reload_routes, 50)
    out_path = args.out or (None if args.smoke else os.path.join(ROOT, "docs/benchmarks-many-edges.json"))
    if not os.path.exists(BIN):
        sys.exit(f"no switchyard binary at {BIN}: swift build -c release --product switchyard")

    # file descriptors: our own polls plus Redis (which inherits the limit) for every edge
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    need_mib = args.edges * 12 + 1024
    avail_mib = int(open("/proc/meminfo").read().split("MemAvailable:")[1].split()[0]) // 1024
    if need_mib > avail_mib:
        sys.exit(f"{args.edges} edges want ~{need_mib} MiB, {avail_mib} MiB available")

    signal.signal(signal.SIGTERM, _on_signal)
    base = tempfile.mkdtemp(prefix="sy-many-edges-")
    os.chmod(base, 0o755)  # nginx workers (nobody, when started as root) keep their snapshot under it
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                           "load_avg_at_start": os.getloadavg(),
                           "note": "2 cores shared with other sessions compiling Swift at the same time: "
                                   "wall times include waiting for a CPU; per-change CPU and counts do less"},
               "switchyard_bin": BIN,
               "redis": subprocess.run([REDIS_SERVER, "--version"], capture_output=True, text=True).stdout.strip(),
               "nginx_edge": {"workers": 1, "config_dict_size": args.config_dict, "other_dicts": args.other_dicts},
               "command": "python3 bench/many_edges.py " + " ".join(sys.argv[1:]),
               "scenarios": {}}
    backends = None
    failed = True
    try:
        backends = start_backends("many-1")
        bench = Bench(args, base)
        master = RedisNode(base, "master")
        controller = Controller(master, base)
        controller.ok("PUT", "/api/v1/upstreams/many",
                      {"endpoints": [{"address": f"127.0.0.1:{backends['many-1'].port}"}]})
        replicas = []
        for name in [s.strip() for s in args.scenarios.split(",") if s.strip()]:
            if name == "replicas" and not replicas:
                replicas = [RedisNode(base, f"replica{i}", replica_of=master) for i in (1, 2)]
            elif name not in ("master", "replicas"):
                sys.exit(f"unknown scenario {name}")
            results["scenarios"][name] = scenario(bench, name, master, replicas if name == "replicas" else [],
                                                  controller, args.edges)
        results["load_avg_at_end"] = os.getloadavg()
        failed = False
    finally:
        PROCS.stop_all()
        try:
            controller.stop()  # noqa: F821 - may not exist if start-up failed
        except Exception:  # noqa: BLE001
            pass
        if backends:
            for b in backends.values():
                try:
                    b.shutdown()
                    b.server_close()
                except Exception:  # noqa: BLE001
                    pass
        if failed or os.environ.get("SY_KEEP"):
            print(f"logs kept in {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
    if out_path:
        with open(out_path, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
        print(f"wrote {out_path}")
    print("ok" if args.smoke else json.dumps(results["scenarios"], indent=1)[:4000])


if __name__ == "__main__":
    main()
