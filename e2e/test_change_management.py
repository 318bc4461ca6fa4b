"""Change management end to end (docs/change-management.md): history, revert through real
edges, a property test of reverts, If-Match races, prune and dry runs against a real
redis-server, controller and two nginx edges."""
import os
import random
import subprocess
import threading

from harness import BASE, wait_until


def _documents(controller):
    """Every route and upstream document as the API answers them (versions included)."""
    routes = controller.ok("GET", "/api/v1/routes")["items"]
    upstreams = controller.ok("GET", "/api/v1/upstreams")["items"]
    return {"routes": {r["id"]: r for r in routes}, "upstreams": {u["name"]: u for u in upstreams}}


def _dump(redis, keys=None):
    """DUMP of every configuration key (or of `keys`): equal dumps, nothing written. Sets and
    hashes by their sorted members instead: a read may take a rehash step in Redis, which
    reorders a hashtable's DUMP without changing what it holds."""
    def run(*args):
        return subprocess.run(["redis-cli", "-p", str(redis.port), "--raw", *args],
                              capture_output=True, check=True, timeout=10).stdout

    out = {}
    for k in (keys if keys is not None else redis.config_keys()):
        kind = run("TYPE", k).strip()
        if kind == b"set":
            out[k] = sorted(run("SMEMBERS", k).split(b"\n"))
        elif kind == b"hash":
            items = run("HGETALL", k).split(b"\n")
            out[k] = sorted(zip(items[0::2], items[1::2]))
        else:
            out[k] = run("DUMP", k)
    return out


def _converged(controller, version):
    status = controller.ok("GET", f"/api/v1/status?wait_version={version}&timeout_ms=5000")
    return status


