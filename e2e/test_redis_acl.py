"""Redis ACL users per role (redis/acl.py, docs/redis-ha.md): the controller, an edge and
the prober each run with their own user, and each is refused outside its rights."""
import os
import subprocess
import sys

import pytest

from harness import BASE, ROOT, Controller, Edge, Prober, start_backends, wait_until
from test_redis_ha import Server

PASSWORDS = {"controller": "pw-controller-1", "edge": "pw-edge-2", "prober": "pw-prober-3",
             "kube": "pw-kube-4"}


def as_role(server, role):
    """What the harness classes need: an address and the role's password."""
    return type("RoleRedis", (), {"address": server.address, "password": PASSWORDS[role]})()


def cli_as(server, role, *args):
    r = subprocess.run(["redis-cli", "-p", str(server.port), "--user", f"switchyard-{role}",
                        "--pass", PASSWORDS[role], "--no-auth-warning", *args],
                       capture_output=True, text=True, timeout=10)
    return r.stdout.strip()


@pytest.fixture(scope="module")
def acl_redis(workdir):
    server = Server(workdir)
    env = dict(os.environ, **{f"SWITCHYARD_ACL_{r.upper()}_PASSWORD": p
                              for r, p in PASSWORDS.items()})
    subprocess.run([sys.executable, os.path.join(ROOT, "redis", "acl.py"), "--apply",
                    server.address], env=env, check=True, timeout=30)
    yield server
    server.stop()


def test_the_acl_covers_every_command_the_function_library_runs():
    import re
    sys.path.insert(0, os.path.join(ROOT, "redis"))
    import acl
    with open(os.path.join(ROOT, "redis", "switchyard.lua")) as f:
        named = set(re.findall(r'"([A-Z]{3,})"', f.read())) - {"COUNT", "MAXLEN", "MINID"}   # options
    allowed = {c[1:].upper() for c in acl.FUNCTION_BODY + acl.READ_CONFIG}
    assert named - allowed == set()


def test_each_role_works_with_its_own_user_and_no_more(acl_redis, workdir):
    backends = start_backends("a1", "a2")
    controller = edge = prober = None
    try:
        controller = Controller(as_role(acl_redis, "controller"), workdir,
                                extra=["--redis-user", "switchyard-controller"])
        controller.upstream("acl-pool", *[b.port for b in backends.values()])
        controller.route("acl", "acl.test", "/", "acl-pool")
        edge = Edge(as_role(acl_redis, "edge"), workdir, "acl-edge",
                    extra=["--redis-user", "switchyard-edge"])
        wait_until(lambda: edge.backend("/", "acl.test") in ("a1", "a2"), 10,
                   what="the edge (its own user) serves the route")
        wait_until(lambda: acl_redis.cli("EXISTS", BASE + "edge:acl-edge") == "1", 5,
                   what="the edge's registration")
        prober = Prober(as_role(acl_redis, "prober"), workdir, "acl-prober",
                        extra=["--redis-user", "switchyard-prober"])
        wait_until(lambda: acl_redis.cli("GET", BASE + "prober:lease") == "acl-prober", 10,
                   what="the prober (its own user) holds the lease")
        # sy_lease writes the lease and the heartbeat with the prober's rights
        assert acl_redis.cli("EXISTS", BASE + "prober:heartbeat") == "1"

        route = BASE + "route:acl"
        before = acl_redis.cli("GET", route)
        # an edge cannot change a route: not directly, not through the functions
        for args in (["SET", route, "{}"], ["DEL", route],
                     ["FCALL", "sy_apply", "1", BASE + "version", "del", "route", "acl", "", "",
                      ""],
                     ["HSET", BASE + "health:acl-pool", "127.0.0.1:1", "{}"],
                     ["FUNCTION", "LOAD", "REPLACE", "#!lua name=x\nredis.register_function("
                      "'x', function() return 1 end)"]):
            out = cli_as(acl_redis, "edge", *args)
            assert out.startswith("NOPERM"), (args[0], out)
        # nor can the prober (its functions write health keys only)
        for args in (["SET", route, "{}"],
                     ["FCALL", "sy_apply", "1", BASE + "version", "del", "route", "acl", "", "",
                      ""]):
            out = cli_as(acl_redis, "prober", *args)
            assert out.startswith("NOPERM") or "NOPERM" in out, (args[0], out)
        assert acl_redis.cli("GET", route) == before
        # what an edge may do, it can
        assert cli_as(acl_redis, "edge", "GET", route) == before
        assert cli_as(acl_redis, "edge", "HSET", BASE + "edge:acl-probe", "id", "x") == "1"
        # and the controller still writes
        controller.route("acl2", "acl2.test", "/", "acl-pool")
        wait_until(lambda: edge.backend("/", "acl2.test") in ("a1", "a2"), 10,
                   what="the edge follows the controller's next change")
    finally:
        for p in (prober, edge, controller):
            if p:
                p.stop()
        for b in backends.values():
            b.shutdown()
            b.server_close()
