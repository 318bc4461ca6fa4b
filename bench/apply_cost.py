"""How long one FCALL sy_apply keeps Redis busy, per batch size: the evidence behind the
batch bound of POST /api/v1/apply (README, "Admin API"; redis/README.md, "Batches").

A private redis-server on loopback, the Function library of this checkout (and of git
revisions, --rev, measured interleaved), a batch of N new routes and then the same N routes
replaced; the time is Redis's own (SLOWLOG: microseconds spent executing the command), the
median of --repeat runs. Prints one line per (library, N, mode) and, with --json, writes
them to a file.

    python3 bench/apply_cost.py                      # this checkout, N = 100 1000 2000 5000
    python3 bench/apply_cost.py --rev phase2-base    # and the library of a revision, interleaved
    python3 bench/apply_cost.py --sizes 1000 --repeat 5

--instructions counts instead of timing (times swing with the machine's load; instruction
counts do not): redis-server runs under valgrind's callgrind, and for each library one route
PUT (the admin API's single-object write) is repeated --calls times with the history at its
count bound (the steady state of a busy installation: every write also trims one entry);
prints Redis's instructions per FCALL (fcallCommand, inclusive) and, of those, in the
commands the function called (scriptCall).

    python3 bench/apply_cost.py --instructions --rev main
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "e2e"))
from harness import BASE, Redis, free_port, resp_command  # noqa: E402


def library(rev):
    if rev is None:
        with open(os.path.join(ROOT, "redis", "switchyard.lua")) as f:
            return f.read()
    return subprocess.run(["git", "-C", ROOT, "show", f"{rev}:redis/switchyard.lua"],
                          check=True, capture_output=True, text=True).stdout


def route_args(n, gen):
    args = []
    for i in range(n):
        rid = f"r{i}"
        doc = json.dumps({"host": f"h{i % 500}.test", "id": rid, "match": "prefix",
                          "path": f"/p{gen}/{i}", "priority": 0, "upstream": "u"},
                         separators=(",", ":"), sort_keys=True)
        args += ["put", "route", rid, doc, "u", ""]
    return args


def fcall_us(port, args):
    """Redis's own time for one FCALL sy_apply (SLOWLOG), in microseconds."""
    resp_command(port, "SLOWLOG", "RESET")
    resp_command(port, "FCALL", "sy_apply", "1", BASE + "version", *args, timeout=300)
    log = resp_command(port, "SLOWLOG", "GET", "10")
    return max(e[2] for e in log if e[3][0].upper() == b"FCALL")


def measure(sizes, repeat, revs):
    """revs: the libraries to compare (None = this checkout), measured interleaved (one
    run of each per repetition), so a machine whose load changes treats them alike."""
    libs = [(rev or "worktree", library(rev)) for rev in revs]
    work = tempfile.mkdtemp(prefix="switchyard-apply-cost-")
    os.chmod(work, 0o755)  # nginx workers (nobody, when started as root) keep the snapshot under it
    redis = Redis(work)
    rows = []
    try:
        port = redis.port
        resp_command(port, "CONFIG", "SET", "slowlog-log-slower-than", "0")
        for n in sizes:
            for mode in ("new", "replace"):
                times = {name: [] for name, _ in libs}
                for _ in range(repeat):
                    for name, lib in libs:
                        resp_command(port, "FLUSHALL")
                        resp_command(port, "FUNCTION", "LOAD", "REPLACE", lib)
                        upstream = json.dumps({"balance": "round_robin", "endpoints": [],
                                               "name": "u"}, separators=(",", ":"))
                        resp_command(port, "FCALL", "sy_apply", "1", BASE + "version",
                                     "put", "upstream", "u", upstream, "", "")
                        if mode == "replace":
                            fcall_us(port, route_args(n, 0))
                        times[name].append(fcall_us(port, route_args(n, 1)))
                for name, _ in libs:
                    us = statistics.median(times[name])
                    rows.append({"library": name, "objects": n, "mode": mode,
                                 "ms": round(us / 1000, 2), "us_per_object": round(us / n, 1)})
                    print(f"{name:12s} {n:6d} routes {mode:7s}: {us / 1000:8.1f} ms "
                          f"{us / n:6.1f} us/object  (median of {repeat})", flush=True)
    finally:
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    return rows


def callgrind_per_call(pid, out_dir, calls, run):
    """Instructions per call of fcallCommand and scriptCall while run() makes `calls` FCALLs."""
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
    run()
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    dumps = sorted((os.path.join(out_dir, f) for f in os.listdir(out_dir) if ".out." in f),
                   key=os.path.getmtime)
    text = subprocess.run(["callgrind_annotate", "--auto=no", "--inclusive=yes", dumps[-1]],
                          check=True, capture_output=True, text=True).stdout
    found = {}
    for line in text.splitlines():
        m = re.search(r":(fcallCommand|scriptCall) \[", line)
        if m:   # the first line of each is the total (recursive entries follow with a ')
            found.setdefault(m.group(1), int(line.split()[0].replace(",", "")) // calls)
    return found.get("fcallCommand", 0), found.get("scriptCall", 0)


def instructions(revs, calls, keep):
    libs = [(rev or "worktree", library(rev)) for rev in revs]
    work = tempfile.mkdtemp(prefix="switchyard-apply-instr-")
    port = free_port()
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={work}/cg.out",
            "redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
            "--appendonly", "no", "--dir", work]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        for _ in range(600):   # valgrind starts slowly: at most 60 s
            try:
                resp_command(port, "PING")
                break
            except OSError:
                time.sleep(0.1)
        upstream = json.dumps({"balance": "round_robin", "endpoints": [], "name": "u"},
                              separators=(",", ":"))
        opts = ["keep", f"{keep}:{64 * 1024 * 1024}"]

        def puts(n, gen):
            for i in range(n):
                resp_command(port, "FCALL", "sy_apply", "1", BASE + "version", *opts,
                             *route_args(1, gen * 100000 + i), timeout=60)
        for name, lib in libs:
            resp_command(port, "FLUSHALL")
            resp_command(port, "FUNCTION", "LOAD", "REPLACE", lib)
            resp_command(port, "FCALL", "sy_apply", "1", BASE + "version",
                         "put", "upstream", "u", upstream, "", "")
            puts(keep + 10, 0)   # the history reaches its bound
            total, commands = callgrind_per_call(proc.pid, work, calls, lambda: puts(calls, 1))
            rows.append({"library": name, "instructions_per_put": total,
                         "in_commands": commands})
            print(f"{name:12s} one route PUT, history at {keep}: {total:9,d} instructions "
                  f"in FCALL, {commands:9,d} of them in the commands it called", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 2000, 5000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rev", action="append", default=[],
                    help="measure the library of this git revision too (repeatable); "
                         "with --only-revs, instead of this checkout's")
    ap.add_argument("--only-revs", action="store_true")
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions per single-route PUT under callgrind instead")
    ap.add_argument("--calls", type=int, default=100, help="PUTs counted (--instructions)")
    ap.add_argument("--keep", type=int, default=50,
                    help="the history's count bound during --instructions")
    args = ap.parse_args()
    revs = ([] if args.only_revs else [None]) + args.rev
    if args.instructions:
        rows = instructions(revs, args.calls, args.keep)
    else:
        rows = measure(args.sizes, args.repeat, revs)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
