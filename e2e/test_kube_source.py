"""`switchyard kube` end to end: objects created, patched and deleted with a real kubectl on the
API-server double, followed by the source into a real Redis, served by two real nginx edges to
loopback backends standing for pods and for physical machines, with a real prober.

Paths here are ImplementationSpecific where the path rule is not the subject (the Prefix and
host rules have their own tables: test_kube_seeds.py and the core's conformance tests)."""
import time

import pytest

from harness import Prober, wait_until
from kube_support import (AddressedBackend, KubeSource, find_kubectl, get_object, ingress, kube_events, kubectl_apply,
                          namespace, physical, service, slice_, spread, wait_served)

pytestmark = pytest.mark.skipif(find_kubectl() is None, reason="no kubectl on this machine")

IS = "ImplementationSpecific"


@pytest.fixture(scope="module")
def prober(redis, workdir):
    p = Prober(redis, workdir, "prober-k", lease_ms=1000)
    yield p
    p.stop()


@pytest.fixture(scope="module")
def source(api, kubectl, redis, controller, edges, prober, workdir):
    s = KubeSource(api, redis, workdir, extra=("--publish-address", "127.0.0.1", "--publish-address", "edge.example"))
    s.wait_log("cluster listed; reconciling", timeout=30)
    yield s
    s.stop()


_n = [0]


@pytest.fixture
def ns(kubectl):
    _n[0] += 1
    name = f"k{_n[0]}"
    kubectl_apply(kubectl, namespace(name))
    return name


@pytest.fixture
def backends():
    made = []

    def make(name, host="127.0.0.1", port=0):
        b = AddressedBackend(name, host, port)
        made.append(b)
        return b
    yield make
    for b in made:
        b.kill()


def test_pods_and_physical_machines_through_both_edges(source, kubectl, edges, backends, ns):
    pod = backends("pod-1")
    m1 = backends("machine-1", "127.0.0.11", pod.port)
    m2 = backends("machine-2", "127.0.0.12", pod.port)
    host = f"{ns}.mixed.example"
    kubectl_apply(
        kubectl,
        physical("machines", [m1.address, m2.address], ns=ns, http_detect="/healthz", interval=1),
        service("app", 80, pod.port, ns=ns, annotations={"test.api.io/physical.deployment.endpoints": "machines"}),
        slice_("app-1", "app", [("127.0.0.1", True)], pod.port, ns=ns),
        ingress("app", [(host, [("/", IS, "app", 80)])], ns=ns))
    wait_served(edges, host, "/x", {"pod-1", "machine-1", "machine-2"}, timeout=15)
    wait_until(lambda: spread(edges, host, "/x") == {"pod-1", "machine-1", "machine-2"}, 15,
               what="both edges to spread over the pod and both machines")


def test_a_killed_physical_machine_leaves_within_interval_times_fall(source, kubectl, edges, backends, prober, ns):
    pod = backends("pod-k")
    m1 = backends("machine-k1", "127.0.0.11", 0)
    m2 = backends("machine-k2", "127.0.0.12", m1.port)
    host = f"{ns}.killed.example"
    kubectl_apply(
        kubectl,
        physical("machines", [m1.address, m2.address], ns=ns, http_detect="/healthz", interval=1),
        service("app", m1.port, ns=ns, annotations={"test.api.io/physical.deployment.endpoints": "machines"}),
        slice_("app-1", "app", [("127.0.0.1", True)], pod.port, ns=ns),
        ingress("app", [(host, [("/", IS, "app", m1.port)])], ns=ns))
    wait_until(lambda: spread(edges, host, "/") == {"pod-k", "machine-k1", "machine-k2"}, 15, what="all three in rotation")
    # let the prober decide "up" first, so the kill is a transition
    wait_until(lambda: any(r.get("state") == "up" for r in _health(prober, m1.address).values()), 10, what="m1 up")
    m1.kill()
    killed = time.monotonic()
    # interval 1 s x fall 3, plus the probe timeout (0.5 s) and the edges' reaction
    wait_until(lambda: "machine-k1" not in spread(edges, host, "/", n=12), 6.0, interval=0.1,
               what="the killed machine to leave both edges' rotation")
    took = time.monotonic() - killed
    assert took <= 5.0, f"took {took:.2f}s"
    # the pod is not checked by the prober: it stays whatever the prober says
    assert spread(edges, host, "/") == {"pod-k", "machine-k2"}


