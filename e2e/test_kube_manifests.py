"""deploy/kubernetes and deploy/systemd, checked offline: every manifest against the Kubernetes
schemas (PyPI kubernetes-validate, strict: unknown fields are errors), every flag a container or
unit passes known to the binary, the CRD served by the API-server double with its status
subresource, and the kube source's RBAC enough for every request it makes (and no more than
the list of what it watches)."""
import glob
import os
import re
import shutil
import subprocess
import tempfile

import pytest
import yaml

from harness import BIN, ROOT, wait_until
from kube_support import (CLASS, KubeAPIServer, Kubectl, KubeSource, find_kubectl, ingress, kubectl_apply, physical, service,
                          slice_)

K8S = os.path.join(ROOT, "deploy", "kubernetes")
SYSTEMD = os.path.join(ROOT, "deploy", "systemd")
KUBERNETES_VERSION = "1.33.0"


def documents():
    out = []
    for path in sorted(glob.glob(os.path.join(K8S, "*.yaml"))):
        if os.path.basename(path) == "kustomization.yaml":
            continue
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    out.append((os.path.basename(path), doc))
    return out


@pytest.mark.parametrize("name,doc", documents(), ids=lambda v: v if isinstance(v, str) else v["kind"] + "/" + v["metadata"]["name"])
def test_every_manifest_is_valid_against_the_kubernetes_schemas(name, doc):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest():
    with open(os.path.join(K8S, "kustomization.yaml")) as f:
        listed = yaml.safe_load(f)["resources"]
    files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(K8S, "*.yaml")) if not p.endswith("kustomization.yaml"))
    assert sorted(listed) == files
    # Services whose cluster IP other pods read from their environment come before those pods
    assert listed.index("redis.yaml") < min(listed.index(f) for f in ("controller.yaml", "edge.yaml", "kube-source.yaml", "prober.yaml",
                                                                                "stream.yaml"))
    assert listed.index("edge.yaml") < listed.index("kube-source.yaml")


def help_of(command):
    return subprocess.run([BIN, command, "--help"], capture_output=True, text=True, timeout=30).stdout


def test_every_flag_a_container_passes_is_known_to_the_binary():
    seen = 0
    for _, doc in documents():
        spec = doc.get("spec", {}).get("template", {}).get("spec")
        for container in (spec or {}).get("containers", []):
            if container.get("command") != ["switchyard"]:
                continue
            command, *args = container["args"]
            text = help_of(command)
            for flag in (a for a in args if a.startswith("--")):
                assert re.search(rf"(^|\s){re.escape(flag)}[\s<]", text), f"{command} has no {flag}"
                seen += 1
    assert seen >= 10


def test_systemd_units_verify_and_use_known_flags():
    units = sorted(glob.glob(os.path.join(SYSTEMD, "*.service")))
    assert [os.path.basename(u) for u in units] == ["switchyard-edge.service", "switchyard-prober.service",
                                                       "switchyard-stream.service"]
    for unit in units:
        text = open(unit).read()
        command = re.search(r"^ExecStart=\S+ (\w+) (.*)$", text, re.M)
        assert command, unit
        for flag in re.findall(r"(--[a-z-]+)", command.group(2)):
            assert flag in help_of(command.group(1)), f"{unit}: {flag}"
    if not shutil.which("systemd-analyze"):
        pytest.skip("no systemd-analyze")
    with tempfile.TemporaryDirectory() as d:
        for unit in units:
            with open(unit) as f:
                text = f.read().replace("/usr/local/bin/switchyard", BIN)
            with open(os.path.join(d, os.path.basename(unit)), "w") as f:
                f.write(text)
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", *glob.glob(os.path.join(d, "*.service"))],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and not p.stderr.strip(), p.stderr


# --- against the API-server double --------------------------------------------------------------

needs_kubectl = pytest.mark.skipif(find_kubectl() is None, reason="no kubectl on this machine")


