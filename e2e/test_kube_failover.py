"""Two `switchyard kube` processes, one active through a coordination.k8s.io Lease on the
API-server double: only the leader watches and writes; a killed leader is replaced within a few
seconds (the lease duration, 3 s here, plus a list and a write); a stopped one at once."""
import time

import pytest

from harness import wait_until
from kube_support import (AddressedBackend, KubeSource, find_kubectl, ingress, kubectl_apply, service, slice_,
                          wait_served)

pytestmark = pytest.mark.skipif(find_kubectl() is None, reason="no kubectl on this machine")
IS = "ImplementationSpecific"


@pytest.fixture(scope="module")
def pod():
    b = AddressedBackend("pod-f")
    yield b
    b.kill()


def leaders(*sources):
    return [s for s in sources if s.alive() and "became leader" in s.output()]


def test_one_leader_writes_and_a_killed_one_is_replaced_within_seconds(api, kubectl, redis, controller, edges, pod, workdir):
    kubectl_apply(kubectl, service("web", 80, pod.port), slice_("web-1", "web", [("127.0.0.1", True)], pod.port),
                  ingress("first", [("first.example", [("/", IS, "web", 80)])]))
    a = KubeSource(api, redis, workdir, name="kube-fa")
    b = KubeSource(api, redis, workdir, name="kube-fb")
    try:
        wait_until(lambda: len(leaders(a, b)) == 1, 15, what="one leader")
        leader, standby = (a, b) if leaders(a, b) == [a] else (b, a)
        wait_served(edges, "first.example", "/", "pod-f", timeout=15)
        time.sleep(1.0)
        assert "became leader" not in standby.output()
        assert "cluster listed" not in standby.output(), "a standby must not watch or write"

        leader.kill()
        killed = time.monotonic()
        kubectl_apply(kubectl, ingress("second", [("second.example", [("/", IS, "web", 80)])]))
        wait_served(edges, "second.example", "/", "pod-f", timeout=15, what="the standby to take over and serve a new Ingress")
        took = time.monotonic() - killed
        assert "became leader" in standby.output()
        assert took < 8.0, f"failover took {took:.1f}s"
        print(f"failover after SIGKILL: {took:.2f}s")

        # the killed process comes back as a standby; a clean stop of the leader hands over at once
        leader.restart()
        time.sleep(1.5)
        assert leaders(leader, standby) == [standby]
        standby.stop()
        stopped = time.monotonic()
        kubectl_apply(kubectl, ingress("third", [("third.example", [("/", IS, "web", 80)])]))
        wait_served(edges, "third.example", "/", "pod-f", timeout=10)
        took = time.monotonic() - stopped
        assert took < 3.0, f"hand-over after a clean stop took {took:.1f}s"
    finally:
        a.stop()
        b.stop()
