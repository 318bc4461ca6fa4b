"""The Kubernetes API-server double (e2e/kubeapi) held to the real protocol by a real kubectl:
every verb kubectl uses, on every kind a Switchyard controller reads or writes, plus CRDs and
their status subresource, watch, pagination, 410 after compaction, and authentication."""
import base64
import json
import os
import select
import subprocess
import tempfile
import time

import pytest
import requests
import yaml

from kubeapi.kubectl import Kubectl, find_kubectl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "Tests", "Fixtures", "seeds")
CRD = os.path.join(ROOT, "Tests", "Fixtures", "kube", "physicalendpoint-crd.yaml")

pytestmark = pytest.mark.skipif(find_kubectl() is None, reason="no kubectl on this machine")


@pytest.fixture(scope="module")
def kubectl(api):
    with tempfile.TemporaryDirectory(prefix="kubectl-cache-") as cache:
        yield Kubectl(api.kubeconfig, cache)


_counter = [0]


@pytest.fixture
def ns(kubectl):
    _counter[0] += 1
    name = f"t{_counter[0]}-{os.getpid()}"
    kubectl("create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
    return name


def raw(api, method, path, **kw):
    headers = kw.pop("headers", {})
    headers.setdefault("Authorization", f"Bearer {api.token}")
    return requests.request(method, api.url + path, headers=headers, verify=api.ca_file, timeout=15, **kw)


def doc(text):
    return yaml.safe_dump(text) if isinstance(text, dict) else text


# --- discovery and authentication ------------------------------------------------------------

def test_kubectl_version_and_discovery(api, kubectl):
    version = json.loads(kubectl("version", "-o", "json"))
    assert version["serverVersion"]["major"] == "1" and version["clientVersion"]["gitVersion"].startswith("v1.")
    resources = kubectl("api-resources", "--no-headers")
    lines = {line.split()[0]: line for line in resources.splitlines()}
    for name in ("namespaces", "services", "endpoints", "secrets", "events", "endpointslices", "ingresses",
                 "ingressclasses", "leases", "customresourcedefinitions"):
        assert name in lines, resources
    assert "ing" in lines["ingresses"].split() and "networking.k8s.io/v1" in lines["ingresses"]
    # The plain (non-aggregated) discovery document answers kubectl's aggregated Accept header.
    r = raw(api, "GET", "/apis", headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"})
    assert r.status_code == 200 and r.json()["kind"] == "APIGroupList"
    gv = raw(api, "GET", "/apis/networking.k8s.io/v1").json()
    names = {res["name"]: res for res in gv["resources"]}
    assert names["ingresses/status"]["verbs"] == ["get", "patch", "update"]
    assert names["ingresses"]["namespaced"] and not names["ingressclasses"]["namespaced"]


def test_bearer_token_is_required(api, kubectl, tmp_path):
    assert raw(api, "GET", "/api/v1/namespaces", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = raw(api, "GET", "/api/v1/namespaces", headers={"Authorization": ""})
    assert r.status_code == 401 and r.json()["reason"] == "Unauthorized"
    bad = api.write_kubeconfig(str(tmp_path / "bad"), token="not-the-token")
    err = Kubectl(bad, str(tmp_path / "cache")).fails("get", "namespaces")
    assert "Unauthorized" in err or "must be logged in" in err


def test_client_certificate_authentication(api, tmp_path):
    k = Kubectl(api.kubeconfig_client_cert, str(tmp_path / "cache"))
    assert "namespace/default" in k("get", "namespaces", "-o", "name")
    with open(api.kubeconfig_client_cert) as f:
        users = json.load(f)["users"][0]["user"]
    assert "token" not in users and "client-certificate-data" in users


def test_tls_verification(api, tmp_path):
    wrong = api.write_kubeconfig(str(tmp_path / "wrong-ca"), ca_file=api.wrong_ca_file)
    err = Kubectl(wrong, str(tmp_path / "c1")).fails("get", "namespaces")
    assert "certificate" in err and "x509" in err
    insecure = api.write_kubeconfig(str(tmp_path / "insecure"), insecure=True)
    assert "namespace/default" in Kubectl(insecure, str(tmp_path / "c2"))("get", "namespaces", "-o", "name")


# --- every kind: create, get, list, apply, patch, replace, delete -----------------------------

TLS_CRT = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()
TLS_KEY = base64.b64encode(b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n").decode()

KINDS = {
    "service": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "obj"},
                "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}},
    "endpoints": {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "obj"},
                  "subsets": [{"addresses": [{"ip": "127.0.0.21"}], "ports": [{"name": "http", "port": 8080}]}]},
    "secret": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "obj"}, "type": "kubernetes.io/tls",
               "data": {"tls.crt": TLS_CRT, "tls.key": TLS_KEY}},
    "event": {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "obj"}, "reason": "Synced", "type": "Normal",
              "message": "synced", "involvedObject": {"kind": "Ingress", "name": "web", "apiVersion": "networking.k8s.io/v1"}},
    "endpointslice": {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {
        "name": "obj", "labels": {"kubernetes.io/service-name": "web"}}, "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.22"], "conditions": {"ready": True}}], "ports": [{"name": "http", "port": 8080}]},
    "ingress": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "obj"},
                "spec": {"ingressClassName": "switchyard", "rules": [{"host": "a.test", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}},
    "ingressclass": {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "obj"},
                     "spec": {"controller": "switchyard.io/ingress-controller"}},
    "lease": {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "obj"},
              "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}},
    "namespace": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "obj"}},
}
CLUSTER_SCOPED = {"ingressclass", "namespace"}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_through_every_verb(api, kubectl, ns, kind):
    manifest = json.loads(json.dumps(KINDS[kind]))
    name = f"obj-{kind}-{ns}" if kind in CLUSTER_SCOPED else "obj"
    manifest["metadata"]["name"] = name
    scope = [] if kind in CLUSTER_SCOPED else ["-n", ns]
    resource = f"{kind}/{name}"

    kubectl("create", "-f", "-", *scope, stdin=doc(manifest))
    got = kubectl.json("get", resource, *scope)
    assert got["kind"] == manifest["kind"] and got["metadata"]["uid"] and int(got["metadata"]["resourceVersion"]) > 1
    assert got["metadata"]["creationTimestamp"].endswith("Z")
    if kind not in CLUSTER_SCOPED:
        assert got["metadata"]["namespace"] == ns
    listed = kubectl.json("get", kind, *scope)
    assert name in [i["metadata"]["name"] for i in listed["items"]]
    assert "already exists" in kubectl.fails("create", "-f", "-", *scope, stdin=doc(manifest))

    # client-side apply (last-applied annotation + strategic merge patch, or merge patch)
    manifest["metadata"]["labels"] = {**manifest["metadata"].get("labels", {}), "applied": "one"}
    kubectl("apply", "--validate=false", "-f", "-", *scope, stdin=doc(manifest))
    applied = kubectl.json("get", resource, *scope)
    assert applied["metadata"]["labels"]["applied"] == "one"
    assert "kubectl.kubernetes.io/last-applied-configuration" in applied["metadata"]["annotations"]
    assert int(applied["metadata"]["resourceVersion"]) > int(got["metadata"]["resourceVersion"])
    # applying the same again writes nothing: the revision does not move
    kubectl("apply", "--validate=false", "-f", "-", *scope, stdin=doc(manifest))
    assert kubectl.json("get", resource, *scope)["metadata"]["resourceVersion"] == applied["metadata"]["resourceVersion"]

    # the three patch types
    kubectl("patch", resource, *scope, "--type", "merge", "-p", json.dumps({"metadata": {"labels": {"merge": "yes"}}}))
    kubectl("patch", resource, *scope, "--type", "json", "-p",
            json.dumps([{"op": "add", "path": "/metadata/annotations/json", "value": "yes"}]))
    kubectl("patch", resource, *scope, "--type", "strategic", "-p", json.dumps({"metadata": {"labels": {"applied": None}}}))
    patched = kubectl.json("get", resource, *scope)
    assert patched["metadata"]["labels"].get("merge") == "yes" and "applied" not in patched["metadata"]["labels"]
    assert patched["metadata"]["annotations"]["json"] == "yes"

    # replace: a stale resourceVersion is a conflict, the current one wins
    stale = dict(patched, metadata={**patched["metadata"], "resourceVersion": got["metadata"]["resourceVersion"]})
    assert "the object has been modified" in kubectl.fails("replace", "-f", "-", stdin=json.dumps(stale))
    patched["metadata"]["labels"]["replaced"] = "yes"
    kubectl("replace", "-f", "-", stdin=json.dumps(patched))
    assert kubectl.json("get", resource, *scope)["metadata"]["labels"]["replaced"] == "yes"

    kubectl("delete", resource, *scope, "--wait=true", "--timeout=10s")
    assert "NotFound" in kubectl.fails("get", resource, *scope)


