#!/usr/bin/env python3
"""Instructions per request: static nginx, the bare-Lua floor and Switchyard edge routes,
counted by valgrind (callgrind) in the one nginx worker that serves them.

Wall-clock benchmarks on a shared machine move by 10-30% from run to run; the number of
instructions a worker executes per request barely moves, so this is the figure to compare
design choices of the edge with (`bench/bench.py` stays the one for req/s and latency).
What it counts: user-space instructions of the worker (nginx, LuaJIT, its JIT-compiled
traces, libc) between two callgrind dumps around a fixed number of keep-alive requests,
minus the worker's timers and the Lua threads they started (the syncer), and minus what the
worker does idle for as long (the syncer and
the refresh timers run on their own clock, and valgrind makes wall time ~50x longer). Not counted: the kernel (sockets, epoll), which is
most of a proxied request's time and the same for every variant, and cache misses.

    python3 bench/instructions.py --md docs/benchmarks.md --out docs/benchmarks-instructions.json
    python3 bench/instructions.py --smoke      # tiny (the harness works; nothing published)
    python3 bench/instructions.py --only "plain route" --windows 7   # one variant, printed
"""
import argparse
import base64
import ctypes
import datetime
import glob
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "e2e"))
import bench  # noqa: E402  (the static and bare-Lua configurations, the backend)
from harness import BIN, Controller, Redis, free_port, wait_until  # noqa: E402

START, END = "<!-- instructions:start -->", "<!-- instructions:end -->"
LUA_DIR = os.path.join(ROOT, "lua")

# Edge routes measured, each in its own callgrind window: (label, host, request headers,
# what it shows).
EDGE_ROUTES = [
    ("edge: plain route", "plain.bench", {},
     "location / only: route lookup and balancer; the metrics' log phase (none with "
     "--metrics-listen off)"),
    ("edge: plain route, POST with a body", "plain.bench", {},
     "location /: as the GET, and nginx reads a 16-byte body before the upstream request "
     "(a design that routes outside the access phase must send it elsewhere first)"),
    ("edge: route with an access option (allow list)", "allow.bench", {},
     "location /: the route's guard (allow list) runs in access(); what a design that "
     "routes plain requests outside the access phase must hand on to it"),
    ("edge: route with response_headers", "resp.bench", {},
     "goes on to @sy_full: a second access pass, the header filter, the variable proxy_pass"),
    ("edge: sticky upstream, cookie sent", "sticky.bench", None,
     "options in location /, then @sy_full for the balancer's cookie"),
    ("edge: route with cors, allowed origin", "cors.bench", {"Origin": "https://app.bench"},
     "@sy_full: the origin checked in access, Access-Control-* and Vary in the header filter"),
    ("edge: route with gzip, response not compressed", "gzipoff.bench", {"Accept-Encoding": "gzip"},
     "@sy_gzip, a type the route does not list: the header filter turns gzip off"),
    ("edge: route with gzip, 3-byte response compressed", "gzip.bench",
     {"Accept-Encoding": "gzip"}, "@sy_gzip: nginx's gzip filter (zlib set-up per response)"),
    # authentication (issue 22 item 4): headers named by a string are made by setup_routes
    ("edge: route with basic_auth, credential cached", "basic.bench", "basic",
     "location /: the guard reads Authorization, one SHA-1 and an LRU hit (bcrypt ran once)"),
    ("edge: route with jwt RS256, token cached", "jwtrs.bench", "rs256",
     "location /: the guard finds the token in the route's LRU cache, sets one claim header"),
    ("edge: route with jwt RS256, a new token each request", "jwtrs.bench", "rs256-new",
     "location /: base64url, JSON, an RSA-2048 signature verified by libcrypto (FFI), claims"),
    ("edge: route with jwt ES256, token cached", "jwtes.bench", "es256",
     "location /: as RS256 cached"),
    ("edge: route with jwt ES256, a new token each request", "jwtes.bench", "es256-new",
     "location /: as RS256, with a P-256 ECDSA verification (JWS r, s turned into DER in Lua)"),
    ("edge: route with jwt HS256, token cached", "jwths.bench", "hs256",
     "location /: as RS256 cached"),
    ("edge: route with jwt HS256, a new token each request", "jwths.bench", "hs256-new",
     "location /: as RS256, with HMAC() and a constant-time CRYPTO_memcmp (FFI)"),
]

