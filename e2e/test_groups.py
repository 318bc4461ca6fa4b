"""Groups (redis/README.md, "Groups"; issue 20 item 5): one redis-server holds several
independent configurations. Two controllers and two edges of groups `a` and `b` share one
Redis beside the default group's controller: a route of group a is not served by group b's
edge, a token limited to group a is refused by group b's controller, group a's edge runs
with an ACL user that cannot read group b, and the default group's keys stay where they were
(switchyard:{cfg}:...)."""
import hashlib
import json
import os
import subprocess
import sys

import pytest
import requests

from harness import BASE, ROOT, Controller, Edge, Prober, Redis, start_backends, wait_until

A = "switchyard:{a}:"
B = "switchyard:{b}:"
TENANT_A_TOKEN = "sy_tenant-a-token-for-the-groups-test-0001"
READER_TOKEN = "sy_reader-token-for-the-groups-test-00002"
EDGE_A_PASSWORD = "pw-group-a-edge"


def tokens_file(workdir):
    path = os.path.join(workdir, "group-tokens.yaml")

    def h(token):
        return "sha256:" + hashlib.sha256(token.encode()).hexdigest()

    with open(path, "w") as f:
        f.write("tokens:\n"
                f"  - {{name: tenant-a, role: write, hash: \"{h(TENANT_A_TOKEN)}\", groups: [a]}}\n"
                f"  - {{name: reader, role: read, hash: \"{h(READER_TOKEN)}\"}}\n")
    return path


@pytest.fixture(scope="module")
def stack(workdir):
    redis = Redis(workdir)
    backends = start_backends("ga", "gb", "gd")
    tokens = tokens_file(workdir)
    env = dict(os.environ, SWITCHYARD_ACL_EDGE_PASSWORD=EDGE_A_PASSWORD)
    subprocess.run([sys.executable, os.path.join(ROOT, "redis", "acl.py"), "--group", "a",
                    "--roles", "edge", "--apply", redis.address], env=env, check=True, timeout=30)
    procs = []
    try:
        default = Controller(redis, workdir, extra=["--tokens-file", tokens])
        procs.append(default)
        ctl_a = Controller(redis, workdir, extra=["--group", "a", "--tokens-file", tokens])
        procs.append(ctl_a)
        ctl_b = Controller(redis, workdir, extra=["--group", "b", "--tokens-file", tokens])
        procs.append(ctl_b)
        edge_a_redis = type("R", (), {"address": redis.address, "password": EDGE_A_PASSWORD})()
        edge_a = Edge(edge_a_redis, workdir, "group-a-edge", workers=1,
                      extra=["--group", "a", "--redis-user", "switchyard-a-edge"])
        procs.append(edge_a)
        edge_b = Edge(redis, workdir, "group-b-edge", workers=1, extra=["--group", "b"])
        procs.append(edge_b)
        yield {"redis": redis, "backends": backends, "default": default, "a": ctl_a,
               "b": ctl_b, "edge_a": edge_a, "edge_b": edge_b, "workdir": workdir}
    finally:
        for p in reversed(procs):
            p.stop()
        for b in backends.values():
            b.shutdown()
            b.server_close()
        redis.stop()


def test_routes_of_one_group_are_not_served_by_another_groups_edge(stack):
    redis, bs = stack["redis"], stack["backends"]
    stack["default"].upstream("pool", bs["gd"].server_port)
    stack["default"].route("r", "d.test", "/", "pool")
    stack["a"].upstream("pool", bs["ga"].server_port)
    stack["a"].route("r", "a.test", "/", "pool")
    stack["b"].upstream("pool", bs["gb"].server_port)
    stack["b"].route("r", "b.test", "/", "pool")
    edge_a, edge_b = stack["edge_a"], stack["edge_b"]
    wait_until(lambda: edge_a.backend("/", "a.test") == "ga", 10, what="edge a serves a.test")
    wait_until(lambda: edge_b.backend("/", "b.test") == "gb", 10, what="edge b serves b.test")
    # the same ids in three groups are three objects; no edge sees another group's
    assert edge_b.backend("/", "a.test") == 404
    assert edge_a.backend("/", "b.test") == 404
    assert edge_a.backend("/", "d.test") == 404
    assert edge_b.backend("/", "d.test") == 404

    # the keys: the default group's are where they always were
    assert json.loads(redis.get(BASE + "route:r"))["host"] == "d.test"
    assert json.loads(redis.get(A + "route:r"))["host"] == "a.test"
    assert json.loads(redis.get(B + "route:r"))["host"] == "b.test"
    assert redis.cli("SMEMBERS", BASE + "routes") == "r"
    every = redis.cli("--scan", "--pattern", "switchyard:*", raw=True).split()
    tags = {k.split(":")[1] for k in every}
    assert tags == {"{cfg}", "{a}", "{b}"}, tags
    # each group its own version history
    assert redis.get(A + "version") == "2" and redis.get(B + "version") == "2"
    assert redis.get(BASE + "version") == "2"

    # a change in group b wakes nothing in group a
    stack["b"].ok("DELETE", "/api/v1/routes/r")
    wait_until(lambda: edge_b.backend("/", "b.test") == 404, 10, what="edge b drops b.test")
    assert edge_a.backend("/", "a.test") == "ga"

    # each edge registers in its own group; each controller's status lists only its own edges
    wait_until(lambda: redis.cli("EXISTS", A + "edge:group-a-edge") == "1", 5,
               what="edge a's registration")
    ids_a = [e["id"] for e in stack["a"].status()["edges"]]
    ids_b = [e["id"] for e in stack["b"].status()["edges"]]
    assert ids_a == ["group-a-edge"] and ids_b == ["group-b-edge"], (ids_a, ids_b)
    assert stack["default"].status()["edges"] == []