def test_strategic_merge_of_service_ports_by_port(kubectl, ns):
    svc = dict(KINDS["service"], metadata={"name": "multi"})
    svc["spec"] = {"selector": {"app": "x"}, "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}
    kubectl("create", "-n", ns, "-f", "-", stdin=doc(svc))
    kubectl("patch", "-n", ns, "svc/multi", "-p", json.dumps({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}))
    ports = {p["port"]: p for p in kubectl.json("get", "-n", ns, "svc/multi")["spec"]["ports"]}
    assert set(ports) == {80, 443} and ports[443]["targetPort"] == 8443 and ports[443]["name"] == "https"
    kubectl("patch", "-n", ns, "svc/multi", "-p", json.dumps({"spec": {"ports": [{"port": 80, "$patch": "delete"}]}}))
    assert [p["port"] for p in kubectl.json("get", "-n", ns, "svc/multi")["spec"]["ports"]] == [443]
    # a merge patch replaces the list
    kubectl("patch", "-n", ns, "svc/multi", "--type", "merge", "-p", json.dumps({"spec": {"ports": [{"name": "x", "port": 81}]}}))
    assert [p["port"] for p in kubectl.json("get", "-n", ns, "svc/multi")["spec"]["ports"]] == [81]


def test_invalid_objects_are_422_naming_the_field(kubectl, ns):
    ing = json.loads(json.dumps(KINDS["ingress"]))
    ing["spec"]["rules"][0]["http"]["paths"][0]["pathType"] = "Prefixx"
    err = kubectl.fails("create", "-n", ns, "-f", "-", stdin=doc(ing))
    assert "spec.rules[0].http.paths[0].pathType" in err and "Unsupported value" in err
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "noports"}, "spec": {"selector": {"a": "b"}}}
    assert "spec.ports: Required value" in kubectl.fails("create", "-n", ns, "-f", "-", stdin=doc(svc))
    sl = json.loads(json.dumps(KINDS["endpointslice"]))
    sl["endpoints"][0]["addresses"] = ["not-an-ip"]
    assert "endpoints[0].addresses[0]" in kubectl.fails("create", "-n", ns, "-f", "-", stdin=doc(sl))
    missing_ns = json.loads(json.dumps(KINDS["service"]))
    assert 'namespaces "no-such-ns" not found' in kubectl.fails("create", "-n", "no-such-ns", "-f", "-", stdin=doc(missing_ns))


