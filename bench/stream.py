#!/usr/bin/env python3
"""Stream engines side by side (issue 23, docs/stream.md); not a test.

One backend nginx on loopback serves a bulk file over HTTP (sendfile), a one-byte TCP answer
(`return` in a stream server) and a one-datagram UDP answer. In front of it, on the same run:
  nginx    Debian's nginx `stream` module, static config (the reference)
  haproxy  Debian's HAProxy, mode tcp (TCP only)
  switchyard  `switchyard stream` (SwiftNIO), configured through Redis (sy_apply)
  direct   no proxy (scale only)
Every proxy runs one worker/thread. Measured per engine, each for --seconds:
  bulk   MB/s of sequential downloads of a --mb MB file through the proxy, and proxy CPU ms per MB
  conn   connects/s of connect + read 1 byte + close, and proxy CPU us per connection
  udp    request/response datagrams/s (one in flight, one client session), proxy CPU us per
         datagram (HAProxy has no UDP)
and, for the Swift engine, how long a new listen port and an endpoint change take to apply.
CPU is utime+stime of the proxy's process group from /proc. Only 127.0.0.1 is a target.

  SWITCHYARD_BIN=$PWD/.build/release/switchyard python3 bench/stream.py --seconds 3
  SWITCHYARD_BIN=$PWD/.build/release/switchyard python3 bench/stream.py --apply-only 20   # apply times only
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "e2e"))
from harness import BASE, Controller, Process, Redis, free_port, wait_until  # noqa: E402
from stream_support import StreamRole, TCPEcho, connect, delete_stream, put_stream  # noqa: E402

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
CLK_TCK = os.sysconf("SC_CLK_TCK")

NGINX_HEAD = """load_module {module};
worker_processes 1;
daemon off;
pid {dir}/{name}.pid;
error_log {dir}/{name}-error.log warn;
events {{ worker_connections 4096; }}
"""


def group_cpu(pgid):
    """utime+stime (s) of every process in a process group."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def tcp_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def bulk(port, seconds, path):
    req = f"GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n".encode()
    buf = bytearray(1 << 20)
    total = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(req)
        head = s.recv(12)
        if not head.startswith(b"HTTP/1.1 200"):
            raise AssertionError(f"port {port}: {head!r}")
        total += len(head)
        while True:
            n = s.recv_into(buf)
            if n == 0:
                break
            total += n
        s.close()
    return total, time.monotonic() - start


def conn(port, seconds):
    n = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if s.recv(16) != b"x":
            raise AssertionError(f"port {port}: no answer")
        s.close()
        n += 1
    return n, time.monotonic() - start


