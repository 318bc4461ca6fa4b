"""Helpers for the Kubernetes end-to-end tests (e2e/test_kube_*.py): the API-server double with a
real kubectl, the `switchyard kube` process, loopback backends on chosen addresses standing for
pods and physical machines, and waiting for both edges to agree."""
import json
import os
import signal
import socket
import threading
import time

import requests
import yaml

from harness import BIN, ROOT, KillableServer, Process, _controlled_handler, free_port, wait_until
from kubeapi import KubeAPIServer  # noqa: F401  (re-exported for the test modules)
from kubeapi.kubectl import Kubectl, find_kubectl  # noqa: F401

SEEDS = os.path.join(ROOT, "Tests", "Fixtures", "seeds")
CRD = os.path.join(ROOT, "Tests", "Fixtures", "kube", "physicalendpoint-crd.yaml")
CLASS = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "switchyard"},
         "spec": {"controller": "switchyard.io/ingress-controller"}}


class AddressedBackend(KillableServer):
    """A loopback backend on a chosen address and port (127.0.0.57:8001 for the bbs seed),
    answering 200 with X-Backend: name; kill() closes it like a dying process."""

    def __init__(self, name, host="127.0.0.1", port=0):
        self._bind = (host, port)
        self.name, self.delay, self.hits, self.active, self.max_active = name, 0.0, 0, 0, 0
        super().__init__(_controlled_handler())

    def server_bind(self):
        self.server_address = self._bind
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self._bind)
        self.server_address = self.socket.getsockname()

    @property
    def host(self):
        return self.server_address[0]

    @property
    def address(self):
        return f"{self.host}:{self.port}"


class KubeSource:
    """One `switchyard kube` process following the double."""

    def __init__(self, api, redis, workdir, name="kube-a", extra=(), env=None, lease=(3, 2, 0.5), kubeconfig=None):
        self.name = name
        duration, deadline, retry = lease
        argv = [BIN, "kube", "--kubeconfig", kubeconfig or api.kubeconfig, "--redis", redis.address, "--id", name,
                "--lease-duration", str(duration), "--renew-deadline", str(deadline), "--retry-period", str(retry),
                "--debounce-ms", "20", "--status-interval", "0.5", "--log-level", "debug", *extra]
        self.argv, self.env, self.workdir = argv, dict(os.environ, **(env or {})), workdir
        self.process = Process(name, argv, env=self.env, log_dir=workdir)

    def restart(self):
        """Stops the process (SIGTERM: it releases the lease) and starts it again."""
        self.process.stop()
        self.process = Process(self.name, self.argv, env=self.env, log_dir=self.workdir)

    def output(self):
        return self.process.output()

    def alive(self):
        return self.process.alive()

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.proc.wait(10)

    def stop(self):
        self.process.stop()

    def wait_log(self, text, timeout=15):
        wait_until(lambda: text in self.output(), timeout, what=f"{self.name} to log {text!r}:\n{self.output()[-3000:]}")


def manifest(*objects):
    return "---\n".join(yaml.safe_dump(o) for o in objects)


def kubectl_apply(kubectl, *objects):
    return kubectl("apply", "-f", "-", stdin=manifest(*objects))


def ingress(name, rules, ns="default", annotations=None, tls=None, default_backend=None, cls="switchyard"):
    """rules: [(host or None, [(path, pathType, service, port)])]"""
    spec = {"rules": [
        dict(({"host": h} if h else {}),
             http={"paths": [{"path": p, "pathType": t, "backend": {"service": {"name": s, "port": {"number": port}}}}
                             for p, t, s, port in paths]})
        for h, paths in rules]}
    if cls:
        spec["ingressClassName"] = cls
    if tls:
        spec["tls"] = tls
    if default_backend:
        spec["defaultBackend"] = {"service": {"name": default_backend[0], "port": {"number": default_backend[1]}}}
    meta = {"name": name, "namespace": ns}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}


def service(name, port, target=None, ns="default", selector=True, annotations=None, port_name=None):
    p = {"port": port, "targetPort": target or port, "protocol": "TCP"}
    if port_name:
        p["name"] = port_name
    spec = {"ports": [p]}
    if selector:
        spec["selector"] = {"app": name}
    meta = {"name": name, "namespace": ns}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def slice_(name, service_name, endpoints, port, ns="default", port_name=None):
    """endpoints: [(ip, ready)] -> one EndpointSlice of the Service (pods)."""
    p = {"port": port, "protocol": "TCP"}
    if port_name:
        p["name"] = port_name
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}} for ip, ready in endpoints],
            "ports": [p]}


def physical(name, endpoints, ns="default", http_detect="/healthz", interval=1):
    spec = {"endpoints": endpoints, "interval": interval}
    if http_detect:
        spec["http_detect"] = http_detect
    return {"apiVersion": "test.api.io/v1beta1", "kind": "PhysicalEndpoint", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def namespace(name):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def served_by(edges, host, path, scheme_port=None):
    """The X-Backend each edge answers with (or the status code), as a list."""
    return [e.backend(path, host) for e in edges]


def wait_served(edges, host, path, expect, timeout=10, what=None):
    """Until every edge answers `expect` (a backend name, a set of names, or a status code)."""
    def check():
        got = served_by(edges, host, path)
        if isinstance(expect, set):
            return all(g in expect for g in got)
        return all(g == expect for g in got)
    wait_until(check, timeout, interval=0.05,
               what=what or f"{host}{path} -> {expect} on every edge (now {served_by(edges, host, path)})")


def spread(edges, host, path, n=24):
    """The set of backends that answer n requests through each edge."""
    out = set()
    for e in edges:
        for _ in range(n):
            out.add(e.backend(path, host))
    return out


def redis_json(redis, key):
    raw = redis.get(key)
    return json.loads(raw) if raw else None


def kube_events(api, name=None):
    """Events the source posted (the double's store, through its REST API)."""
    r = requests.get(api.url + "/api/v1/events", headers={"Authorization": f"Bearer {api.token}"},
                     verify=api.ca_file, timeout=10)
    r.raise_for_status()
    items = r.json()["items"]
    return [e for e in items if name is None or e["involvedObject"].get("name") == name]


def get_object(api, path):
    r = requests.get(api.url + path, headers={"Authorization": f"Bearer {api.token}"}, verify=api.ca_file, timeout=10)
    return r.json() if r.status_code == 200 else None


__all__ = ["AddressedBackend", "KubeSource", "KubeAPIServer", "Kubectl", "find_kubectl", "CLASS", "CRD", "SEEDS", "manifest", "kubectl_apply", "ingress", "service",
           "slice_", "physical", "namespace", "wait_served", "spread", "served_by", "redis_json", "kube_events",
           "get_object", "free_port", "threading", "time"]