def test_generate_name_uid_and_generation(api, ns):
    body = json.loads(json.dumps(KINDS["ingress"]))
    body["metadata"] = {"generateName": "gen-"}
    r = raw(api, "POST", f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses", json=body)
    assert r.status_code == 201, r.text
    created = r.json()["metadata"]
    assert created["name"].startswith("gen-") and len(created["name"]) == 9 and created["generation"] == 1
    path = f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{created['name']}"
    r = raw(api, "PATCH", path, data=json.dumps({"metadata": {"labels": {"x": "y"}}}),
            headers={"Content-Type": "application/merge-patch+json"})
    assert r.json()["metadata"]["generation"] == 1  # metadata changes leave the generation
    r = raw(api, "PATCH", path, data=json.dumps({"spec": {"ingressClassName": "other"}}),
            headers={"Content-Type": "application/merge-patch+json"})
    assert r.json()["metadata"]["generation"] == 2
    r = raw(api, "PATCH", path + "/status", data=json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}},
                                                            "spec": {"ingressClassName": "ignored"}}),
            headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200 and r.json()["status"]["loadBalancer"]["ingress"] == [{"ip": "127.0.0.1"}]
    assert r.json()["spec"]["ingressClassName"] == "other" and r.json()["metadata"]["generation"] == 2
    # a main-resource update does not change status
    r = raw(api, "PATCH", path, data=json.dumps({"status": {"loadBalancer": {"ingress": []}}}),
            headers={"Content-Type": "application/merge-patch+json"})
    assert r.json()["status"]["loadBalancer"]["ingress"] == [{"ip": "127.0.0.1"}]
    # a patch carrying a stale resourceVersion is a conflict
    r = raw(api, "PATCH", path, data=json.dumps({"metadata": {"resourceVersion": "2", "labels": {"a": "b"}}}),
            headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 409 and r.json()["reason"] == "Conflict"
    assert raw(api, "PATCH", path, data="{}", headers={"Content-Type": "text/plain"}).status_code == 415


def test_finalizers_delay_deletion(api, kubectl, ns):
    svc = json.loads(json.dumps(KINDS["service"]))
    svc["metadata"] = {"name": "fin", "finalizers": ["example.com/hold"]}
    kubectl("create", "-n", ns, "-f", "-", stdin=doc(svc))
    r = raw(api, "DELETE", f"/api/v1/namespaces/{ns}/services/fin")
    assert r.status_code == 202 and r.json()["metadata"]["deletionTimestamp"]
    assert kubectl.json("get", "-n", ns, "svc/fin")["metadata"]["deletionTimestamp"]
    kubectl("patch", "-n", ns, "svc/fin", "--type", "json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    assert "NotFound" in kubectl.fails("get", "-n", ns, "svc/fin")


def test_server_side_apply(kubectl, ns):
    svc = json.loads(json.dumps(KINDS["service"]))
    svc["metadata"] = {"name": "ssa", "namespace": ns, "labels": {"v": "1"}}
    kubectl("apply", "--server-side", "--validate=false", "-f", "-", stdin=doc(svc))
    svc["metadata"]["labels"]["v"] = "2"
    kubectl("apply", "--server-side", "--validate=false", "-f", "-", stdin=doc(svc))
    assert kubectl.json("get", "-n", ns, "svc/ssa")["metadata"]["labels"]["v"] == "2"


def test_deleting_a_namespace_deletes_its_objects(kubectl, ns):
    kubectl("create", "-n", ns, "-f", "-", stdin=doc(KINDS["service"]))
    kubectl("delete", "namespace", ns, "--timeout=10s")
    assert "NotFound" in kubectl.fails("get", "namespace", ns)
    assert kubectl.json("get", "services", "-A")["items"] == [] or all(
        i["metadata"]["namespace"] != ns for i in kubectl.json("get", "services", "-A")["items"])


# --- seeds, CRDs, custom resources and their status subresource --------------------------------

def test_seed_manifests(kubectl):
    kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test"}}))
    kubectl("apply", "--validate=false", "-f", CRD)
    kubectl("apply", "--validate=false", "-f", os.path.join(SEEDS, "physical-endpoint.yaml"))
    pe = kubectl.json("get", "-n", "test", "physicalendpoint", "phyendpoint-example")
    assert pe["spec"] == {"endpoints": ["127.0.0.11:10001", "127.0.0.12:10001"], "http_detect": "/conf/", "interval": 10}
    svc = kubectl.json("get", "-n", "test", "svc", "test-service")
    assert svc["metadata"]["annotations"]["test.api.io/physical.deployment.endpoints"] == "phyendpoint-example"

    kubectl("apply", "--validate=false", "-f", os.path.join(SEEDS, "bbs-vm.yaml"))
    ing = kubectl.json("get", "ingress", "bbs")
    assert [p["path"] for p in ing["spec"]["rules"][0]["http"]["paths"]] == ["/", "/api", "/signin", "/signout"]
    # Selector-less Services with hand-written Endpoints are mirrored into EndpointSlices.
    slices = kubectl.json("get", "endpointslices", "-l", "kubernetes.io/service-name=bbs-frontend")["items"]
    assert len(slices) == 1 and slices[0]["endpoints"][0]["addresses"] == ["127.0.0.57"]
    assert slices[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslicemirroring-controller.k8s.io"
    ep = kubectl.json("get", "endpoints", "bbs-frontend")
    ep["subsets"][0]["addresses"].append({"ip": "127.0.0.58"})
    kubectl("replace", "-f", "-", stdin=json.dumps(ep))
    slices = kubectl.json("get", "endpointslices", "-l", "kubernetes.io/service-name=bbs-frontend")["items"]
    assert sorted(a for e in slices[0]["endpoints"] for a in e["addresses"]) == ["127.0.0.57", "127.0.0.58"]
    kubectl("delete", "endpoints", "bbs-frontend")
    assert kubectl.json("get", "endpointslices", "-l", "kubernetes.io/service-name=bbs-frontend")["items"] == []

    # extensions/v1beta1 Ingress is not served since Kubernetes 1.22: refused, the Service applies.
    err = kubectl.fails("apply", "--validate=false", "-f", os.path.join(SEEDS, "ingress-v1beta1.yaml"))
    assert 'no matches for kind "Ingress" in version "extensions/v1beta1"' in err
    assert kubectl.json("get", "-n", "kube-system", "svc", "default-http-backend")["spec"]["ports"][0]["targetPort"] == 8080


def test_custom_resources_and_status_subresource(api, kubectl, ns):
    kubectl("apply", "--validate=false", "-f", CRD)
    crd = kubectl.json("get", "crd", "physicalendpoints.test.api.io")
    assert {c["type"]: c["status"] for c in crd["status"]["conditions"]}["Established"] == "True"
    pe = {"apiVersion": "test.api.io/v1beta1", "kind": "PhysicalEndpoint", "metadata": {"name": "pe1"},
          "spec": {"endpoints": ["127.0.0.11:10001"], "http_detect": "/conf/", "interval": 10, "unknownField": 1},
          "status": {"dropped": "on create"}}
    kubectl("create", "-n", ns, "-f", "-", stdin=doc(pe))
    got = kubectl.json("get", "-n", ns, "pe", "pe1")
    assert "unknownField" not in got["spec"] and "status" not in got and got["metadata"]["generation"] == 1
    # status through the subresource: spec changes in it are ignored, generation stays
    kubectl("patch", "-n", ns, "physicalendpoint/pe1", "--subresource=status", "--type", "merge", "-p",
            json.dumps({"status": {"endpoints": [{"address": "127.0.0.11:10001", "healthy": True}]}, "spec": {"interval": 99}}))
    got = kubectl.json("get", "-n", ns, "pe", "pe1")
    assert got["status"]["endpoints"][0]["healthy"] is True and got["spec"]["interval"] == 10
    assert got["metadata"]["generation"] == 1
    # the main resource ignores status and moves the generation on spec changes
    kubectl("patch", "-n", ns, "pe/pe1", "--type", "merge", "-p", json.dumps({"spec": {"interval": 5}, "status": {"x": 1}}))
    got = kubectl.json("get", "-n", ns, "pe", "pe1")
    assert got["spec"]["interval"] == 5 and "x" not in got["status"] and got["metadata"]["generation"] == 2
    # custom resources do not take strategic merge patches; schema violations are 422
    assert "415" in raw(api, "PATCH", f"/apis/test.api.io/v1beta1/namespaces/{ns}/physicalendpoints/pe1",
                        data="{}", headers={"Content-Type": "application/strategic-merge-patch+json"}).text
    bad = json.loads(json.dumps(pe))
    bad["metadata"]["name"] = "pe2"
    bad["spec"]["interval"] = "ten"
    assert "spec.interval" in kubectl.fails("create", "-n", ns, "-f", "-", stdin=doc(bad))
    del bad["spec"]["endpoints"]
    bad["spec"]["interval"] = 3
    assert "spec.endpoints: Required value" in kubectl.fails("create", "-n", ns, "-f", "-", stdin=doc(bad))
    # apply a change, then delete the CRD: its resources go too and the type is no longer served
    pe["spec"]["interval"] = 7
    kubectl("apply", "--validate=false", "-n", ns, "-f", "-", stdin=doc(pe))
    assert kubectl.json("get", "-n", ns, "pe", "pe1")["spec"]["interval"] == 7
    kubectl("delete", "crd", "physicalendpoints.test.api.io", "--timeout=10s")
    assert raw(api, "GET", f"/apis/test.api.io/v1beta1/namespaces/{ns}/physicalendpoints/pe1").status_code == 404
    kubectl("apply", "--validate=false", "-f", CRD)
    assert kubectl.json("get", "-n", ns, "pe")["items"] == []


def test_crd_without_status_subresource_keeps_status_in_main_updates(api, kubectl, ns):
    crd = yaml.safe_load(open(CRD))
    crd["metadata"]["name"] = "widgets.example.io"
    crd["spec"]["group"] = "example.io"
    crd["spec"]["names"] = {"plural": "widgets", "singular": "widget", "kind": "Widget"}
    del crd["spec"]["versions"][0]["subresources"]
    kubectl("apply", "--validate=false", "-f", "-", stdin=doc(crd))
    assert "widgets/status" not in json.dumps(raw(api, "GET", "/apis/example.io/v1beta1").json())
    w = {"apiVersion": "example.io/v1beta1", "kind": "Widget", "metadata": {"name": "w"},
         "spec": {"endpoints": []}, "status": {"kept": True}}
    kubectl("create", "-n", ns, "-f", "-", stdin=doc(w))
    assert kubectl.json("get", "-n", ns, "widget", "w")["status"] == {"kept": True}
    assert "the server could not find the requested resource" in kubectl.fails(
        "patch", "-n", ns, "widget/w", "--subresource=status", "--type", "merge", "-p", '{"status":{"a":1}}')


# --- list pagination, watch, bookmarks, 410 ----------------------------------------------------

def test_list_pagination_with_chunk_size(api, kubectl, ns):
    def secret(name):
        return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"k": "v"}})
    for i in range(12):
        kubectl("create", "-n", ns, "-f", "-", stdin=secret(f"s{i:02d}"))
    before = len(api.request_log())
    items = kubectl.json("get", "secrets", "-n", ns, "--chunk-size=5")["items"]
    assert [i["metadata"]["name"] for i in items] == [f"s{i:02d}" for i in range(12)]
    lists = [e for e in api.request_log()[before:] if e["path"] == f"/api/v1/namespaces/{ns}/secrets"]
    assert [e["query"].get("limit") for e in lists] == ["5", "5", "5"]
    assert [bool(e["query"].get("continue")) for e in lists] == [False, True, True]
    # a continue token stays consistent: objects created after the first page do not appear
    first = raw(api, "GET", f"/api/v1/namespaces/{ns}/secrets?limit=5").json()
    assert first["metadata"]["remainingItemCount"] == 7
    kubectl("create", "-n", ns, "-f", "-", stdin=secret("s99"))
    kubectl("delete", "secret", "s00", "-n", ns)
    rest = raw(api, "GET", f"/api/v1/namespaces/{ns}/secrets?limit=50&continue={first['metadata']['continue']}").json()
    assert [i["metadata"]["name"] for i in rest["items"]] == [f"s{i:02d}" for i in range(5, 12)]
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    # after a compaction the token is too old: 410 Expired
    api.compact()
    r = raw(api, "GET", f"/api/v1/namespaces/{ns}/secrets?limit=5&continue={first['metadata']['continue']}")
    assert r.status_code == 410 and r.json()["reason"] == "Expired"
    # a selector narrows the list
    kubectl("label", "secret", "s05", "-n", ns, "pick=yes")
    assert [i["metadata"]["name"] for i in kubectl.json("get", "secrets", "-n", ns, "-l", "pick=yes")["items"]] == ["s05"]
    assert [i["metadata"]["name"] for i in kubectl.json("get", "secrets", "-n", ns, "--field-selector",
                                                          "metadata.name=s07")["items"]] == ["s07"]


