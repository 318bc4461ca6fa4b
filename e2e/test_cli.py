"""The `switchyard` CLI client and named tokens, end to end: the real binary against a real
controller (started with --tokens-file) and redis-server; explain through real edges.

Exit codes under test: 0 applied or nothing to change, 1 an error, 2 `diff` found changes."""
import json
import os
import signal
import subprocess

import pytest
import requests
import yaml

from harness import BIN, Controller, wait_until
from kube_support import ingress, manifest, service


def run(*args, token=None, url=None, stdin=None, env_extra=None, home=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("SWITCHYARD_URL", "SWITCHYARD_TOKEN", "SWITCHYARD_ADMIN_TOKEN", "SWITCHYARD_CONTROLLER")}
    env["HOME"] = home or "/nonexistent"  # no user config file
    env.pop("XDG_CONFIG_HOME", None)
    if url:
        env["SWITCHYARD_URL"] = url
    if token:
        env["SWITCHYARD_TOKEN"] = token
    env.update(env_extra or {})
    return subprocess.run([BIN, *args], env=env, capture_output=True, text=True, input=stdin, timeout=60)


def new_token(name, role):
    p = run("token", "new", "--name", name, "--role", role)
    assert p.returncode == 0, p.stderr
    token, line = p.stdout.splitlines()
    return token, line


def write_tokens(path, lines):
    with open(path + ".tmp", "w") as f:
        f.write("tokens:\n" + "".join(line + "\n" for line in lines))
    os.replace(path + ".tmp", path)


@pytest.fixture(scope="module")
def tokens():
    return {role: new_token(f"cli-{role}", role) for role in ("read", "write", "admin")}


@pytest.fixture(scope="module")
def tokened(redis, workdir, tokens):
    path = os.path.join(workdir, "tokens.yaml")
    write_tokens(path, [line for _, line in tokens.values()])
    c = Controller(redis, workdir, token="env-admin-token-0123456789abcdef", extra=("--tokens-file", path))
    c.tokens_path = path
    yield c
    c.stop()


def cli(controller, tokens, role, *args, **kw):
    return run(*args, url=controller.url, token=tokens[role][0], **kw)


def test_token_list_and_reload_through_the_cli(tokened, tokens):
    p = cli(tokened, tokens, "admin", "token", "list")
    assert p.returncode == 0, p.stderr
    rows = [line.split() for line in p.stdout.splitlines()]
    assert rows[0] == ["NAME", "ROLE", "SOURCE"]
    assert ["admin", "admin", "SWITCHYARD_ADMIN_TOKEN"] in rows and ["cli-read", "read", "file"] in rows
    assert "sha256" not in p.stdout
    p = cli(tokened, tokens, "write", "token", "list")
    assert p.returncode == 1 and "needs the admin role" in p.stderr
    extra, extra_line = new_token("extra", "read")
    write_tokens(tokened.tokens_path, [line for _, line in tokens.values()] + [extra_line])
    p = cli(tokened, tokens, "admin", "token", "reload")
    assert p.returncode == 0 and "5 tokens" in p.stdout, p.stdout + p.stderr  # the file's 4 and SWITCHYARD_ADMIN_TOKEN
    assert run("get", "routes", url=tokened.url, token=extra).returncode == 0
    with open(tokened.tokens_path, "a") as f:
        f.write("  - {name: extra, role: read, hash: \"sha256:00\"}\n")
    p = cli(tokened, tokens, "admin", "token", "reload")
    assert p.returncode == 1 and "tokens[4].hash" in p.stderr and "previous 5 tokens stay" in p.stderr, p.stderr
    assert run("get", "routes", url=tokened.url, token=extra).returncode == 0
    write_tokens(tokened.tokens_path, [line for _, line in tokens.values()])
    assert cli(tokened, tokens, "admin", "token", "reload").returncode == 0
    assert run("get", "routes", url=tokened.url, token=extra).returncode == 1