def _health(prober, address):
    out = {}
    for key in prober.redis.cli("SMEMBERS", "switchyard:{cfg}:health_upstreams", raw=True).split():
        for a, record in prober.health(key).items():
            if a == address:
                out[key] = record
    return out


def test_a_pod_turned_not_ready_leaves_at_once(source, kubectl, edges, backends, ns):
    a, b = backends("pod-a"), backends("pod-b", "127.0.0.2", 0)
    host = f"{ns}.ready.example"
    svc = service("web", 80, a.port, ns=ns)
    kubectl_apply(kubectl, svc, ingress("web", [(host, [("/", IS, "web", 80)])], ns=ns),
                  slice_("web-1", "web", [("127.0.0.1", True)], a.port, ns=ns),
                  slice_("web-2", "web", [("127.0.0.2", True)], b.port, ns=ns))
    wait_until(lambda: spread(edges, host, "/") == {"pod-a", "pod-b"}, 15, what="both pods served")
    kubectl_apply(kubectl, slice_("web-2", "web", [("127.0.0.2", False)], b.port, ns=ns))
    changed = time.monotonic()
    wait_until(lambda: spread(edges, host, "/", n=8) == {"pod-a"}, 2, interval=0.02, what="the not-ready pod to leave")
    assert time.monotonic() - changed < 1.0
    for _ in range(50):  # and it stays out
        assert {e.backend("/", host) for e in edges} == {"pod-a"}


def test_an_ingress_deleted_gives_404(source, kubectl, edges, backends, ns, redis):
    a = backends("pod-d")
    host = f"{ns}.deleted.example"
    kubectl_apply(kubectl, service("web", 80, a.port, ns=ns), slice_("web-1", "web", [("127.0.0.1", True)], a.port, ns=ns),
                  ingress("web", [(host, [("/", IS, "web", 80)])], ns=ns))
    wait_served(edges, host, "/", "pod-d", timeout=15)
    kubectl("delete", "ingress", "web", "-n", ns)
    wait_served(edges, host, "/", 404, timeout=5)
    assert not [k for k in redis.config_keys() if f":route:{ns}-web." in k]


def test_a_forced_410_mid_run_converges_with_nothing_stale(source, api, kubectl, edges, backends, ns, redis):
    a = backends("pod-g")
    gone, new = f"{ns}.gone.example", f"{ns}.new.example"
    kubectl_apply(kubectl, service("web", 80, a.port, ns=ns), slice_("web-1", "web", [("127.0.0.1", True)], a.port, ns=ns),
                  ingress("old", [(gone, [("/", IS, "web", 80)])], ns=ns))
    wait_served(edges, gone, "/", "pod-g", timeout=15)
    # the source loses its Ingress watch: every cluster-wide Ingress request fails for now
    api.fail_next(100000, code=503, path_prefix="/apis/networking.k8s.io/v1/ingresses")
    api.drop_watches()
    kubectl("delete", "ingress", "old", "-n", ns)  # namespaced path: kubectl is not refused
    kubectl_apply(kubectl, ingress("new", [(new, [("/", IS, "web", 80)])], ns=ns))
    time.sleep(1.0)
    assert {e.backend("/", gone) for e in edges} == {"pod-g"}, "the source should not have seen the delete yet"
    # history compacted: the version the source resumes from answers 410, so it must list again
    api.compact(advance=True)
    with api.requests_lock:
        api.failures.clear()
    wait_served(edges, gone, "/", 404, timeout=20, what="the Ingress deleted during the outage to be gone")
    wait_served(edges, new, "/", "pod-g", timeout=5)
    assert not [k for k in redis.config_keys() if f":route:{ns}-old." in k]
    assert "410" in source.output() or "expired" in source.output()


def test_a_restarted_source_writes_nothing(source, redis):
    # everything the earlier tests left is in place: a restart over the same cluster must not
    # move the version
    before = redis.version()
    source.restart()
    source.wait_log("cluster listed; reconciling", timeout=30)
    source.wait_log("nothing to write", timeout=10)
    time.sleep(1.0)
    assert redis.version() == before
    assert "cluster written" not in source.output()