def _read_lines(proc, count, timeout):
    """Reads up to count JSON documents that kubectl prints, bounded in time."""
    out, buf, deadline = [], "", time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if not ready:
            continue
        chunk = os.read(proc.stdout.fileno(), 65536).decode()
        if not chunk:
            break
        buf += chunk
        decoder = json.JSONDecoder()
        while True:
            buf = buf.lstrip()
            try:
                obj, end = decoder.raw_decode(buf)
            except ValueError:
                break
            out.append(obj)
            buf = buf[end:]
    return out


def test_kubectl_get_watch_sees_changes(kubectl, ns):
    proc = subprocess.Popen(kubectl.argv("get", "services", "-n", ns, "--watch", "--output-watch-events", "-o", "json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)  # kubectl lists, then watches from the list's resourceVersion
        kubectl("create", "-n", ns, "-f", "-", stdin=doc(dict(KINDS["service"], metadata={"name": "w1"})))
        kubectl("label", "-n", ns, "svc/w1", "changed=yes")
        kubectl("delete", "-n", ns, "svc/w1", "--wait=false")
        events = _read_lines(proc, 3, timeout=15)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"], events
    assert events[1]["object"]["metadata"]["labels"]["changed"] == "yes"


def _watch(api, path, timeout=10):
    with raw(api, "GET", path, stream=True) as r:
        assert r.status_code == 200 and r.headers.get("Transfer-Encoding") == "chunked"
        deadline = time.monotonic() + timeout
        out = []
        for line in r.iter_lines():
            if line:
                out.append(json.loads(line))
            assert time.monotonic() < deadline, "watch did not end in time"
        return out


def test_watch_from_a_revision_with_bookmarks_and_timeout(api, kubectl, ns):
    kubectl("create", "-n", ns, "-f", "-", stdin=doc(dict(KINDS["service"], metadata={"name": "a"})))
    rv = raw(api, "GET", f"/api/v1/namespaces/{ns}/services").json()["metadata"]["resourceVersion"]
    kubectl("create", "-n", ns, "-f", "-", stdin=doc(dict(KINDS["service"], metadata={"name": "b"})))
    kubectl("create", "-n", "default", "-f", "-", stdin=doc(dict(KINDS["service"], metadata={"name": f"other-{ns}"})))
    started = time.monotonic()
    events = _watch(api, f"/api/v1/namespaces/{ns}/services?watch=1&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=2")
    took = time.monotonic() - started
    assert 1.5 < took < 6
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events if e["type"] != "BOOKMARK"] == [("ADDED", "b")]
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert len(bookmarks) >= 2 and bookmarks[-1]["object"]["kind"] == "Service"
    assert int(bookmarks[-1]["object"]["metadata"]["resourceVersion"]) >= int(events[0]["object"]["metadata"]["resourceVersion"])
    # all namespaces, from the same revision: both creations
    events = _watch(api, f"/api/v1/services?watch=true&resourceVersion={rv}&timeoutSeconds=1")
    assert {e["object"]["metadata"]["name"] for e in events} == {"b", f"other-{ns}"}
    assert all(e["type"] == "ADDED" for e in events)
    # no resourceVersion: the current state as ADDED events first
    events = _watch(api, f"/api/v1/namespaces/{ns}/services?watch=1&timeoutSeconds=1")
    assert sorted(e["object"]["metadata"]["name"] for e in events) == ["a", "b"]


def test_watch_label_selector_transitions(api, kubectl, ns):
    kubectl("create", "-n", ns, "-f", "-", stdin=doc(dict(KINDS["service"], metadata={"name": "sel"})))
    rv = raw(api, "GET", f"/api/v1/namespaces/{ns}/services").json()["metadata"]["resourceVersion"]
    kubectl("label", "-n", ns, "svc/sel", "pick=yes")
    kubectl("label", "-n", ns, "svc/sel", "other=1")
    kubectl("label", "-n", ns, "svc/sel", "pick-")
    events = _watch(api, f"/api/v1/namespaces/{ns}/services?watch=1&resourceVersion={rv}&labelSelector=pick%3Dyes&timeoutSeconds=1")
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]