def rbac():
    rules, lease_rules = [], []
    for _, doc in documents():
        if doc["kind"] == "ClusterRole" and doc["metadata"]["name"] == "switchyard-kube":
            rules = doc["rules"]
        if doc["kind"] == "Role" and doc["metadata"]["name"] == "switchyard-kube-lease":
            lease_rules = doc["rules"]
    return rules, lease_rules


def allowed(rules, group, resource, verb):
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)


def request_attributes(method, path, query):
    """(group, resource[/subresource], namespace, verb) of an API request, or None (discovery)."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"]:
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace = None
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return None
    resource, name, sub = rest[0], (rest[1] if len(rest) > 1 else None), (rest[2] if len(rest) > 2 else None)
    watch = query.get("watch") in ("1", "true")
    verb = {"GET": "watch" if watch else ("get" if name else "list"), "POST": "create", "PUT": "update",
            "PATCH": "patch", "DELETE": "delete"}[method]
    return group, resource + (f"/{sub}" if sub else ""), namespace, verb


@needs_kubectl
def test_the_crd_is_served_with_its_status_and_the_kube_source_needs_no_more_than_its_rbac(redis, workdir):
    with KubeAPIServer(bookmark_interval=0.3) as api:
        kubectl = Kubectl(api.kubeconfig, os.path.join(workdir, "kubectl-manifests"))
        kubectl("apply", "-f", os.path.join(K8S, "crd-physicalendpoint.yaml"))
        kubectl("apply", "-f", os.path.join(K8S, "ingressclass.yaml"))
        kubectl_apply(kubectl, physical("machines", ["127.0.0.11:10001"], http_detect="/healthz", interval=1),
                      service("app", 10001, annotations={"test.api.io/physical.deployment.endpoints": "machines"}),
                      slice_("app-1", "app", [("127.0.0.1", True)], 10001),
                      ingress("app", [("app.example", [("/", "ImplementationSpecific", "app", 10001)]),
                                      ("bad.example", [("/", "ImplementationSpecific", "missing", 80)])]))
        # the schema refuses what it should
        assert "http_detect" in kubectl.fails("apply", "-f", "-", stdin=yaml.safe_dump(
            physical("bad", ["127.0.0.1:1"], http_detect="no-slash")))
        # the source authenticates with a client certificate: its requests are told apart from kubectl's
        source = KubeSource(api, redis, workdir, name="kube-rbac", extra=("--publish-address", "127.0.0.1"),
                            kubeconfig=api.kubeconfig_client_cert)
        try:
            source.wait_log("cluster listed; reconciling", timeout=30)
            # statuses and an event are written, so every kind of request is made at least once
            wait_until(lambda: (kubectl.json("get", "ingress", "app").get("status", {}).get("loadBalancer", {}).get("ingress")
                                and kubectl.json("get", "physicalendpoint", "machines").get("status", {}).get("endpoints")), 15,
                       what="the statuses")
            wait_until(lambda: kubectl.json("get", "events").get("items"), 10, what="an event")
        finally:
            source.stop()
        rules, lease_rules = rbac()
        made = set()
        for entry in api.request_log():
            if entry.get("user") != "client-cert-user":
                continue
            attributes = request_attributes(entry["method"], entry["path"], entry.get("query") or {})
            if attributes:
                group, resource, _, verb = attributes
                made.add((group, resource, verb))
        assert ("networking.k8s.io", "ingresses", "watch") in made and ("", "events", "create") in made, made
        for group, resource, verb in sorted(made):
            target = lease_rules if resource == "leases" else rules
            assert allowed(target, group, resource, verb), f"the kube source made {verb} {group}/{resource}: not in rbac.yaml"
        # and the roles grant nothing it does not use
        granted = {(g, r, v) for rule in rules + lease_rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
        assert granted - made == set(), f"granted but never used: {granted - made}"
