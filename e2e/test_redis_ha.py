"""Redis high availability (docs/redis-ha.md): a master, two replicas and three sentinels,
all real redis-server processes on loopback ports, started and stopped here.

The failover test kills the master (SIGKILL) while requests run through both edges and
the API takes ~20 writes a second: no proxied request fails, writes answer 503 with
Retry-After in the gap and succeed after it, the controller, both edges and the prober
work against the new master within 5 s of its promotion, and every write the API
acknowledged (with --redis-min-replicas-ack 1) is on the new master.
"""
import json
import os
import shutil
import signal
import threading
import time

import pytest
import requests

from harness import (BASE, Controller, Edge, Process, Prober, RequestLoop, _tcp_open,
                     free_port, start_backends, wait_until)

MASTER_NAME = "sy"


class Server:
    """One redis-server: a data node (master or replica) or a sentinel."""

    def __init__(self, workdir, replica_of=None, sentinel_of=None):
        self.port = free_port()
        self.dir = os.path.join(workdir, f"redis-{self.port}")
        os.makedirs(self.dir)
        exe = shutil.which("redis-server") or "redis-server"
        if sentinel_of is None:
            argv = [exe, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                    "--appendonly", "no", "--dir", self.dir]
            if replica_of is not None:
                argv += ["--replicaof", "127.0.0.1", str(replica_of.port)]
        else:
            conf = os.path.join(self.dir, "sentinel.conf")
            with open(conf, "w") as f:
                f.write(f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
                        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {sentinel_of.port} 2\n"
                        # not 1000: a sentinel PINGs a new master once a second, so
                        # with 1000 it may call a just-promoted master down again
                        f"sentinel down-after-milliseconds {MASTER_NAME} 1500\n"
                        f"sentinel failover-timeout {MASTER_NAME} 4000\n"
                        f"sentinel parallel-syncs {MASTER_NAME} 2\n")
            argv = [exe, conf, "--sentinel"]
        self.process = Process(f"redis-{self.port}", argv, log_dir=self.dir)
        wait_until(lambda: _tcp_open(self.port), 10, what=f"redis-server on {self.port}")

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def cli(self, *args):
        out = _run_cli(self.port, *args)
        return out

    def kill(self):
        self.process.stop(sig=signal.SIGKILL)

    def stop(self):
        if self.process.alive():
            self.process.stop()


def _run_cli(port, *args):
    import subprocess
    out = subprocess.run(["redis-cli", "-p", str(port), "--raw", *[str(a) for a in args]],
                         capture_output=True, timeout=5)
    return out.stdout.decode().rstrip("\n")


class Topology:
    """Master, two replicas, three sentinels."""

    def __init__(self, workdir):
        self.master = Server(workdir)
        self.replicas = [Server(workdir, replica_of=self.master) for _ in range(2)]
        self.sentinels = [Server(workdir, sentinel_of=self.master) for _ in range(3)]
        # the sentinels must know the replicas and each other before a failover can happen
        wait_until(self._ready, 30, interval=0.2, what="sentinels that know 2 replicas and 2 peers")
        self.address = self.master.address   # (unused by roles that use the sentinels)
        self.password = None

    def _ready(self):
        for s in self.sentinels:
            replicas = s.cli("SENTINEL", "replicas", MASTER_NAME).count("slave-priority")
            peers = s.cli("SENTINEL", "sentinels", MASTER_NAME).count("runid")
            if replicas < 2 or peers < 2:
                return False
        return all(r.cli("INFO", "replication").find("master_link_status:up") >= 0
                   for r in self.replicas)

    @property
    def sentinel_arg(self):
        return ",".join(s.address for s in self.sentinels)

    def current_master_port(self):
        """The master's port as a majority of sentinels names it (None when unknown)."""
        votes = {}
        for s in self.sentinels:
            try:
                lines = s.cli("SENTINEL", "get-master-addr-by-name", MASTER_NAME).splitlines()
            except Exception:  # noqa: BLE001 - a sentinel may be busy; ask the others
                continue
            if len(lines) == 2:
                votes[int(lines[1])] = votes.get(int(lines[1]), 0) + 1
        best = max(votes.items(), key=lambda kv: kv[1], default=(None, 0))
        return best[0] if best[1] >= 2 else None

    def server(self, port):
        return next(s for s in [self.master, *self.replicas] if s.port == port)

    def stop(self):
        for s in [*self.sentinels, *self.replicas, self.master]:
            s.stop()