def test_bad_cluster_input_is_reported_and_skipped(source, api, kubectl, edges, backends, ns):
    a = backends("pod-ok")
    good, bad = f"{ns}.good.example", f"{ns}.bad.example"
    kubectl_apply(
        kubectl,
        service("web", 80, a.port, ns=ns), slice_("web-1", "web", [("127.0.0.1", True)], a.port, ns=ns),
        service("broken", 80, a.port, ns=ns, annotations={"test.api.io/physical.deployment.endpoints": "malformed"}),
        slice_("broken-1", "broken", [("127.0.0.1", True)], a.port, ns=ns),
        physical("malformed", ["not-an-address", "127.0.0.1:1"], ns=ns),
        ingress("missing-service", [(bad, [("/", IS, "nowhere", 80)])], ns=ns),
        ingress("missing-port", [(bad, [("/port", IS, "web", 8080)])], ns=ns),
        ingress("good", [(good, [("/", IS, "web", 80)]), (f"{ns}.broken.example", [("/", IS, "broken", 80)])], ns=ns))
    wait_served(edges, good, "/", "pod-ok", timeout=15)
    # the Service whose PhysicalEndpoint is malformed still serves its pods
    wait_served(edges, f"{ns}.broken.example", "/", "pod-ok", timeout=5)
    assert {e.backend("/", bad) for e in edges} == {404}
    assert {e.backend("/port", bad) for e in edges} == {404}

    def reasons():
        return {(e["involvedObject"]["kind"], e["involvedObject"]["name"], e["reason"])
                for e in kube_events(api) if e["involvedObject"].get("namespace") == ns}
    wait_until(lambda: {("Ingress", "missing-service", "MissingService"), ("Ingress", "missing-port", "MissingPort"),
                        ("PhysicalEndpoint", "malformed", "InvalidEndpoint")} <= reasons(), 10,
               what=f"events on the bad objects (now {reasons()})")
    event = next(e for e in kube_events(api, "missing-service") if e["involvedObject"].get("namespace") == ns)
    assert event["type"] == "Warning"
    assert "spec.rules[0].http.paths[0].backend.service.name" in event["message"]
    assert event["involvedObject"]["uid"]
    assert "Ingress " + ns + "/missing-service" in source.output()


def test_ingress_status_lists_the_publish_addresses(source, api, kubectl, backends, edges, ns):
    a = backends("pod-s")
    host = f"{ns}.status.example"
    kubectl_apply(kubectl, service("web", 80, a.port, ns=ns), ingress("web", [(host, [("/", IS, "web", 80)])], ns=ns))

    def status():
        obj = get_object(api, f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/web") or {}
        return obj.get("status", {}).get("loadBalancer", {}).get("ingress")
    wait_until(lambda: status() == [{"ip": "127.0.0.1"}, {"hostname": "edge.example"}], 10, what=f"ingress status (now {status()})")
    # another class's Ingress gets no status
    kubectl_apply(kubectl, ingress("other", [(host, [("/", IS, "web", 80)])], ns=ns, cls="nginx"))
    time.sleep(1.0)
    other = get_object(api, f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/other")
    assert not other.get("status", {}).get("loadBalancer", {}).get("ingress")


def test_physical_endpoint_status_shows_each_machines_health(source, api, kubectl, backends, edges, prober, ns):
    pod = backends("pod-p")
    m1 = backends("machine-p1", "127.0.0.11", 0)
    m2 = backends("machine-p2", "127.0.0.12", m1.port)
    kubectl_apply(
        kubectl,
        physical("machines", [m1.address, m2.address], ns=ns, http_detect="/healthz", interval=1),
        service("app", m1.port, ns=ns, annotations={"test.api.io/physical.deployment.endpoints": "machines"}),
        slice_("app-1", "app", [("127.0.0.1", True)], pod.port, ns=ns),
        ingress("app", [(f"{ns}.pe.example", [("/", IS, "app", m1.port)])], ns=ns))

    def health():
        obj = get_object(api, f"/apis/test.api.io/v1beta1/namespaces/{ns}/physicalendpoints/machines") or {}
        return {e["address"]: e["health"] for e in obj.get("status", {}).get("endpoints", [])}
    wait_until(lambda: health() == {m1.address: "up", m2.address: "up"}, 15, what=f"both up in the status (now {health()})")
    m2.kill()
    wait_until(lambda: health() == {m1.address: "up", m2.address: "down"}, 15, what=f"m2 down in the status (now {health()})")