# headers of the authentication variants (setup_routes): a dict, or a function giving the
# next request's headers
AUTH = {}


# Variants sent as a POST with this body (the others are GETs without one).
BODIES = {"edge: plain route, POST with a body": b"sixteen bytes..."}


def get(conn, host, headers, expect=200, body=None):
    h = {"Host": host}
    h.update(headers() if callable(headers) else headers)
    if body is None:
        conn.request("GET", "/", headers=h)
    else:
        conn.request("POST", "/", body=body, headers=h)
    r = conn.getresponse()
    body = r.read()
    if r.status != expect:
        raise AssertionError(f"{host}: {r.status} {body[:200]!r}")
    return r


def requests_on(port, host, headers, n, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for _ in range(n):   # bounded: n requests
            get(conn, host, headers, body=body)
    finally:
        conn.close()


class Callgrind:
    """nginx (master + one worker) under callgrind; count(...) measures one window."""

    def __init__(self, name, conf, prefix, port, keep=None):
        self.prefix, self.port, self.name, self.keep = prefix, port, name, keep
        self.label = name
        self.vgdb = os.path.join(prefix, "vgdb")
        self.log = os.path.join(prefix, "valgrind.log")
        # workers as root: callgrind_control talks to the worker through FIFOs the master
        # created (the benchmark only listens on loopback)
        user = "user root;" if os.geteuid() == 0 else ""
        cmd = ["valgrind", "--tool=callgrind", "--trace-children=yes",
               "--smc-check=all-non-file", f"--vgdb-prefix={self.vgdb}",
               f"--callgrind-out-file={prefix}/callgrind.%p",
               bench.NGINX, "-p", prefix, "-c", conf, "-g", f"daemon off; {user}"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        wait_until(self._listening, 180, what=f"{name} under valgrind (log: {self.log})")
        workers = []
        wait_until(lambda: workers.extend(bench.children(self.proc.pid)) or workers, 30,
                   what=f"{name} worker")
        if len(workers) != 1:
            raise AssertionError(f"{name}: want one worker, found {workers}")
        self.worker = workers[0]

    def _listening(self):
        if self.proc.poll() is not None:
            with open(self.log) as f:
                raise AssertionError(f"{self.name} exited:\n" + f.read()[-3000:])
        try:
            return bench.tcp_open(self.port)
        except OSError:
            return False

    def control(self, flag):
        subprocess.run(["callgrind_control", f"--vgdb-prefix={self.vgdb}", flag,
                        str(self.worker)], check=True, capture_output=True, timeout=120)

    def _window(self, work):
        """Instructions of the worker while work() runs (and its wall time), timers out."""
        self.control("-z")
        t0 = time.monotonic()
        work()
        took = time.monotonic() - t0
        before = set(glob.glob(f"{self.prefix}/callgrind.{self.worker}.*"))
        self.control("-d")
        dumps = sorted(set(glob.glob(f"{self.prefix}/callgrind.{self.worker}.*")) - before,
                       key=os.path.getmtime)
        if not dumps:
            raise AssertionError(f"{self.name}: callgrind wrote no dump")
        with open(dumps[-1]) as f:
            total = int(re.search(r"^(?:summary|totals):\s+(\d+)", f.read(), re.M).group(1))
        ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                              dumps[-1]], capture_output=True, text=True).stdout
        # not the requests' work: timers (the worker's own and the syncer's start), and
        # the Lua threads they started, resumed by their sockets (the syncer's Redis
        # replies, health polls: ngx_http_lua_content_wev_handler; location / has no
        # content handler that yields)
        timers = 0
        for fn in ("ngx_event_expire_timers", "ngx_http_lua_content_wev_handler"):
            t = re.search(r"^\s*([\d,]+) \(.*" + fn, ann, re.M)
            timers += int(t.group(1).replace(",", "")) if t else 0
        if self.keep:   # --keep-dumps: the window's dump, for callgrind_annotate
            os.makedirs(self.keep, exist_ok=True)
            slug = re.sub(r"[^a-z0-9]+", "-", self.label.lower()).strip("-")
            shutil.copy(dumps[-1], os.path.join(
                self.keep, f"{slug}.{len(glob.glob(os.path.join(self.keep, slug + '.*')))}"))
        for d in dumps:
            os.unlink(d)
        return total - timers, took

    def count(self, host, headers, n, warm, windows, idle=True, body=None):
        """Instructions per request: the median of `windows` windows of n requests, after
        `warm` unmeasured ones, each less what the worker does idle (idle=True): the
        syncer's Redis replies and health polls wake it without a timer. The idle rate
        comes from at least 5 s, so a burst of the syncer weighs little; a window of a
        few requests (--smoke) is too short to correct this way and is reported as is."""
        requests_on(self.port, host, headers, warm, body)   # JIT traces compiled, pools warm
        samples = []
        for _ in range(windows):
            busy, took = self._window(lambda: requests_on(self.port, host, headers, n, body))
            if idle:
                keep, self.keep = self.keep, None   # idle windows are not kept
                try:
                    quiet, quiet_took = self._window(lambda: time.sleep(min(max(took, 5), 30)))
                finally:
                    self.keep = keep
                busy -= quiet / quiet_took * took
            samples.append(busy / n)
        return {"per_request": statistics.median(samples),
                "samples": [round(x) for x in samples]}

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def write_plain(base, name, body, backend):
    d = os.path.join(base, name)
    port = free_port()
    return bench.write_conf(d, body.format(port=port, backend=backend), 1), d, port