@pytest.fixture(scope="module")
def topology(workdir):
    t = Topology(workdir)
    yield t
    t.stop()


def sentinel_flags(topology):
    return ["--redis-sentinel", topology.sentinel_arg, "--redis-master", MASTER_NAME]


@pytest.fixture(scope="module")
def ha_stack(topology, workdir):
    backends = start_backends("h1", "h2")
    controller = Controller(topology, workdir,
                            extra=[*sentinel_flags(topology), "--redis-min-replicas-ack", "1",
                                   "--redis-ack-timeout-ms", "500"])
    edges = [Edge(topology, workdir, f"ha-edge-{n}", extra=sentinel_flags(topology))
             for n in ("a", "b")]
    prober = Prober(topology, workdir, "ha-prober", lease_ms=3000,
                    extra=sentinel_flags(topology))
    yield controller, edges, prober, backends
    for p in [prober, *edges, controller]:
        p.stop()
    for b in backends.values():
        b.shutdown()
        b.server_close()


def wall_ms():
    return int(time.time() * 1000)


def test_failover_under_load(topology, ha_stack):
    controller, edges, prober, backends = ha_stack
    controller.upstream("ha-pool", *[b.port for b in backends.values()])
    controller.route("ha", "ha.test", "/", "ha-pool")
    for e in edges:
        wait_until(lambda e=e: e.backend("/", "ha.test") in ("h1", "h2"), 10,
                   what=f"{e.id} serves ha.test")
    wait_until(lambda: topology.master.cli("GET", BASE + "prober:lease") == prober.id, 10,
               what="the prober holds the lease")
    old_port = topology.master.port
    assert topology.current_master_port() == old_port

    loop = RequestLoop([(e, "ha.test", "/") for e in edges], max_seconds=45, pause=0.005).start()
    writes = []          # (monotonic, wall ms, route id, status, Retry-After)
    stop_writes = threading.Event()

    def writer():
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {controller.token}"
        deadline = time.monotonic() + 40
        i = 0
        while not stop_writes.is_set() and time.monotonic() < deadline and i < 1000:
            i += 1
            rid = f"w{i}"
            body = {"host": f"{rid}.ha.test", "path": "/", "match": "prefix",
                    "upstream": "ha-pool", "priority": 0}
            try:
                r = session.put(f"{controller.url}/api/v1/routes/{rid}", json=body, timeout=5)
                writes.append((time.monotonic(), wall_ms(), rid, r.status_code,
                               r.headers.get("Retry-After")))
            except requests.RequestException as e:
                writes.append((time.monotonic(), wall_ms(), rid, repr(e), None))
            time.sleep(0.05)   # ~20 writes/s

    wthread = threading.Thread(target=writer, daemon=True)
    wthread.start()
    time.sleep(2)
    killed_at = time.monotonic()
    topology.master.kill()

    # the promotion, as the sentinels see it
    promoted = {}

    def switched():
        port = topology.current_master_port()
        if port is not None and port != old_port:
            promoted["port"], promoted["at"], promoted["wall"] = port, time.monotonic(), wall_ms()
            return True
        return False
    wait_until(switched, 20, interval=0.05, what="the sentinels promote a replica")
    new = topology.server(promoted["port"])

    # who follows, and when (seconds after the promotion)
    follow = {}

    def followed():
        now = time.monotonic()
        for e in edges:
            seen = new.cli("HGET", BASE + f"edge:{e.id}", "last_seen")
            if e.id not in follow and seen.isdigit() and int(seen) >= promoted["wall"]:
                follow[e.id] = now - promoted["at"]
        hb = new.cli("GET", BASE + "prober:heartbeat")
        if "prober" not in follow and hb:
            if json.loads(hb).get("at", 0) >= promoted["wall"]:
                follow["prober"] = now - promoted["at"]
        ok_after = [w for w in writes if w[0] >= promoted["at"] and w[3] in (200, 201)]
        if "controller" not in follow and ok_after:
            follow["controller"] = ok_after[0][0] - promoted["at"]
        return len(follow) == 4
    wait_until(followed, 8, interval=0.05, what="controller, edges and prober on the new master")

    # writes and requests keep going against the new master
    time.sleep(max(0.0, promoted["at"] + 6.5 - time.monotonic()))
    stop_writes.set()
    wthread.join(10)
    loop.stop()

    gap = promoted["at"] - killed_at
    refused_at = [w[0] for w in writes if w[3] not in (200, 201)]
    write_gap = (max(refused_at) - min(refused_at)) if refused_at else 0
    print(f"\nfailover: promotion {gap:.2f} s after the kill; followed after (s): "
          + ", ".join(f"{k} {v:.2f}" for k, v in sorted(follow.items()))
          + f"; {loop.sent} proxied requests, {len(writes)} writes, {len(refused_at)} refused"
          + f" over {write_gap:.2f} s")

    assert loop.failures == [], loop.failures[:5]
    assert loop.sent > 200
    assert all(v < 5 for v in follow.values()), follow

    statuses = [w[3] for w in writes]
    acked = [w for w in writes if w[3] in (200, 201)]
    refused = [w for w in writes if w[3] not in (200, 201)]
    # the gap: every failed write is a 503 with Retry-After, and there was a gap
    assert refused, "no write was refused: the master was not killed under the writes"
    assert all(w[3] == 503 and w[4] for w in refused), refused[:5]
    # after it, writes succeed again
    late = [w for w in writes if w[0] >= promoted["at"] + 5]
    assert late and all(w[3] in (200, 201) for w in late), late[:5]
    assert len(acked) > 50, statuses

    # no acknowledged write is lost: every one is on the new master
    missing = [w[2] for w in acked if new.cli("EXISTS", BASE + f"route:{w[2]}") != "1"]
    assert missing == [], missing

    # and the edges converge on what the new master holds
    def converged():
        version = new.cli("GET", BASE + "version")
        digest = new.cli("GET", BASE + "digest")
        for e in edges:
            h = new.cli("HMGET", BASE + f"edge:{e.id}", "applied_version", "digest").splitlines()
            if h != [version, digest]:
                return False
        return True
    wait_until(converged, 10, interval=0.1, what="edges at the new master's version and digest")
    last = acked[-1][2]
    for e in edges:
        assert e.backend("/", f"{last}.ha.test") in ("h1", "h2")