def test_watch_after_compaction_is_410_gone(api, kubectl, ns):
    kubectl("create", "-n", ns, "-f", "-", stdin=doc(dict(KINDS["service"], metadata={"name": "old"})))
    rv = raw(api, "GET", f"/api/v1/namespaces/{ns}/services").json()["metadata"]["resourceVersion"]
    compacted = api.compact(advance=True)
    assert compacted > int(rv)
    events = _watch(api, f"/api/v1/namespaces/{ns}/services?watch=1&resourceVersion={rv}&timeoutSeconds=5")
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"
    # the same through kubectl's raw client
    out = kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/services?watch=1&resourceVersion={rv}&timeoutSeconds=2")
    assert '"code": 410' in out or '"code":410' in out
    # an exact list from before the compaction too; from the compacted revision it works
    r = raw(api, "GET", f"/api/v1/namespaces/{ns}/services?resourceVersion={rv}&resourceVersionMatch=Exact")
    assert r.status_code == 410
    r = raw(api, "GET", f"/api/v1/namespaces/{ns}/services?resourceVersion={compacted}&resourceVersionMatch=Exact")
    assert r.status_code == 200 and [i["metadata"]["name"] for i in r.json()["items"]] == ["old"]


def test_admin_drop_watches_ends_streams(api, ns):
    with raw(api, "GET", f"/api/v1/namespaces/{ns}/services?watch=1&timeoutSeconds=30", stream=True) as r:
        assert r.status_code == 200
        started = time.monotonic()
        dropped = raw(api, "POST", "/_kubeapi/drop-watches")
        assert dropped.status_code == 200
        assert list(r.iter_lines()) == []
        assert time.monotonic() - started < 5