def setup_routes(controller, backend):
    ep = {"endpoints": [{"address": f"127.0.0.1:{backend}"}]}
    controller.ok("PUT", "/api/v1/upstreams/plain", ep)
    controller.ok("PUT", "/api/v1/upstreams/sticky", dict(ep, balance="sticky"))
    controller.ok("PUT", "/api/v1/routes/plain", {"host": "plain.bench", "path": "/",
                                                  "upstream": "plain"})
    controller.ok("PUT", "/api/v1/routes/resp", {
        "host": "resp.bench", "path": "/", "upstream": "plain",
        "response_headers": {"set": {"X-Served-By": "edge"}}})
    controller.ok("PUT", "/api/v1/routes/allow", {"host": "allow.bench", "path": "/",
                                                  "upstream": "plain", "allow": ["127.0.0.0/8"]})
    controller.ok("PUT", "/api/v1/routes/sticky", {"host": "sticky.bench", "path": "/",
                                                   "upstream": "sticky"})
    controller.ok("PUT", "/api/v1/routes/cors", {
        "host": "cors.bench", "path": "/", "upstream": "plain",
        "cors": {"origins": ["https://app.bench"], "credentials": True}})
    setup_auth(controller)
    for rid, types in (("gzip", ["text/plain", "application/octet-stream"]),
                       ("gzipoff", ["text/html"])):
        controller.ok("PUT", f"/api/v1/routes/{rid}", {
            "host": f"{rid}.bench", "path": "/", "upstream": "plain",
            "gzip": {"min_bytes": 0, "types": types}})


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Signer:
    """Tokens signed without a Python package: openssl makes the keys; RS256 is signed here
    (PKCS#1 v1.5 with the key's CRT numbers, ~1 ms), ES256 by openssl per token (the
    ES256 variants need fewer: see AUTH)."""

    def __init__(self, d):
        self.d = d
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", f"{d}/rsa.pem"], check=True,
                       capture_output=True)
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", f"{d}/ec.pem"], check=True,
                       capture_output=True)
        text = subprocess.run(["openssl", "rsa", "-in", f"{d}/rsa.pem", "-text", "-noout"],
                              check=True, capture_output=True, text=True).stdout
        nums = {}
        for name in ("modulus", "privateExponent", "prime1", "prime2", "exponent1", "exponent2",
                     "coefficient"):
            m = re.search(name + r":\s*\n((?:\s+[0-9a-f:]+\n)+)", text)
            nums[name] = int(re.sub(r"[\s:]", "", m.group(1)), 16)
        self.rsa = nums

    def pub(self, name):
        return subprocess.run(["openssl", "pkey", "-in", f"{self.d}/{name}.pem", "-pubout"],
                              check=True, capture_output=True, text=True).stdout

    def rs256(self, claims):
        signed = (_b64url(b'{"alg":"RS256","typ":"JWT"}') + "." +
                  _b64url(json.dumps(claims, separators=(",", ":")).encode()))
        k = self.rsa
        size = (k["modulus"].bit_length() + 7) // 8
        info = bytes.fromhex("3031300d060960864801650304020105000420")
        t = info + hashlib.sha256(signed.encode()).digest()
        em = int.from_bytes(b"\0\1" + b"\xff" * (size - len(t) - 3) + b"\0" + t, "big")
        m1, m2 = pow(em, k["exponent1"], k["prime1"]), pow(em, k["exponent2"], k["prime2"])
        h = (k["coefficient"] * (m1 - m2)) % k["prime1"]
        sig = (m2 + h * k["prime2"]).to_bytes(size, "big")
        return signed + "." + _b64url(sig)

    def es256(self, claims):
        signed = (_b64url(b'{"alg":"ES256","typ":"JWT"}') + "." +
                  _b64url(json.dumps(claims, separators=(",", ":")).encode()))
        der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", f"{self.d}/ec.pem"],
                             input=signed.encode(), check=True, capture_output=True).stdout
        i, raw = 2, b""
        for _ in range(2):   # SEQUENCE { INTEGER r, INTEGER s } -> r||s
            n = der[i + 1]
            raw += der[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
            i += 2 + n
        return signed + "." + _b64url(raw)


HS_SECRET = "bench-hs256-secret-0123456789abcdef0123456789"


def _hs256(claims):
    signed = (_b64url(b'{"alg":"HS256","typ":"JWT"}') + "." +
              _b64url(json.dumps(claims, separators=(",", ":")).encode()))
    return signed + "." + _b64url(hmac.new(HS_SECRET.encode(), signed.encode(),
                                           hashlib.sha256).digest())


def setup_auth(controller):
    """Routes with basic_auth (bcrypt cost 10) and jwt (RS256, ES256), and their headers:
    one credential again and again (cached after the first), or a new token each request
    (pre-signed: signing is not what is measured)."""
    d = tempfile.mkdtemp(prefix="sy-instr-auth-")
    signer = _Signer(d)
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    salt = base64.b64encode(os.urandom(16)).decode().replace("+", ".")[:22]
    hashed = lib.crypt(b"bench-password", ("$2b$10$" + salt).encode()).decode()
    controller.ok("PUT", "/api/v1/routes/basic", {
        "host": "basic.bench", "path": "/", "upstream": "plain",
        "basic_auth": {"users": [{"name": "bench", "hash": hashed}]}})
    controller.ok("PUT", "/api/v1/routes/jwths", {
        "host": "jwths.bench", "path": "/", "upstream": "plain",
        "jwt": {"keys": [{"alg": "HS256", "secret": HS_SECRET}],
                "claims_to_headers": {"sub": "X-User"}}})
    for rid, alg, key in (("jwtrs", "RS256", "rsa"), ("jwtes", "ES256", "ec")):
        controller.ok("PUT", f"/api/v1/routes/{rid}", {
            "host": f"{rid}.bench", "path": "/", "upstream": "plain",
            "jwt": {"keys": [{"alg": alg, "pem": signer.pub(key)}],
                    "claims_to_headers": {"sub": "X-User"}}})
    exp = int(time.time()) + 86400
    AUTH["basic"] = {"Authorization": "Basic " + base64.b64encode(b"bench:bench-password").decode()}
    AUTH["rs256"] = {"Authorization": "Bearer " + signer.rs256({"sub": "bench", "exp": exp})}
    AUTH["es256"] = {"Authorization": "Bearer " + signer.es256({"sub": "bench", "exp": exp})}
    AUTH["hs256"] = {"Authorization": "Bearer " + _hs256({"sub": "bench", "exp": exp})}

    def fresh(sign, count):
        tokens = [sign({"sub": "bench", "exp": exp, "jti": i}) for i in range(count)]
        it = iter(tokens)
        return lambda: {"Authorization": "Bearer " + next(it)}
    AUTH["rs256-new"] = fresh(signer.rs256, AUTH_TOKENS.get("rs256-new", 0))
    AUTH["es256-new"] = fresh(signer.es256, AUTH_TOKENS.get("es256-new", 0))
    AUTH["hs256-new"] = fresh(_hs256, AUTH_TOKENS.get("hs256-new", 0))
    shutil.rmtree(d, ignore_errors=True)


# tokens to sign for each "new token" variant: its warm-up and windows when it is measured
# (measure() sets them), none otherwise
AUTH_TOKENS = {}


def load_hosts(controller, total):
    """--hosts: `total` more routes, each on a host of its own (h<i>.hosts.bench, path /),
    10,000 per apply call (the controller applies them in parts of 1,000)."""
    done = 0
    while done < total:   # bounded: total / 10,000 calls
        n = min(10000, total - done)
        controller.ok("POST", "/api/v1/apply?atomic=false", {"routes": [
            {"id": f"h{i}", "host": f"h{i}.hosts.bench", "path": "/", "upstream": "plain"}
            for i in range(done, done + n)]})
        done += n


def wanted(args, label):
    """--only: the variants whose label contains one of the given words ("=label": that
    label exactly)"""
    return not args.only or any(label == w[1:] if w.startswith("=") else w in label
                                for w in args.only)


def measure(args, base):
    results = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "requests": args.requests, "warmup": args.warmup, "windows": args.windows,
               "hosts": args.hosts,
               "machine": {"valgrind": subprocess.run(["valgrind", "--version"],
                                                      capture_output=True, text=True).stdout.strip(),
                           "nginx": subprocess.run([bench.NGINX, "-v"], capture_output=True,
                                                   text=True).stderr.strip()},
               "variants": {}}
    started = []
    try:
        bport = free_port()
        backend = bench.Nginx("backend", bench.BACKEND.format(port=bport), 1, base)
        started.append(backend)
        wait_until(lambda: bench.tcp_open(bport), 10, what="backend")
        for name, body in (("static nginx", bench.STATIC), ("bare Lua floor", bench.BARE_LUA)):
            if not wanted(args, name):
                continue
            conf, d, port = write_plain(base, name.split()[0], body, bport)
            vg = Callgrind(name, conf, d, port, args.keep_dumps)
            try:
                results["variants"][name] = vg.count("bench.test", {}, args.requests,
                                                     args.warmup, args.windows, not args.smoke)
            finally:
                vg.stop()
            print(f"{name}: {results['variants'][name]['per_request']:.0f} instructions/request "
                  f"(windows: {results['variants'][name]['samples']})", flush=True)
        if not any(wanted(args, label) for label, _, _, _ in EDGE_ROUTES):
            return results
        redis = Redis(base)
        started.append(redis)
        controller = Controller(redis, base)
        started.append(controller)
        for label, _, headers, _ in EDGE_ROUTES:
            if isinstance(headers, str) and headers.endswith("-new") and wanted(args, label):
                AUTH_TOKENS[headers] = args.warmup + args.windows * args.requests + 10
        setup_routes(controller, bport)
        load_hosts(controller, args.hosts)
        d = os.path.join(base, "edge")
        port = free_port()
        # --checkout: another checkout's edge (its lua/ and deploy/edge.nginx.conf with the
        # snippets beside it), rendered by this binary
        lua_dir, template = LUA_DIR, []
        if args.checkout:
            lua_dir = os.path.join(args.checkout, "lua")
            template = ["--template", os.path.join(args.checkout, "deploy", "edge.nginx.conf")]
        out = subprocess.run([BIN, "edge", "--listen", f"127.0.0.1:{port}", "--redis",
                              redis.address, "--prefix", d, "--id", "instructions",
                              "--workers", "1", "--access-log", "off", "--lua-dir", lua_dir,
                              "--metrics-listen", f"127.0.0.1:{free_port()}", *template,
                              *args.edge_arg,
                              "--render-only"], capture_output=True, text=True, check=True)
        conf = out.stdout.strip().splitlines()[-1]
        vg = Callgrind("edge", conf, d, port, args.keep_dumps)
        try:
            def served():
                try:
                    requests_on(port, "plain.bench", {}, 1)
                    return True
                except (AssertionError, OSError):
                    return False
            wait_until(served, 120, what="edge serving the routes")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            cookie = get(conn, "sticky.bench", {}).getheader("Set-Cookie").split(";", 1)[0]
            conn.close()
            for label, host, headers, _ in EDGE_ROUTES:
                if not wanted(args, label):
                    continue
                vg.label = label
                h = {"Cookie": cookie} if headers is None else AUTH.get(headers, headers) \
                    if isinstance(headers, str) else headers
                results["variants"][label] = vg.count(host, h, args.requests, args.warmup,
                                                      args.windows, not args.smoke,
                                                      BODIES.get(label))
                print(f"{label}: {results['variants'][label]['per_request']:.0f} "
                      f"instructions/request (windows: {results['variants'][label]['samples']})",
                      flush=True)
        finally:
            vg.stop()
    finally:
        bench.stop_all(started, base)
    return results


