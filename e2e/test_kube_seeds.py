"""The seed manifests the project grew from (Tests/Fixtures/seeds, addresses rewritten to
loopback), created with a real kubectl and followed by `switchyard kube`: each routes as
intended through both edges. (ingress-v1beta1.yaml is not served by Kubernetes 1.22+, nor by
the double: test_kube_apply.py applies it offline.)"""
import os
import subprocess

import pytest

from harness import wait_until
from kube_support import (SEEDS, AddressedBackend, KubeSource, find_kubectl, ingress, kube_events, kubectl_apply,
                          namespace, redis_json, spread, wait_served)

pytestmark = pytest.mark.skipif(find_kubectl() is None, reason="no kubectl on this machine")


@pytest.fixture(scope="module")
def source(api, kubectl, redis, controller, edges, workdir):
    s = KubeSource(api, redis, workdir, name="kube-seeds")
    s.wait_log("cluster listed; reconciling", timeout=30)
    yield s
    s.stop()


def self_signed(workdir, host):
    key, crt = os.path.join(workdir, f"{host}.key"), os.path.join(workdir, f"{host}.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
                    "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}", "-keyout", key, "-out", crt],
                   check=True, capture_output=True)
    return crt, key


def route_of(redis, host, path):
    for key in redis.config_keys():
        if ":route:" in key:
            doc = redis_json(redis, key)
            if doc and doc["host"] == host and doc["path"] == path:
                return doc
    return None


def test_bbs_on_vms_behind_selectorless_services(source, api, kubectl, redis, edges, workdir):
    frontend = AddressedBackend("bbs-frontend", "127.0.0.57", 8001)
    backend = AddressedBackend("bbs-backend", "127.0.0.27", 8004)
    try:
        kubectl("apply", "-f", os.path.join(SEEDS, "bbs-vm.yaml"))
        host = "bbs.test.com"
        wait_served(edges, host, "/", "bbs-frontend", timeout=15)
        for path, expect in [("/", "bbs-frontend"), ("/index.html", "bbs-frontend"), ("/api", "bbs-backend"),
                             ("/api/posts", "bbs-backend"), ("/apix", "bbs-frontend"), ("/signin", "bbs-backend"),
                             ("/signout/now", "bbs-backend"), ("/signing", "bbs-frontend")]:
            assert {e.backend(path, host) for e in edges} == {expect}, path
        # the annotations: proxy-read-timeout honoured, proxy-body-size above the edge's limit reported
        assert route_of(redis, host, "/api")["timeouts"] == {"read_ms": 300000}
        assert route_of(redis, host, "/api")["match"] == "segment_prefix"

        def reasons():
            return {e["reason"] for e in kube_events(api, "bbs")}
        wait_until(lambda: {"PartlyHonoured", "MissingSecret"} <= reasons(), 10, what=f"events on the bbs Ingress (now {reasons()})")

        # the TLS Secret it names appears: a certificate, and plain HTTP redirected to HTTPS
        crt, key = self_signed(workdir, host)
        kubectl("create", "secret", "tls", "prod-web-ssl", "--cert", crt, "--key", key)
        wait_until(lambda: {e.get("/", host).status_code for e in edges} == {308}, 10, what="the HTTPS redirect")
        certificates = redis.cli("SMEMBERS", "switchyard:{cfg}:certificates", raw=True).split()
        assert len(certificates) == 1
        assert redis_json(redis, "switchyard:{cfg}:certificate:" + certificates[0])["names"] == [host]
    finally:
        frontend.kill()
        backend.kill()


def test_physical_endpoint_merged_into_its_service(source, api, kubectl, redis, edges):
    m1 = AddressedBackend("machine-1", "127.0.0.11", 10001)
    m2 = AddressedBackend("machine-2", "127.0.0.12", 10001)
    try:
        kubectl_apply(kubectl, namespace("test"))
        kubectl("apply", "-f", os.path.join(SEEDS, "physical-endpoint.yaml"))
        # the seed has no Ingress: one that routes to its Service
        kubectl_apply(kubectl, ingress("pe", [("pe.test.com", [("/", "ImplementationSpecific", "test-service", 10001)])], ns="test"))
        wait_until(lambda: spread(edges, "pe.test.com", "/conf/") == {"machine-1", "machine-2"}, 15, what="both machines served")
        upstream_key = next(k for k in redis.config_keys() if ":upstream:test-test-service-10001." in k)
        upstream = redis_json(redis, upstream_key)
        assert upstream["health_check"]["path"] == "/conf/"
        assert upstream["health_check"]["interval_ms"] == 10000
        assert sorted(e["address"] for e in upstream["endpoints"]) == ["127.0.0.11:10001", "127.0.0.12:10001"]
    finally:
        m1.kill()
        m2.kill()