def test_edge_and_controller_say_which_group_they_serve(stack):
    edge_a = stack["edge_a"]
    status = requests.get(edge_a.metrics_url + "/_switchyard/status", timeout=5).json()
    assert status["group"] == "a"
    metrics = requests.get(edge_a.metrics_url + "/metrics", timeout=5).text
    assert 'switchyard_edge_group_info{group="a"} 1' in metrics
    assert stack["b"].ok("GET", "/api/v1/whoami")["group"] == "b"
    assert stack["default"].ok("GET", "/api/v1/whoami")["group"] == "cfg"


def test_a_token_limited_to_a_group_is_refused_by_another_groups_controller(stack):
    redis = stack["redis"]

    def call(controller, method, path, token, body=None):
        return requests.request(method, controller.url + path, json=body, timeout=10,
                                headers={"Authorization": f"Bearer {token}"})

    r = call(stack["a"], "GET", "/api/v1/whoami", TENANT_A_TOKEN)
    assert r.status_code == 200 and r.json()["groups"] == ["a"], r.text
    r = call(stack["a"], "PUT", "/api/v1/routes/t", TENANT_A_TOKEN,
             {"host": "t.test", "path": "/", "upstream": "pool"})
    assert r.status_code in (200, 201), r.text
    for controller in (stack["b"], stack["default"]):
        before = redis.get(B + "version"), redis.get(BASE + "version")
        for method, body in (("GET", None),
                             ("PUT", {"host": "t.test", "path": "/", "upstream": "pool"})):
            r = call(controller, method, "/api/v1/routes/t", TENANT_A_TOKEN, body)
            assert r.status_code == 403, r.text
            error = r.json()["error"]
            assert error["code"] == "forbidden" and error["reason"] == "group", error
            assert error["token_groups"] == ["a"] and "group" in error["message"]
        assert (redis.get(B + "version"), redis.get(BASE + "version")) == before
        assert redis.get(B + "route:t") is None and redis.get(BASE + "route:t") is None
    # a token without groups is good for every group
    for controller in (stack["a"], stack["b"], stack["default"]):
        assert call(controller, "GET", "/api/v1/routes", READER_TOKEN).status_code == 200


def test_a_groups_acl_user_reaches_only_its_group(stack):
    redis = stack["redis"]

    def as_edge_a(*args):
        r = subprocess.run(["redis-cli", "-p", str(redis.port), "--user", "switchyard-a-edge",
                            "--pass", EDGE_A_PASSWORD, "--no-auth-warning", *args],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip()

    assert json.loads(as_edge_a("GET", A + "route:r"))["host"] == "a.test"
    for args in (["GET", BASE + "route:r"], ["GET", B + "version"],
                 ["SET", A + "route:r", "{}"], ["SUBSCRIBE", B + "events"]):
        out = as_edge_a(*args)
        assert "NOPERM" in out, (args, out)


def test_the_prober_of_a_group_holds_that_groups_lease(stack):
    redis, workdir = stack["redis"], stack["workdir"]
    prober = Prober(redis, workdir, "group-a-prober", extra=["--group", "a"])
    try:
        wait_until(lambda: redis.get(A + "prober:lease") == "group-a-prober", 10,
                   what="the group's lease")
        assert redis.get(BASE + "prober:lease") is None
        assert redis.get(B + "prober:lease") is None
    finally:
        prober.stop()


def test_a_bad_group_name_is_refused_with_a_clear_error(workdir):
    from harness import BIN
    for bad in ("Tenant", "a}b", "x" * 49):
        for role in ("controller", "edge", "prober"):
            r = subprocess.run([BIN, role, "--group", bad],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode != 0
            assert "--group" in r.stderr and "group" in r.stderr, (role, bad, r.stderr)
