"""Fixtures: one real stack (redis-server, controller, two nginx edges) per test module."""
import os
import shutil
import tempfile

import pytest

from harness import BIN, ROOT, Controller, Edge, Redis, start_backends


def pytest_sessionstart(session):
    # The controller and the edges look for redis/, lua/ and deploy/ in SWITCHYARD_HOME
    # first, then beside the binary: point it at this checkout, so a SWITCHYARD_BIN built
    # in another checkout still runs THIS tree's Lua and Function library.
    os.environ.setdefault("SWITCHYARD_HOME", ROOT)
    if not os.access(BIN, os.X_OK):
        raise pytest.UsageError(f"{BIN} is not built (run `make build` or set SWITCHYARD_BIN)")


@pytest.fixture(scope="module")
def workdir():
    d = tempfile.mkdtemp(prefix="switchyard-it-")
    os.chmod(d, 0o755)  # nginx workers (user nobody) write the edge snapshot under it
    yield d
    if os.environ.get("SWITCHYARD_KEEP_TEST_DIRS"):
        print(f"kept {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def redis(workdir):
    r = Redis(workdir)
    yield r
    r.stop()


@pytest.fixture(scope="module")
def controller(redis, workdir):
    c = Controller(redis, workdir)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def edges(redis, controller, workdir):
    es = [Edge(redis, workdir, "edge-a"), Edge(redis, workdir, "edge-b")]
    yield es
    for e in es:
        e.stop()


@pytest.fixture(scope="module")
def edge(edges):
    return edges[0]


@pytest.fixture(scope="module")
def backends():
    bs = start_backends("b1", "b2", "b3", "b4")
    yield bs
    for b in bs.values():
        b.shutdown()
        b.server_close()


# The Kubernetes modules (test_kube_*): one API-server double and a kubectl that has created the
# PhysicalEndpoint CRD and the switchyard IngressClass, per module. test_kube_apiserver.py tests
# the double itself and brings its own bare kubectl.
@pytest.fixture(scope="module")
def api():
    from kube_support import KubeAPIServer
    with KubeAPIServer(bookmark_interval=0.3) as server:
        yield server


@pytest.fixture(scope="module")
def kubectl(api, workdir):
    from kube_support import CLASS, CRD, Kubectl, kubectl_apply
    k = Kubectl(api.kubeconfig, workdir + "/kubectl-cache")
    k("apply", "-f", CRD)
    kubectl_apply(k, CLASS)
    return k

