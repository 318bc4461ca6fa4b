"""`switchyard apply -f`: manifests translated offline and written through the admin API of a
real controller, served by real edges."""
import os
import subprocess

import pytest
import yaml

from harness import BIN
from kube_support import SEEDS, AddressedBackend, ingress, manifest, service, spread, wait_served
from harness import wait_until

IS = "ImplementationSpecific"


@pytest.fixture(scope="module")
def pod():
    b = AddressedBackend("apply-pod")
    yield b
    b.kill()


def apply(controller, *args, stdin=None, token="test-token"):
    env = dict(os.environ, SWITCHYARD_CONTROLLER=f"http://127.0.0.1:{controller.port}")
    env.pop("SWITCHYARD_ADMIN_TOKEN", None)
    if token:
        env["SWITCHYARD_ADMIN_TOKEN"] = token
    return subprocess.run([BIN, "apply", *args], env=env, capture_output=True, text=True, input=stdin, timeout=60)


def endpoints(name, ip, port, ns="default"):
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"port": port}]}]}


def write(path, *objects):
    with open(path, "w") as f:
        f.write(manifest(*objects))
    return path


def test_an_invalid_document_stops_everything_and_names_where(controller, redis, workdir, pod):
    good = write(os.path.join(workdir, "good.yaml"), service("web", 80, pod.port, selector=False),
                 endpoints("web", "127.0.0.1", pod.port), ingress("ok", [("ok.example", [("/", IS, "web", 80)])]))
    bad_objects = [ingress("typo", [("typo.example", [("/", "Prefixx", "web", 80)])], ns="shop"),
                   {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "annotations": {"x": 5}},
                    "spec": {"ports": [{"port": 80}]}}]
    bad = write(os.path.join(workdir, "bad.yaml"), *bad_objects)
    before = redis.version()
    p = apply(controller, "-f", good, "-f", bad)
    assert p.returncode == 1
    assert f"{bad}#1 (line 1) Ingress shop/typo: spec.rules[0].http.paths[0].pathType: 'Prefixx' is not a path type" in p.stderr
    assert f"{bad}#2" in p.stderr and "Service default/s: metadata.annotations.x: must be a string" in p.stderr
    assert "nothing applied" in p.stderr
    assert redis.version() == before

    # a backend naming a Service the files do not define is an error too, named on the Ingress
    missing = write(os.path.join(workdir, "missing.yaml"), ingress("lost", [("lost.example", [("/", IS, "nowhere", 80)])]))
    p = apply(controller, "-f", missing)
    assert p.returncode == 1
    assert "Ingress default/lost: spec.rules[0].http.paths[0].backend.service.name: Service default/nowhere does not exist" in p.stderr
    assert redis.version() == before


def test_dry_run_then_apply_then_nothing_to_do(controller, redis, edges, workdir, pod):
    d = os.path.join(workdir, "app")
    os.makedirs(d, exist_ok=True)
    write(os.path.join(d, "1-service.yaml"), service("web", 80, pod.port, selector=False), endpoints("web", "127.0.0.1", pod.port))
    write(os.path.join(d, "2-ingress.yaml"),
          ingress("web", [("apply.example", [("/api", "Exact", "web", 80), ("/", IS, "web", 80)])],
                  annotations={"nginx.ingress.kubernetes.io/proxy-read-timeout": "30"}))
    with open(os.path.join(d, "notes.txt"), "w") as f:
        f.write("not a manifest")
    before = redis.version()
    p = apply(controller, "-f", d, "--dry-run")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert sum(1 for line in lines if line.startswith("would create route ")) == 2
    assert sum(1 for line in lines if line.startswith("would create upstream ")) == 1
    assert "Ingress default/web: apply.example /api (exact)" in p.stdout
    assert redis.version() == before

    p = apply(controller, "-f", d)
    assert p.returncode == 0, p.stderr
    assert "applied: version" in p.stdout
    wait_served(edges, "apply.example", "/api", "apply-pod")
    wait_served(edges, "apply.example", "/other", "apply-pod")
    after = redis.version()
    assert after == before + 1  # one atomic batch

    p = apply(controller, "-f", d)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("nothing to change")
    assert redis.version() == after

    # a path removed from the Ingress: its route is deleted; the upstream stays (still used)
    write(os.path.join(d, "2-ingress.yaml"), ingress("web", [("apply.example", [("/", IS, "web", 80)])],
                                                      annotations={"nginx.ingress.kubernetes.io/proxy-read-timeout": "30"}))
    p = apply(controller, "-f", d, "--dry-run")
    assert [line.split()[:3] for line in p.stdout.splitlines()] == [["would", "delete", "route"]]
    p = apply(controller, "-f", d)
    assert p.returncode == 0, p.stderr
    wait_served(edges, "apply.example", "/api", "apply-pod")  # now through the prefix route
    routes = controller.ok("GET", "/api/v1/routes")["items"]
    assert len([r for r in routes if r["host"] == "apply.example"]) == 1


def test_standard_input_and_the_v1beta1_forms(controller, edges, pod):
    text = yaml.safe_dump_all([
        {"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "legacy", "namespace": "old"},
         "spec": {"rules": [{"host": "legacy.example",
                             "http": {"paths": [{"path": "/", "backend": {"serviceName": "web", "servicePort": 80}}]}}]}},
        service("web", 80, pod.port, ns="old", selector=False), endpoints("web", "127.0.0.1", pod.port, ns="old")])
    p = apply(controller, "-f", "-", stdin=text)
    assert p.returncode == 0, p.stderr
    wait_served(edges, "legacy.example", "/x", "apply-pod")