def test_revert_brings_back_the_digest_and_the_routing_of_that_version(controller, edges, redis,
                                                                       backends):
    b1, b2, b3 = backends["b1"], backends["b2"], backends["b3"]
    controller.upstream("cm-one", b1.port)
    controller.upstream("cm-two", b2.port)
    controller.route("cm-main", "cm.example.com", "/", "cm-one")
    controller.route("cm-api", "cm.example.com", "/api", "cm-two")
    target = redis.version()
    digest_at_target = redis.get(BASE + "digest")
    expected = {"/": "b1", "/api/x": "b2", "/new": "b1"}
    for e in edges:
        wait_until(lambda e=e: all(e.backend(p, "cm.example.com") == b for p, b in expected.items()),
                   5, what=f"version {target} on {e.id}")

    # change: move the main route, add a route and an upstream, drop an endpoint's upstream use
    controller.upstream("cm-three", b3.port)
    controller.route("cm-main", "cm.example.com", "/", "cm-three")
    controller.route("cm-new", "cm.example.com", "/new", "cm-two")
    controller.ok("DELETE", "/api/v1/routes/cm-api")
    for e in edges:
        wait_until(lambda e=e: e.backend("/new", "cm.example.com") == "b2"
                   and e.backend("/api/x", "cm.example.com") == "b3", 5, what=f"changes on {e.id}")

    r = controller.request("POST", "/api/v1/revert", {"to_version": target},
                           headers={"X-Switchyard-Note": "e2e revert"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert redis.get(BASE + "digest") == digest_at_target == answer["digest"]
    assert answer["digest_at_version"] == digest_at_target
    assert controller.ok("GET", f"/api/v1/history/{answer['version']}")["note"] == "e2e revert"
    for e in edges:
        wait_until(lambda e=e: all(e.backend(p, "cm.example.com") == b
                                   for p, b in expected.items()), 5, what=f"revert on {e.id}")
    status = _converged(controller, answer["version"])
    assert status["converged"], status
    for edge in status["edges"]:
        assert edge["digest"] == digest_at_target, edge


def test_property_reverts_restore_whole_documents(controller, redis):
    """Random sequences of changes; reverts to random earlier versions restore exactly the
    documents of that version (bounded: 4 rounds of at most 12 changes)."""
    seed = int(os.environ.get("SWITCHYARD_PROPERTY_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"property seed {seed} (SWITCHYARD_PROPERTY_SEED reproduces it)")
    names = [f"pu-{i}" for i in range(3)]
    routes = [f"pr-{i}" for i in range(5)]
    for name in names:
        controller.ok("PUT", f"/api/v1/upstreams/{name}",
                      {"endpoints": [{"address": "127.0.0.1:9"}]})
    states = {redis.version(): _documents(controller)}
    for round_ in range(4):
        for _ in range(rng.randint(3, 12)):
            action = rng.random()
            rid = rng.choice(routes)
            if action < 0.5:
                controller.request("PUT", f"/api/v1/routes/{rid}", {
                    "host": rng.choice(["p1.example.com", "p2.example.com", "*.p.example.com"]),
                    "path": rng.choice(["/", "/a", "/b/c"]), "upstream": rng.choice(names),
                    "priority": rng.randint(0, 3)})
            elif action < 0.7:
                controller.request("DELETE", f"/api/v1/routes/{rid}")
            else:
                name = rng.choice(names)
                port = rng.randint(9000, 9100)
                controller.request("PUT", f"/api/v1/upstreams/{name}", {
                    "endpoints": [{"address": f"127.0.0.1:{port}", "weight": rng.randint(1, 5)}]})
            states[redis.version()] = _documents(controller)
        target = rng.choice(sorted(states))
        r = controller.request("POST", "/api/v1/revert", {"to_version": target})
        assert r.status_code == 200, f"seed {seed} round {round_}: {r.text}"
        assert _documents(controller) == states[target], f"seed {seed}: revert to {target}"
        assert r.json()["digest"] == r.json()["digest_at_version"], f"seed {seed}"
        states[redis.version()] = _documents(controller)


def test_concurrent_writers_with_if_match_exactly_one_wins(controller, redis):
    controller.ok("PUT", "/api/v1/upstreams/race", {"endpoints": [{"address": "127.0.0.1:9"}]})
    etag = controller.request("GET", "/api/v1/routes").headers["ETag"]
    assert etag == f'"{redis.version()}"'
    results = []
    barrier = threading.Barrier(8)

    def write(i):
        barrier.wait(5)
        r = controller.request("PUT", f"/api/v1/routes/race-{i}",
                               {"host": "race.example.com", "path": f"/{i}", "upstream": "race"},
                               headers={"If-Match": etag})
        results.append(r.status_code)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(results) == [201] + [412] * 7, results
    assert redis.version() == int(etag.strip('"')) + 1
    written = [k for k in redis.config_keys() if k.startswith(BASE + "route:race-")]
    assert len(written) == 1, written


def test_prune_never_touches_another_owners_objects(controller, redis):
    theirs = {"upstreams": [{"name": "own-b", "endpoints": []}],
              "routes": [{"id": "own-b-r", "host": "b.own.example.com", "path": "/",
                          "upstream": "own-b"}]}
    assert controller.request("POST", "/api/v1/apply?owner=team-b", theirs).status_code == 200
    keys_b = [BASE + "route:own-b-r", BASE + "upstream:own-b"]
    before = _dump(redis, keys_b + [BASE + "owners"])
    rng = random.Random(7)
    for i in range(5):
        routes = [{"id": f"own-a-{j}", "host": "a.own.example.com", "path": f"/{j}",
                   "upstream": "own-a"} for j in rng.sample(range(6), rng.randint(0, 4))]
        doc = {"upstreams": [{"name": "own-a", "endpoints": []}], "routes": routes}
        r = controller.request("POST", "/api/v1/apply?prune=true&owner=team-a", doc)
        assert r.status_code == 200, r.text
        held = sorted(k for k in redis.config_keys() if k.startswith(BASE + "route:own-a-"))
        assert held == sorted(BASE + "route:" + x["id"] for x in routes)
        assert _dump(redis, keys_b) == {k: v for k, v in before.items() if k in keys_b}
    # a document that names team-b's object is refused whole
    grab = {"upstreams": [{"name": "own-b", "endpoints": []}], "routes": []}
    version = redis.version()
    r = controller.request("POST", "/api/v1/apply?prune=true&owner=team-a", grab)
    assert r.status_code == 409 and r.json()["error"]["code"] == "owned", r.text
    assert redis.version() == version
    assert _dump(redis, keys_b) == {k: v for k, v in before.items() if k in keys_b}


def test_dry_runs_write_nothing(controller, redis):
    controller.ok("PUT", "/api/v1/upstreams/dry", {"endpoints": [{"address": "127.0.0.1:9"}]})
    controller.ok("PUT", "/api/v1/routes/dry-a",
                  {"host": "dry.example.com", "path": "/x", "upstream": "dry"})
    before = _dump(redis)
    version = redis.version()
    calls = [
        ("PUT", "/api/v1/routes/dry-b?dry_run=true",
         {"host": "dry.example.com", "path": "/x", "upstream": "dry", "priority": 9}),
        ("DELETE", "/api/v1/routes/dry-a?dry_run=true", None),
        ("PUT", "/api/v1/upstreams/dry?dry_run=true", {"endpoints": []}),
        ("POST", "/api/v1/apply?dry_run=true",
         {"routes": [{"id": "dry-c", "host": "dry.example.com", "path": "/c", "upstream": "dry"}]}),
        ("POST", "/api/v1/apply?prune=true&owner=nobody&dry_run=true", {}),
        ("POST", "/api/v1/revert?dry_run=true", {"to_version": max(version - 1, 1)}),
    ]
    for method, path, body in calls:
        r = controller.request(method, path, body)
        assert r.status_code == 200, f"{path}: {r.text}"
        assert r.json()["dry_run"] is True
    shadow = controller.request(*calls[0][:2], calls[0][2]).json()
    # routes shadowed already (other tests' leftovers) are listed too, with "new": false
    assert [s["route"] for s in shadow["impact"]["shadowed_routes"] if s["new"]] == ["dry-a"]
    assert redis.version() == version
    assert _dump(redis) == before