def test_injected_failures_and_status_codes(api, ns):
    raw(api, "POST", "/_kubeapi/fail", json={"count": 2, "code": 503, "pathPrefix": f"/api/v1/namespaces/{ns}/"})
    codes = [raw(api, "GET", f"/api/v1/namespaces/{ns}/services").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    r = raw(api, "GET", f"/api/v1/namespaces/{ns}/services/missing")
    assert r.status_code == 404 and r.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": 'services "missing" not found',
        "reason": "NotFound", "code": 404, "details": {"name": "missing", "group": "", "kind": "services"}}
    assert raw(api, "GET", "/apis/nothing.io/v1/things").status_code == 404
    assert raw(api, "POST", f"/api/v1/namespaces/{ns}/services", data="{not json").status_code == 400


# --- kubectl's typed generators send protobuf ----------------------------------------------------

def _strip_server_fields(obj):
    meta = {k: v for k, v in obj["metadata"].items()
            if k not in ("uid", "resourceVersion", "creationTimestamp", "generation")}
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


def test_protobuf_bodies_from_kubectl_generators(api, kubectl, ns, tmp_path):
    crt, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(crt), "-days", "1", "-subj", "/CN=a.test"],
                   check=True, capture_output=True, timeout=30)
    generators = [
        ("namespace", [f"gen-{ns}"]),
        ("secret", ["tls", "tls1", "-n", ns, f"--cert={crt}", f"--key={key}"]),
        ("secret", ["generic", "gen1", "-n", ns, "--from-literal=a=b", "--type=Opaque"]),
        ("service", ["clusterip", "svc1", "-n", ns, "--tcp=80:8080", "--tcp=443:http"]),
        ("service", ["externalname", "ext1", "-n", ns, "--external-name=example.test"]),
        ("ingress", ["ing1", "-n", ns, "--class=switchyard", "--rule=a.test/api*=svc1:80,tls=tls1",
                     "--rule=b.test/=svc1:http", "--default-backend=svc1:80", "--annotation=x=y"]),
    ]
    before = len(api.request_log())
    for kind, args in generators:
        expected = json.loads(kubectl("create", kind, *args, "--dry-run=client", "-o", "json"))
        created = json.loads(kubectl("create", kind, *args, "-o", "json"))
        got = _strip_server_fields(created)
        want = _strip_server_fields(expected)
        # what the server defaults is not in kubectl's dry run
        if kind == "service":
            for k in ("sessionAffinity", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
                got["spec"].pop(k, None)
            if got["spec"].get("clusterIP", "").startswith("127.96."):
                got["spec"].pop("clusterIP")
        if kind == "namespace":
            got["spec"].pop("finalizers", None)
            got["metadata"]["labels"].pop("kubernetes.io/metadata.name", None)
            if not got["metadata"]["labels"]:
                del got["metadata"]["labels"]
            if not got["spec"]:
                del got["spec"]
            want.pop("spec", None)
        want.get("spec", {}).pop("clusterIP", None) if kind == "service" and not want["spec"].get("clusterIP") else None
        assert got == want, (kind, args)
    posts = [e for e in api.request_log()[before:] if e["method"] == "POST"]
    assert len(posts) == len(generators) and all(e["code"] == 201 for e in posts)
    r = raw(api, "POST", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases", data=b"k8s\x00\x0a\x00",
            headers={"Content-Type": "application/vnd.kubernetes.protobuf"})
    assert r.status_code == 415


def test_patch_formats_directly():
    from kubeapi.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
    smp = {"spec.ports": {"strategy": "merge", "key": "port"}, "metadata.finalizers": {"strategy": "merge"}}
    live = {"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1"}},
            "spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}], "ips": ["1", "2"]}}
    assert merge_patch(live, {"spec": {"ips": None}, "metadata": {"labels": {"y": "2"}}}) == {
        "metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}},
        "spec": {"ports": live["spec"]["ports"]}}
    out = strategic_merge_patch(live, {
        "metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]},
        "spec": {"$setElementOrder/ports": [{"port": 443}, {"port": 8080}, {"port": 80}],
                 "ports": [{"port": 8080, "name": "alt"}, {"port": 80, "name": "web"}], "ips": ["3"]}}, smp)
    assert out["metadata"]["finalizers"] == ["b", "c"]
    assert out["spec"]["ports"] == [{"port": 443, "name": "https"}, {"port": 8080, "name": "alt"}, {"port": 80, "name": "web"}]
    assert out["spec"]["ips"] == ["3"]  # no strategy: replaced
    assert strategic_merge_patch(live, {"spec": {"$patch": "replace", "ips": []}}, smp)["spec"] == {"ips": []}
    assert strategic_merge_patch(live, {"spec": {"$retainKeys": ["ips"], "ips": ["9"]}}, smp)["spec"] == {"ips": ["9"]}
    assert json_patch(live, [{"op": "move", "from": "/spec/ips", "path": "/ips"},
                             {"op": "test", "path": "/ips/0", "value": "1"}])["ips"] == ["1", "2"]
    with pytest.raises(PatchError) as failed:
        json_patch(live, [{"op": "test", "path": "/spec/ips/0", "value": "9"}])
    assert failed.value.conflict
    with pytest.raises(PatchError):
        json_patch(live, [{"op": "remove", "path": "/spec/nothing"}])