def render(results):
    v = results["variants"]
    floor = v["bare Lua floor"]["per_request"]
    static = v["static nginx"]["per_request"]
    notes = {label: note for label, _, _, note in EDGE_ROUTES}
    notes["static nginx"] = "proxy_pass to an upstream block with keepalive"
    notes["bare Lua floor"] = "one shared-dict get in access_by_lua + balancer_by_lua"
    lines = [START, "## Instructions per request (callgrind)", "",
             f"Measured {results['date']} by `bench/instructions.py` (part of `make bench`): "
             f"user-space instructions the one nginx worker executes per request, "
             f"median of {results.get('windows', 1)} windows of {results['requests']} "
             f"keep-alive requests after {results['warmup']} unmeasured ones; the worker's "
             "timers, the Lua threads they started (the syncer) and its idle work (the rate "
             "over at least 5 s) subtracted. "
             "Unlike req/s "
             "this barely moves between runs (a few hundred instructions), so it is the "
             "figure design "
             "choices of the edge are judged by; it leaves out the kernel (most of a proxied "
             "request's time, alike for every variant) and cache misses.", "",
             "| variant | instructions/request | vs bare-Lua floor | vs static nginx | what |",
             "| --- | ---: | ---: | ---: | --- |"]
    for name, m in v.items():
        x = m["per_request"]
        lines.append(f"| {name} | {x:,.0f} | {x / floor - 1:+.1%} | {x / static - 1:+.1%} | "
                     f"{notes.get(name, '')} |")
    lines += ["", "Rerun: `SWITCHYARD_BIN=.build/release/switchyard python3 bench/instructions.py`"
              " (about 2 minutes; needs valgrind).", END]
    return "\n".join(lines)


