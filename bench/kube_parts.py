"""Parts of bench/kube.py that run in their own processes (so the benchmark's own Python, its
request loops and the API-server double never share one interpreter lock):

  python3 bench/kube_parts.py cluster PARAMS.json   the API-server double (e2e/kubeapi) with the
        benchmark's cluster loaded straight into its store (no 57,000 kubectl calls); prints one
        JSON line (url, token, ca, kubeconfig), serves until SIGTERM
  python3 bench/kube_parts.py pods PORT             loopback HTTP listeners standing for pods,
        one per address on PORT, answering 200 with `X-Backend: <ip>:<port>`; commands on stdin,
        one per line: `open IP`, `close IP` (a pod dying: listener and open connections closed),
        each answered `ok` on stdout

The cluster itself is described by `cluster()` (used by both sides, so the benchmark knows every
host, Service and address without asking the double).
"""
import asyncio
import json
import os
import signal
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def unreal_ip(g):
    """The g-th endpoint nothing listens on: 127.10.0.1 onwards (250 per /24, no .0/.255)."""
    return f"127.{10 + g // 62500}.{(g // 250) % 250}.{1 + g % 250}"


def real_ip(block, k):
    """The k-th address of a block of real (listening) endpoints: 127.<100+block>.x.y."""
    return f"127.{100 + block}.{k // 250}.{1 + k % 250}"