def test_refused_without_the_token(controller, workdir, pod):
    f = write(os.path.join(workdir, "tok.yaml"), service("web", 80, pod.port, selector=False), endpoints("web", "127.0.0.1", pod.port),
              ingress("tok", [("tok.example", [("/", IS, "web", 80)])]))
    p = apply(controller, "-f", f, token=None)
    assert p.returncode == 1
    assert "HTTP 401" in p.stderr


# --- the seeds, offline ---------------------------------------------------------------------

def test_seed_extensions_v1beta1_ingress_with_the_default_backend(controller, edges, workdir):
    """ingress-v1beta1.yaml: a host-less rule for /api (serviceName/servicePort) and the
    default-http-backend Service, used as --default-backend. Its heapster Service and both
    Services' endpoints are not in the seed: a companion file gives them (loopback)."""
    heapster = AddressedBackend("heapster")
    fallback = AddressedBackend("default-http-backend", "127.0.0.80", 8080)
    try:
        companion = write(
            os.path.join(workdir, "v1beta1-companion.yaml"),
            service("heapster", 80, heapster.port, ns="kube-system", selector=False),
            endpoints("heapster", "127.0.0.1", heapster.port, ns="kube-system"),
            endpoints("default-http-backend", "127.0.0.80", 8080, ns="kube-system"))
        p = apply(controller, "-f", os.path.join(SEEDS, "ingress-v1beta1.yaml"), "-f", companion,
                  "--default-backend", "kube-system/default-http-backend")
        assert p.returncode == 0, p.stderr
        assert "warning" not in p.stderr, p.stderr  # ingress.kubernetes.io/ssl-redirect is an honoured (old) prefix
        for host in ("any.example", "10.1.2.3", "bbs.test.com.example"):
            wait_served(edges, host, "/api/v1/model", "heapster")
            wait_served(edges, host, "/", "default-http-backend")
            wait_served(edges, host, "/other", "default-http-backend")
    finally:
        heapster.kill()
        fallback.kill()


def test_seed_bbs_offline(controller, edges):
    frontend = AddressedBackend("bbs-frontend", "127.0.0.57", 8001)
    backend = AddressedBackend("bbs-backend", "127.0.0.27", 8004)
    try:
        p = apply(controller, "-f", os.path.join(SEEDS, "bbs-vm.yaml"))
        assert p.returncode == 0, p.stderr
        assert "proxy-body-size" in p.stderr and "prod-web-ssl" in p.stderr  # warnings, printed; applied anyway
        for path, expect in [("/", "bbs-frontend"), ("/api/posts", "bbs-backend"), ("/apix", "bbs-frontend"),
                             ("/signin", "bbs-backend"), ("/signout", "bbs-backend")]:
            wait_served(edges, "bbs.test.com", path, expect)
        p = apply(controller, "-f", os.path.join(SEEDS, "bbs-vm.yaml"))
        assert p.stdout.startswith("nothing to change"), p.stdout
    finally:
        frontend.kill()
        backend.kill()


def test_seed_physical_endpoint_offline(controller, edges, workdir):
    m1 = AddressedBackend("machine-1", "127.0.0.11", 10001)
    m2 = AddressedBackend("machine-2", "127.0.0.12", 10001)
    try:
        companion = write(os.path.join(workdir, "pe-ingress.yaml"),
                          ingress("pe", [("pe.test.com", [("/", IS, "test-service", 10001)])], ns="test", cls=None))
        p = apply(controller, "-f", os.path.join(SEEDS, "physical-endpoint.yaml"), "-f", companion)
        assert p.returncode == 0, p.stderr
        wait_until(lambda: spread(edges, "pe.test.com", "/conf/") == {"machine-1", "machine-2"}, 10, what="both machines")
    finally:
        m1.kill()
        m2.kill()


def test_more_objects_than_one_atomic_batch_are_applied_in_parts(controller, redis, edges, workdir, pod):
    """1,001 Ingresses (1,001 routes + 1 upstream) exceed the atomic bound of /apply (1,000
    objects, issue 16): apply says so and writes them in consecutive atomic parts; a second
    apply writes nothing."""
    d = os.path.join(workdir, "many")
    os.makedirs(d, exist_ok=True)
    write(os.path.join(d, "1-service.yaml"), service("many", 80, pod.port, selector=False),
          endpoints("many", "127.0.0.1", pod.port))
    write(os.path.join(d, "2-ingresses.yaml"),
          *[ingress(f"many-{i}", [(f"m{i}.many.example", [("/", IS, "many", 80)])]) for i in range(1001)])
    before = redis.version()
    p = apply(controller, "-f", d)
    assert p.returncode == 0, p.stderr
    assert "in atomic parts" in p.stdout, p.stdout
    after = redis.version()
    assert after == before + 2, (before, after)  # 1,002 objects: two parts, two versions
    wait_served(edges, "m1000.many.example", "/", "apply-pod")
    wait_served(edges, "m0.many.example", "/", "apply-pod")
    p = apply(controller, "-f", d)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("nothing to change"), p.stdout[:300]
    assert redis.version() == after