def publish(path, section):
    bench.publish_section(path, START, END, section)
    print(f"wrote the instructions section of {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny run; publishes nothing")
    ap.add_argument("--requests", type=int, default=3000, help="measured requests per variant")
    ap.add_argument("--warmup", type=int, default=1500, help="unmeasured requests before")
    ap.add_argument("--windows", type=int, default=3, help="measured windows per variant "
                    "(the median is reported)")
    ap.add_argument("--hosts", type=int, default=0, help="load this many more routes, "
                    "each on a host of its own, before measuring the edge (e.g. 10000)")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--edge-arg", action="append", default=[], metavar="ARG",
                    help="one more argument to `switchyard edge` (repeatable), e.g. "
                    "--edge-arg=--metrics-listen=off to measure the edge without metrics")
    ap.add_argument("--checkout", metavar="DIR", help="measure the edge of another "
                    "checkout of Switchyard (e.g. `git worktree add /tmp/before <commit>`): "
                    "its lua/ and deploy/edge.nginx.conf, rendered by SWITCHYARD_BIN; for "
                    "before/after figures from one binary and one machine state")
    ap.add_argument("--only", action="append", default=[], metavar="WORD",
                    help="measure only the variants whose label contains WORD (repeatable), "
                    "e.g. --only plain --only floor; --only '=edge: plain route' for that "
                    "variant alone; the Markdown table needs all of them")
    ap.add_argument("--keep-dumps", metavar="DIR", help="keep each measured window's "
                    "callgrind dump in DIR (<variant>.<n>), for callgrind_annotate")
    ap.add_argument("--md", help=f"put the table into this Markdown file, between {START} "
                    f"and {END} (appended when the markers are missing)")
    ap.add_argument("--render", metavar="JSON", help="only render a saved --out file")
    args = ap.parse_args()
    if args.render:
        with open(args.render) as f:
            results = json.load(f)
        section = render(results)
        publish(args.md, section) if args.md else print(section)
        return
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        sys.exit("bench/instructions.py needs valgrind (scripts/deps.sh installs it)")
    if args.smoke:
        args.requests, args.warmup, args.windows = 20, 20, 1
    base = tempfile.mkdtemp(prefix="switchyard-instructions-")
    os.chmod(base, 0o755)
    results = measure(args, base)   # removes base when done
    for name, m in results["variants"].items():
        if not m["per_request"] > 1000:   # a proxied request is tens of thousands
            raise AssertionError(f"{name}: implausible count {m['per_request']}")
    if args.smoke and not args.only:
        print(render(results))
        return
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    if args.only:   # the per-variant lines above are the result; no table without all
        return
    section = render(results)
    publish(args.md, section) if args.md else print(section)


if __name__ == "__main__":
    main()