def cluster(p):
    """The benchmark's cluster from params p (ingresses, services, endpoints_per_service,
    namespaces, probes, rollout_pods, real_port): a dict with the objects to load and what the
    benchmark needs to know about them.

    Ingress i (host h<i>.bench.test) has paths /p0, /p1[, /p2] (Prefix), each to its own Service,
    so every Service is behind exactly one path and all its endpoints are served. `probes`
    Ingresses (the last ones in (namespace, name) order, which the source writes last, and some
    spread over the rest) have Services whose endpoints are real listeners on real_port; every
    other endpoint points at an address nothing listens on (no request is ever sent to those).
    Two more Ingresses: flip (a Service with two real pods, one of them flipped ready/not-ready)
    and rollout (a Service with `rollout_pods` real pods, replaced one by one)."""
    n_ing, n_svc, eps = p["ingresses"], p["services"], p["endpoints_per_service"]
    n_ns, port = p["namespaces"], p["real_port"]
    assert n_svc >= n_ing, "every Ingress needs a Service of its own"
    per_ns = -(-n_ing // n_ns)
    base, extra = divmod(n_svc, n_ing)
    last = list(range(n_ing - p["probes"] // 2, n_ing))
    step = max(1, (n_ing - len(last)) // max(1, p["probes"] - len(last)))
    probes = sorted(set(last) | set(range(0, n_ing - len(last), step)[: p["probes"] - len(last)]))
    probe_set = set(probes)
    namespaces = sorted({f"bench-{i // per_ns:03d}" for i in range(n_ing)} | {"bench-live"})
    services, slices, ingresses, hosts = [], [], [], {}
    s = k = 0
    for i in range(n_ing):
        ns = f"bench-{i // per_ns:03d}"
        host = f"h{i:05d}.bench.test"
        paths = []
        for j in range(base + (1 if i < extra else 0)):
            name = f"svc-{s:05d}"
            if i in probe_set:
                addrs = [real_ip(0, k + e) for e in range(eps)]
                k += eps
                target = port
            else:
                addrs = [unreal_ip(s * eps + e) for e in range(eps)]
                target = 8080
            services.append(service(ns, name, target))
            slices.append(endpoint_slice(ns, name, [(a, True) for a in addrs], target))
            paths.append((f"/p{j}", name))
            if i in probe_set:
                hosts.setdefault(host, []).append((f"/p{j}/x", {f"{a}:{port}" for a in addrs}))
            s += 1
        ingresses.append(ingress(ns, f"ing-{i:05d}", host, paths))
    flip = [real_ip(1, 0), real_ip(1, 1)]
    rollout_old = [real_ip(2, i) for i in range(p["rollout_pods"])]
    rollout_new = [real_ip(3, i) for i in range(p["rollout_pods"])]
    for name, addrs in (("flip", flip), ("rollout", rollout_old)):
        services.append(service("bench-live", name, port))
        slices.append(endpoint_slice("bench-live", name, [(a, True) for a in addrs], port))
        ingresses.append(ingress("bench-live", name, f"{name}.bench.test", [("/", name)]))
    real = [real_ip(0, x) for x in range(k)] + flip + rollout_old + rollout_new
    return {"namespaces": namespaces, "services": services, "slices": slices, "ingresses": ingresses,
            "probe_hosts": hosts, "flip": flip, "rollout_old": rollout_old, "rollout_new": rollout_new,
            "real": real, "endpoints": sum(len(x["endpoints"]) for x in slices)}


def service(ns, name, target):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": target, "protocol": "TCP"}]}}


def slice_endpoint(ip, ready, terminating=False):
    return {"addresses": [ip], "conditions": {"ready": ready, "serving": ready or terminating,
                                              "terminating": terminating}}


def endpoint_slice(ns, service_name, endpoints, port):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service_name}-1", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "endpoints": [slice_endpoint(ip, r) for ip, r in endpoints],
            "ports": [{"port": port, "protocol": "TCP"}]}


def ingress(ns, name, host, paths):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": ns},
            "spec": {"ingressClassName": "switchyard", "rules": [{"host": host, "http": {"paths": [
                {"path": path, "pathType": "Prefix", "backend": {"service": {"name": svc, "port": {"number": 80}}}}
                for path, svc in paths]}}]}}


# -- the API-server double with the cluster loaded -------------------------------------------------

def serve_cluster(params_path):
    sys.path.insert(0, os.path.join(ROOT, "e2e"))
    from kubeapi import KubeAPIServer
    with open(params_path) as f:
        params = json.load(f)
    c = cluster(params)
    server = KubeAPIServer(bookmark_interval=1.0)
    api = server.api
    kinds = {"Namespace": ("", "v1", "namespaces"), "Service": ("", "v1", "services"),
             "EndpointSlice": ("discovery.k8s.io", "v1", "endpointslices"),
             "Ingress": ("networking.k8s.io", "v1", "ingresses"),
             "IngressClass": ("networking.k8s.io", "v1", "ingressclasses")}

    def create(kind, obj):
        ns = obj["metadata"].get("namespace")
        code, _ = api.create(api.types[kinds[kind]], ns, obj, {})
        assert code == 201, (kind, obj["metadata"])

    create("IngressClass", {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                            "metadata": {"name": "switchyard"}, "spec": {"controller": "switchyard.io/ingress-controller"}})
    for ns in c["namespaces"]:
        create("Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for kind, objs in (("Service", c["services"]), ("EndpointSlice", c["slices"]), ("Ingress", c["ingresses"])):
        for obj in objs:
            create(kind, obj)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server.start()
    print(json.dumps({"url": server.url, "token": server.token, "ca": server.ca_file,
                      "kubeconfig": server.kubeconfig, "revision": server.revision}), flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()


# -- pods: loopback listeners that can die -----------------------------------------------------------

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Backend: %s\r\n\r\nok\n"


async def serve_pods(port):
    servers, conns = {}, {}

    async def handle(reader, writer, ip):
        conns[ip].add(writer)
        answer = RESPONSE % f"{ip}:{port}".encode()
        try:
            for _ in range(10_000_000):   # one keep-alive connection's requests (GET, no body)
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            conns[ip].discard(writer)
            writer.close()

    async def open_(ip):
        conns[ip] = set()
        servers[ip] = await asyncio.start_server(lambda r, w: handle(r, w, ip), ip, port, reuse_address=True,
                                                 backlog=512)

    async def close(ip):
        server = servers.pop(ip)
        server.close()
        for w in list(conns.get(ip, ())):
            w.transport.abort()   # a dying pod: open connections reset
        await server.wait_closed()

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().split()
        if not line:
            return
        cmd, ips = line[0], line[1:]
        for ip in ips:
            await (open_ if cmd == "open" else close)(ip)
        sys.stdout.write("ok\n")
        sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1] == "cluster":
        serve_cluster(sys.argv[2])
    elif sys.argv[1] == "pods":
        asyncio.run(serve_pods(int(sys.argv[2])))
    else:
        sys.exit(__doc__)