def test_token_helpers_print_a_token_and_its_file_line():
    token, line = new_token("ci", "write")
    assert token.startswith("sy_") and len(token) == 46
    assert line.startswith("  - {name: ci, role: write, hash: \"sha256:")
    entry = yaml.safe_load("tokens:\n" + line)["tokens"][0]
    assert entry["name"] == "ci" and entry["role"] == "write"
    p = run("token", "hash", stdin=token + "\n")
    assert p.returncode == 0 and p.stdout.strip() == entry["hash"]
    p = run("token", "hash", "--name", "ci", "--role", "write", stdin=token)
    assert p.stdout.rstrip("\n") == line
    assert new_token("ci", "write")[0] != token
    # human-sized secrets are refused: the file keeps a fast hash, safe for random tokens only
    p = run("token", "hash", stdin="hunter2\n")
    assert p.returncode != 0 and "at least 32" in p.stderr


def test_roles_and_reload_on_sighup(tokened, tokens, workdir):
    url = tokened.url + "/api/v1/upstreams/sighup-u"
    body = {"endpoints": [{"address": "127.0.0.1:9"}]}

    def put(token):
        return requests.put(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=5)

    r = put(tokens["read"][0])
    assert r.status_code == 403
    assert r.json()["error"]["required_role"] == "write" and r.json()["error"]["role"] == "read"
    assert put("nope").status_code == 401
    assert put(tokens["write"][0]).status_code in (200, 201)
    assert put("env-admin-token-0123456789abcdef").status_code == 200  # SWITCHYARD_ADMIN_TOKEN: admin
    log = tokened.process.output()
    assert "audit.principal=cli-write" in log and "audit.principal=admin" in log
    assert tokens["write"][0] not in log

    # a new file: the new token works after SIGHUP, the removed one no longer does
    late, late_line = new_token("late", "write")
    write_tokens(tokened.tokens_path, [late_line, tokens["read"][1], tokens["admin"][1]])
    assert put(late).status_code == 401
    tokened.process.send_signal(signal.SIGHUP)
    wait_until(lambda: put(late).status_code == 200, 10, what="the reloaded token")
    assert put(tokens["write"][0]).status_code == 401

    # a broken file: the previous set stays, the error is logged, the controller lives on
    with open(tokened.tokens_path, "w") as f:
        f.write("tokens:\n  - {name: x, role: superuser, hash: nope}\n")
    errors = tokened.process.output().count("tokens file not reloaded")
    tokened.process.send_signal(signal.SIGHUP)
    wait_until(lambda: tokened.process.output().count("tokens file not reloaded") > errors, 10, what="the reload error")
    assert "tokens[0].role" in tokened.process.output()
    assert tokened.process.alive()
    assert put(late).status_code == 200
    write_tokens(tokened.tokens_path, [line for _, line in tokens.values()])
    tokened.process.send_signal(signal.SIGHUP)
    wait_until(lambda: put(tokens["write"][0]).status_code == 200, 10, what="the restored tokens")


DOCS = """\
upstreams:
  - name: cli-u
    endpoints:
      - {address: "127.0.0.1:9", weight: 2}
---
routes:
  - {id: cli-r1, host: cli.test, path: /, upstream: cli-u}
  - {id: cli-r2, host: cli.test, path: /two, upstream: cli-u, priority: 5}
streams:
  - {id: cli-s, listen: 47001, protocol: udp, upstream: cli-u}
"""