def udp(port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    s.connect(("127.0.0.1", port))
    n = lost = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        s.send(b"q")
        try:
            s.recv(16)
            n += 1
        except socket.timeout:
            lost += 1
    s.close()
    return n, time.monotonic() - start, lost


def reached(port):
    """The name of the echo endpoint a new connection to `port` reaches (None: no connection)."""
    try:
        s, name = connect(port, timeout=0.5)
        s.close()
        return name
    except OSError:
        return None


def apply_times(redis, controller, samples):
    """How long changes take to reach `switchyard stream`, in ms from just before the write
    (the write's own time included: sy_apply through redis-cli, an upstream PUT through the
    controller) until (new_port) the new listen port accepts a connection, (endpoint) a new
    connection reaches the endpoint the PUT named. `samples` of each, alternating."""
    a, b = TCPEcho("a"), TCPEcho("b")
    try:
        controller.ok("PUT", "/api/v1/upstreams/apply-bench", {"endpoints": [{"address": f"127.0.0.1:{a.port}"}]})
        port = free_port()
        put_stream(redis, "apply-bench", {"listen": port, "upstream": "apply-bench"})
        wait_until(lambda: reached(port) == "a", 10, what="apply-bench stream")
        new_port, endpoint = [], []
        for i in range(samples):
            p = free_port()
            t0 = time.monotonic()
            put_stream(redis, f"apply-new-{i}", {"listen": p, "upstream": "apply-bench"})
            wait_until(lambda: tcp_open(p), 5, interval=0.002, what="new port")
            new_port.append((time.monotonic() - t0) * 1000)
            delete_stream(redis, f"apply-new-{i}")
            target = b if i % 2 == 0 else a
            t0 = time.monotonic()
            controller.ok("PUT", "/api/v1/upstreams/apply-bench", {"endpoints": [{"address": f"127.0.0.1:{target.port}"}]})
            wait_until(lambda: reached(port) == target.name.decode(), 5, interval=0.002, what="endpoint change")
            endpoint.append((time.monotonic() - t0) * 1000)
        delete_stream(redis, "apply-bench")
        return {"new_port_ms": summary(new_port), "endpoint_change_ms": summary(endpoint)}
    finally:
        a.close()
        b.close()


def summary(values):
    v = sorted(values)
    return {"n": len(v), "median": round(v[len(v) // 2], 1), "min": round(v[0], 1), "max": round(v[-1], 1)}


def apply_only(samples, poll_ms):
    work = tempfile.mkdtemp(prefix="sy-bench-stream-apply-")
    procs = []
    try:
        redis = Redis(work)
        procs.append(redis.process)
        controller = Controller(redis, work)
        procs.append(controller.process)
        role = StreamRole(redis, work, threads=1, poll_ms=poll_ms)
        procs.append(role.process)
        r = apply_times(redis, controller, samples)
        print(f"switchyard stream (--poll-ms {poll_ms}), {samples} samples, ms from the write (included) until applied:")
        for k, v in r.items():
            print(f"  {k:<20} median {v['median']:>7}  min {v['min']:>7}  max {v['max']:>7}")
        return r
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="per measurement (0.5-30)")
    ap.add_argument("--mb", type=int, default=64, help="bulk file size in MB (1-1024)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--md", help="append a 'Stream engines' section to this markdown file")
    ap.add_argument("--smoke", action="store_true", help="a tiny unmeasured pass (0.5 s, 4 MB): keeps the harness working")
    ap.add_argument("--apply-only", type=int, metavar="N", help="only the apply times of switchyard stream, N samples (1-200)")
    ap.add_argument("--poll-ms", type=int, default=1000, help="the stream role's safety-net poll (default 1000, its own default)")
    args = ap.parse_args()
    if args.apply_only is not None:
        if not 1 <= args.apply_only <= 200:
            ap.error("--apply-only 1-200")
        apply_only(args.apply_only, args.poll_ms)
        return
    if args.smoke:
        args.seconds, args.mb = 0.5, 4
    if not (0.5 <= args.seconds <= 30 and 1 <= args.mb <= 1024):
        ap.error("--seconds 0.5-30, --mb 1-1024")
    work = tempfile.mkdtemp(prefix="sy-bench-stream-")
    procs = []
    try:
        os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
        with open(os.path.join(work, "big"), "wb") as f:
            f.write(os.urandom(1 << 20) * args.mb)
        os.chmod(os.path.join(work, "big"), 0o644)
        http_b, tiny_b, udp_b = free_port(), free_port(), free_port()
        conf = NGINX_HEAD.format(module=STREAM_MODULE, dir=work, name="backend") + f"""
http {{ access_log off; sendfile on; client_body_temp_path {work}/b; proxy_temp_path {work}/p;
  fastcgi_temp_path {work}/f; uwsgi_temp_path {work}/u; scgi_temp_path {work}/s;
  server {{ listen 127.0.0.1:{http_b}; root {work}; }} }}
stream {{ server {{ listen 127.0.0.1:{tiny_b}; return "x"; }}
         server {{ listen 127.0.0.1:{udp_b} udp; return "x"; }} }}
"""
        open(os.path.join(work, "backend.conf"), "w").write(conf)
        procs.append(Process("backend", [NGINX, "-c", os.path.join(work, "backend.conf"), "-e", "stderr"], log_dir=work))

        engines = {"direct": {"bulk": http_b, "conn": tiny_b, "udp": udp_b, "pgid": None}}
        # nginx stream, static
        nb, nc, nu = free_port(), free_port(), free_port()
        conf = NGINX_HEAD.format(module=STREAM_MODULE, dir=work, name="proxy") + f"""
stream {{
  server {{ listen 127.0.0.1:{nb}; proxy_pass 127.0.0.1:{http_b}; }}
  server {{ listen 127.0.0.1:{nc}; proxy_pass 127.0.0.1:{tiny_b}; }}
  server {{ listen 127.0.0.1:{nu} udp; proxy_pass 127.0.0.1:{udp_b}; proxy_timeout 5s; }}
}}
"""
        open(os.path.join(work, "proxy.conf"), "w").write(conf)
        p = Process("nginx-stream", [NGINX, "-c", os.path.join(work, "proxy.conf"), "-e", "stderr"], log_dir=work)
        procs.append(p)
        engines["nginx"] = {"bulk": nb, "conn": nc, "udp": nu, "pgid": p.pid}
        # HAProxy, mode tcp
        if os.path.exists(HAPROXY):
            hb, hc = free_port(), free_port()
            conf = f"""global
  nbthread 1
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen bulk
  bind 127.0.0.1:{hb}
  server b1 127.0.0.1:{http_b}
listen tiny
  bind 127.0.0.1:{hc}
  server t1 127.0.0.1:{tiny_b}
"""
            open(os.path.join(work, "haproxy.cfg"), "w").write(conf)
            p = Process("haproxy", [HAPROXY, "-db", "-f", os.path.join(work, "haproxy.cfg")], log_dir=work)
            procs.append(p)
            engines["haproxy"] = {"bulk": hb, "conn": hc, "udp": None, "pgid": p.pid}
        # switchyard stream, through Redis
        redis = Redis(work)
        procs.append(redis.process)
        controller = Controller(redis, work)
        procs.append(controller.process)
        role = StreamRole(redis, work, threads=1, poll_ms=args.poll_ms)
        procs.append(role.process)
        for name, port in (("bulk", http_b), ("tiny", tiny_b), ("dgram", udp_b)):
            controller.ok("PUT", f"/api/v1/upstreams/{name}", {"endpoints": [{"address": f"127.0.0.1:{port}"}]})
        sb, sc, su = free_port(), free_port(), free_port()
        put_stream(redis, "dgram", {"listen": su, "upstream": "dgram", "protocol": "udp", "idle_timeout_s": 5})
        put_stream(redis, "bulk", {"listen": sb, "upstream": "bulk"})
        put_stream(redis, "tiny", {"listen": sc, "upstream": "tiny"})
        engines["switchyard"] = {"bulk": sb, "conn": sc, "udp": su, "pgid": role.process.pid}
        for e in engines.values():
            for k in ("bulk", "conn", "udp"):
                if e[k] and k != "udp":
                    wait_until(lambda port=e[k]: tcp_open(port), 10, what=f"port {e[k]}")

        results = {}
        for name, e in engines.items():
            r = results[name] = {}
            c0 = group_cpu(e["pgid"]) if e["pgid"] else 0
            total, dt = bulk(e["bulk"], args.seconds, "/big")
            c1 = group_cpu(e["pgid"]) if e["pgid"] else 0
            mb = total / 1e6
            r["bulk_MBps"] = round(mb / dt, 1)
            r["cpu_ms_per_MB"] = round((c1 - c0) * 1000 / mb, 3) if e["pgid"] else None
            n, dt = conn(e["conn"], args.seconds)
            c2 = group_cpu(e["pgid"]) if e["pgid"] else 0
            r["conn_per_s"] = round(n / dt)
            r["cpu_us_per_conn"] = round((c2 - c1) * 1e6 / n, 1) if e["pgid"] else None
            if e["udp"]:
                n, dt, lost = udp(e["udp"], args.seconds)
                c3 = group_cpu(e["pgid"]) if e["pgid"] else 0
                r["udp_dgram_per_s"] = round(n / dt)
                r["udp_lost"] = lost
                r["cpu_us_per_dgram"] = round((c3 - c2) * 1e6 / n, 1) if e["pgid"] else None

        # the Swift engine: how long a change takes to apply
        results["switchyard"].update(apply_times(redis, controller, 3 if args.smoke else 10))

        ref = results["nginx"]
        print(f"{'engine':<11} {'bulk MB/s':>10} {'ms CPU/MB':>10} {'conn/s':>8} {'us CPU/conn':>12} {'udp dgram/s':>12} {'us CPU/dgram':>13}")
        for name, r in results.items():
            print(f"{name:<11} {r['bulk_MBps']:>10} {str(r['cpu_ms_per_MB']):>10} {r['conn_per_s']:>8} "
                  f"{str(r['cpu_us_per_conn']):>12} {str(r.get('udp_dgram_per_s', '-')):>12} {str(r.get('cpu_us_per_dgram', '-')):>13}")
        for name in results:
            if name in ("nginx", "direct"):
                continue
            r = results[name]
            line = (f"{name} / nginx: bulk {r['bulk_MBps'] / ref['bulk_MBps']:.2f}x, conn/s {r['conn_per_s'] / ref['conn_per_s']:.2f}x, "
                    f"CPU/MB {r['cpu_ms_per_MB'] / ref['cpu_ms_per_MB']:.2f}x, CPU/conn {r['cpu_us_per_conn'] / ref['cpu_us_per_conn']:.2f}x")
            if "udp_dgram_per_s" in r:
                line += (f", udp dgram/s {r['udp_dgram_per_s'] / ref['udp_dgram_per_s']:.2f}x, "
                         f"CPU/dgram {r['cpu_us_per_dgram'] / ref['cpu_us_per_dgram']:.2f}x")
            print(line)
        for k in ("new_port_ms", "endpoint_change_ms"):
            v = results["switchyard"][k]
            print(f"switchyard {k}: median {v['median']} min {v['min']} max {v['max']} (write included; --poll-ms {args.poll_ms})")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
        if args.md and not args.smoke:
            lines = ["", "## Stream engines (bench/stream.py)", "",
                     f"One worker/thread each, loopback, {args.seconds:g} s per measurement; docs/stream.md explains the choice.", "",
                     "| engine | bulk MB/s | CPU ms/MB | connects/s | CPU us/conn | UDP dgram/s | CPU us/dgram |",
                     "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for name, r in results.items():
                lines.append(f"| {name} | {r['bulk_MBps']} | {r['cpu_ms_per_MB'] or '-'} | {r['conn_per_s']} | "
                             f"{r['cpu_us_per_conn'] or '-'} | {r.get('udp_dgram_per_s', '-')} | {r.get('cpu_us_per_dgram', '-')} |")
            sw = results["switchyard"]
            lines += ["", f"switchyard stream, from the write until applied (pub/sub; --poll-ms {args.poll_ms} as a safety net): "
                      f"new listen port median {sw['new_port_ms']['median']} ms (max {sw['new_port_ms']['max']}), "
                      f"endpoint change median {sw['endpoint_change_ms']['median']} ms (max {sw['endpoint_change_ms']['max']})."]
            with open(args.md, "a") as f:
                f.write("\n".join(lines) + "\n")
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
