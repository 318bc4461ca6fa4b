#!/usr/bin/env python3
"""Redis memory per change of the change history (redis/README.md, "History").

Starts a throwaway redis-server on a free loopback port, loads redis/switchyard.lua and
writes the same sequence of changes twice: once keeping the whole history, once keeping
one entry. Prints, per kind of change, MEMORY USAGE of the history stream divided by its
entries, and the difference in INFO used_memory between the two runs divided by the
number of changes (what the history costs on top of the configuration itself).

    python3 bench/history_memory.py [--changes 1000]
"""
import argparse
import os
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = "switchyard:{cfg}:"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sy-history-mem-")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir], stdout=subprocess.DEVNULL)
        for _ in range(100):
            if self.cli("PING") == "PONG":
                break
            time.sleep(0.05)

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.port), "--raw", *map(str, args)],
                           capture_output=True, timeout=30)
        return r.stdout.decode(errors="replace").strip()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def route_doc(i, n):
    return ('{"host":"shop-%d.example.com","id":"r%d","match":"prefix","path":"/api/v%d",'
            '"priority":0,"upstream":"backend"}' % (i, i, n))


def upstream_doc(n):
    eps = ",".join('{"address":"10.0.%d.%d:8080","weight":1}' % (n % 250, k) for k in range(3))
    return ('{"balance":"round_robin","endpoints":[%s],"name":"backend","on_all_down":"fail_open",'
            '"passive":{"fail_timeout_ms":10000,"max_fails":3},"retries":2}' % eps)


def workload(r, kind, changes, keep):
    library = open(os.path.join(ROOT, "redis", "switchyard.lua")).read()
    r.cli("FLUSHALL")
    r.cli("FUNCTION", "LOAD", "REPLACE", library)
    v = BASE + "version"
    r.cli("FCALL", "sy_apply", 1, v, "who", "admin", "put", "upstream", "backend", upstream_doc(0),
          "", "")
    for i in range(40):  # a configuration to change
        r.cli("FCALL", "sy_apply", 1, v, "put", "route", f"r{i}", route_doc(i, 0), "backend", "")
    r.cli("DEL", BASE + "history", BASE + "history_bytes")
    before = int(r.cli("INFO", "memory").split("used_memory:")[1].split()[0])
    for n in range(1, changes + 1):
        if kind == "route":
            args = ["put", "route", f"r{n % 40}", route_doc(n % 40, n), "backend", ""]
        else:
            args = ["put", "upstream", "backend", upstream_doc(n), "", ""]
        r.cli("FCALL", "sy_apply", 1, v, "who", "admin", "note", "deploy %d" % n, "keep", keep, *args)
    after = int(r.cli("INFO", "memory").split("used_memory:")[1].split()[0])
    entries = int(r.cli("XLEN", BASE + "history"))
    usage = int(r.cli("MEMORY", "USAGE", BASE + "history", "SAMPLES", 0) or 0)
    recorded = int(r.cli("GET", BASE + "history_bytes") or 0)
    return after - before, entries, usage, recorded


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=1000)
    args = ap.parse_args()
    r = Redis()
    try:
        print(f"redis {r.cli('INFO', 'server').split('redis_version:')[1].split()[0]}, "
              f"{args.changes} changes per run")
        for kind in ("route", "upstream"):
            full, entries, usage, recorded = workload(r, kind, args.changes, f"{args.changes}:1073741824")
            one, _, _, _ = workload(r, kind, args.changes, "1:1073741824")
            print(f"{kind:8s} change: MEMORY USAGE {usage / entries:7.0f} B/entry "
                  f"(history_bytes {recorded / entries:5.0f} B/entry), "
                  f"used_memory with vs without history {(full - one) / args.changes:7.0f} B/change")
    finally:
        r.stop()


if __name__ == "__main__":
    main()