def test_apply_diff_get_delete_and_exit_codes(tokened, tokens, redis, workdir):
    path = os.path.join(workdir, "cli.yaml")
    with open(path, "w") as f:
        f.write(DOCS)
    before = redis.version()

    # the controller's dry run when it has one (its JSON), else computed here: both name the ids
    p = cli(tokened, tokens, "write", "diff", "-f", path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "cli-u" in p.stdout and "cli-r1" in p.stdout and "cli-r2" in p.stdout
    # a read-only token may not ask for a dry run: the diff is computed here from GETs
    p = cli(tokened, tokens, "read", "diff", "-f", path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "create upstream cli-u" in p.stdout and "create route cli-r1" in p.stdout
    assert "create stream cli-s" in p.stdout
    assert "computed here from GET answers" in p.stderr
    p = cli(tokened, tokens, "write", "apply", "-f", path, "--dry-run")
    assert p.returncode == 0, p.stderr
    assert redis.version() == before, "a dry run wrote"

    p = cli(tokened, tokens, "read", "apply", "-f", path)
    assert p.returncode == 1
    assert "needs the write role" in p.stderr and "cli-read" in p.stderr
    assert redis.version() == before

    p = cli(tokened, tokens, "write", "apply", "-f", path, "--note", "first")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("applied: version ")
    assert redis.version() == before + 1, "one apply is one atomic change"
    p = cli(tokened, tokens, "write", "apply", "-f", path)
    assert p.returncode == 0 and p.stdout.startswith("no change"), p.stdout + p.stderr
    assert redis.version() == before + 1
    p = cli(tokened, tokens, "write", "diff", "-f", path)
    assert p.returncode == 0, p.stdout + p.stderr
    # a read-only token can still diff (computed from GETs)
    p = cli(tokened, tokens, "read", "diff", "-f", path)
    assert p.returncode == 0, p.stdout + p.stderr

    with open(path, "w") as f:
        f.write(DOCS.replace("priority: 5", "priority: 7"))
    p = cli(tokened, tokens, "read", "diff", "-f", path)
    assert p.returncode == 2
    assert "update route cli-r2: priority" in p.stdout

    # get: table, json, yaml; one object and lists
    p = cli(tokened, tokens, "read", "get", "routes")
    assert p.returncode == 0
    header, *rows = p.stdout.splitlines()
    assert header.split() == ["ID", "HOST", "PATH", "MATCH", "UPSTREAM", "PRIORITY", "VERSION"]
    assert any(row.split()[:5] == ["cli-r2", "cli.test", "/two", "prefix", "cli-u"] for row in rows)
    p = cli(tokened, tokens, "read", "get", "route", "cli-r1", "-o", "json")
    assert p.returncode == 0 and json.loads(p.stdout)["upstream"] == "cli-u"
    p = cli(tokened, tokens, "read", "get", "upstreams", "-o", "yaml")
    items = yaml.safe_load(p.stdout)["items"]
    assert any(u["name"] == "cli-u" and u["endpoints"][0]["weight"] == 2 for u in items)
    p = cli(tokened, tokens, "read", "get", "certificates")
    assert p.returncode == 0 and p.stdout.split()[:2] == ["ID", "NAMES"]
    p = cli(tokened, tokens, "read", "get", "streams")
    header, *rows = p.stdout.splitlines()
    assert header.split() == ["ID", "LISTEN", "PROTOCOL", "UPSTREAM", "BALANCE", "VERSION"], p.stdout
    assert any(row.split()[:5] == ["cli-s", "47001", "udp", "cli-u", "round_robin"] for row in rows), p.stdout

    # delete, then the object is gone: get exits 1 with the server's message
    p = cli(tokened, tokens, "write", "delete", "route", "cli-r2")
    assert p.returncode == 0 and "deleted route cli-r2" in p.stdout, p.stderr
    p = cli(tokened, tokens, "read", "get", "route", "cli-r2")
    assert p.returncode == 1 and "route 'cli-r2' does not exist" in p.stderr
    p = cli(tokened, tokens, "write", "delete", "route", "cli-r2")
    assert p.returncode == 1 and "HTTP 404" in p.stderr

    # invalid documents: exit 1, each problem named, nothing written
    version = redis.version()
    bad = os.path.join(workdir, "bad.yaml")
    with open(bad, "w") as f:
        f.write("routes:\n  - {id: cli-bad, host: cli.test, path: /bad, upstream: nowhere}\n")
    p = cli(tokened, tokens, "write", "apply", "-f", bad)
    assert p.returncode == 1 and "routes[0].upstream" in p.stderr and "nowhere" in p.stderr
    with open(bad, "w") as f:
        f.write("rutes: []\n")
    p = cli(tokened, tokens, "write", "apply", "-f", bad)
    assert p.returncode == 1 and "unknown key 'rutes'" in p.stderr
    assert redis.version() == version

    # no token, or a wrong address: exit 1 with a readable reason
    p = run("get", "routes", url=tokened.url)
    assert p.returncode == 1 and "HTTP 401" in p.stderr and "SWITCHYARD_TOKEN" in p.stderr
    p = run("get", "routes", url="http://127.0.0.1:1", token="x")
    assert p.returncode == 1 and p.stderr.startswith("error: GET /api/v1/routes")


def test_config_file_gives_address_and_token(tokened, tokens, workdir):
    home = os.path.join(workdir, "home")
    os.makedirs(os.path.join(home, ".config", "switchyard"), exist_ok=True)
    with open(os.path.join(home, ".config", "switchyard", "config.yaml"), "w") as f:
        f.write(f"url: {tokened.url}\ntoken: {tokens['read'][0]}\n")
    p = run("get", "upstreams", "-o", "json", home=home)
    assert p.returncode == 0, p.stderr
    assert "items" in json.loads(p.stdout)
    # the environment beats the default file; an explicit --config beats the environment
    p = run("get", "upstreams", home=home, token="wrong-token")
    assert p.returncode == 1 and "HTTP 401" in p.stderr
    other = os.path.join(workdir, "other.yaml")
    with open(other, "w") as f:
        f.write(f"url: {tokened.url}\ntoken: {tokens['admin'][0]}\n")
    p = run("get", "upstreams", "--config", other, home=home, token="wrong-token")
    assert p.returncode == 0, p.stderr


def test_history_and_revert_answer_or_fail_readably(tokened, tokens):
    p = cli(tokened, tokens, "read", "history", "--limit", "5")
    if p.returncode == 0:
        assert p.stdout.split()[:5] == ["VERSION", "TIME", "WHO", "NOTE", "OBJECTS"]
    else:
        # a controller without /api/v1/history: its JSON error, one line, no trace
        assert p.returncode == 1
        assert p.stderr.startswith("error: GET /api/v1/history?limit=5: HTTP 404"), p.stderr
    has_history = p.returncode == 0
    # read may not revert (403); a controller without revert answers 404 to anyone (its
    # router answers unknown paths before the token check)
    p = cli(tokened, tokens, "read", "revert", "1")
    assert p.returncode == 1
    assert ("needs the write role" in p.stderr) if has_history else ("HTTP 404" in p.stderr), p.stderr
    # a version long gone (409 naming the oldest kept) or no revert at all: exit 1, one readable line
    p = cli(tokened, tokens, "write", "revert", "999999")
    assert p.returncode == 1 and p.stderr.startswith("error: POST /api/v1/revert: HTTP "), p.stderr
    assert len(p.stderr.strip().splitlines()) >= 1 and "Traceback" not in p.stderr


def test_explain_through_a_real_edge(tokened, tokens, edges):
    for e in edges:
        wait_until(lambda e=e: requests.get(e.metrics_url + "/_switchyard/status", timeout=2).status_code == 200, 30,
                   what=f"edge {e.id}")
    cli(tokened, tokens, "write", "apply", "-f", "-",
        stdin="upstreams: [{name: ex-u, endpoints: [{address: '127.0.0.1:9'}]}]\n"
              "routes: [{id: ex-r, host: explain.cli.test, path: /api, upstream: ex-u}]\n")

    def explained():
        p = cli(tokened, tokens, "read", "explain", "http://explain.cli.test/api/x", "-o", "json")
        return p.returncode == 0 and "ex-r" in p.stdout and p

    p = wait_until(explained, 15, interval=0.5, what="explain naming the route")
    assert "answered_by" in json.loads(p.stdout)


def test_kubernetes_files_diff_and_apply(tokened, tokens, workdir):
    path = os.path.join(workdir, "kube.yaml")
    with open(path, "w") as f:
        f.write(manifest(service("cli-web", 80, 9, selector=False),
                         {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "cli-web", "namespace": "default"},
                          "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 9}]}]},
                         ingress("cli-web", [("kube.cli.test", [("/", "Prefix", "cli-web", 80)])])))
    p = cli(tokened, tokens, "write", "diff", "-f", path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "would create route" in p.stdout
    p = cli(tokened, tokens, "write", "apply", "-f", path)
    assert p.returncode == 0, p.stderr
    p = cli(tokened, tokens, "write", "diff", "-f", path)
    assert p.returncode == 0 and "nothing to change" in p.stdout
    # mixing the two kinds of file is refused before anything is read from the controller
    mixed = os.path.join(workdir, "mixed.yaml")
    with open(mixed, "w") as f:
        f.write(DOCS)
    p = cli(tokened, tokens, "write", "apply", "-f", path, "-f", mixed)
    assert p.returncode == 1 and "one kind of file at a time" in p.stderr