def numsub(server, channel=BASE + "events"):
    out = server.cli("PUBSUB", "NUMSUB", channel).splitlines()
    return int(out[1]) if len(out) == 2 else -1


def test_edge_reads_from_a_replica_and_moves_when_it_stops(workdir):
    """`--redis-read r1,r2`: the syncer reads and subscribes at r1, registers at the
    master; r1 stops: it moves to r2 and keeps converging."""
    master = Server(workdir)
    r1, r2 = Server(workdir, replica_of=master), Server(workdir, replica_of=master)
    backends = start_backends("r1", "r2")
    plain = type("Plain", (), {"address": master.address, "password": None})()
    controller = edge = None
    try:
        wait_until(lambda: all("master_link_status:up" in r.cli("INFO", "replication")
                               for r in (r1, r2)), 10, what="replicas in sync")
        controller = Controller(plain, workdir)
        controller.upstream("rd-pool", *[b.port for b in backends.values()])
        controller.route("rd", "rd.test", "/", "rd-pool")
        edge = Edge(plain, workdir, "rd-edge", extra=["--redis-read", f"{r1.address},{r2.address}"])
        wait_until(lambda: edge.backend("/", "rd.test") in ("r1", "r2"), 10,
                   what="the edge serves what it read from the replica")
        # it subscribes at r1, not at the master; its registration is on the master
        assert numsub(r1) == 1 and numsub(master) == 0 and numsub(r2) == 0
        wait_until(lambda: master.cli("EXISTS", BASE + "edge:rd-edge") == "1", 5,
                   what="the edge's registration on the master")

        r1.kill()
        started = time.monotonic()
        controller.route("rd2", "rd2.test", "/", "rd-pool")
        wait_until(lambda: edge.backend("/", "rd2.test") in ("r1", "r2"), 10,
                   what="the edge converges after its replica stopped")
        moved = time.monotonic() - started
        assert numsub(r2) == 1 and numsub(master) == 0
        version = master.cli("GET", BASE + "version")
        wait_until(lambda: master.cli("HGET", BASE + "edge:rd-edge", "applied_version") == version,
                   5, what="the edge reports the master's version")
        print(f"\nread replica stopped: the edge served the next change after {moved:.2f} s")
    finally:
        for p in (edge, controller):
            if p:
                p.stop()
        for s in (r1, r2, master):
            s.stop()
        for b in backends.values():
            b.shutdown()
            b.server_close()
