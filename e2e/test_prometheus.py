"""deploy/prometheus and deploy/grafana checked with the real tools, and a real Prometheus
(Debian `prometheus`) scraping a live controller and prober: promtool validates the scrape
configuration and the alert rules and runs their unit tests; every query of the Grafana
dashboard is valid PromQL and names only documented series; Prometheus, on a free loopback
port with a temporary storage directory and a 1 s scrape interval, answers PromQL about the
running stack through its HTTP API."""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest
import requests
import yaml

from harness import BIN, ROOT, Controller, Edge, Process, Prober, free_port, wait_until

PROMETHEUS_DIR = os.path.join(ROOT, "deploy", "prometheus")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "switchyard-dashboard.json")
METRICS_DOC = os.path.join(ROOT, "docs", "metrics.md")

pytestmark = pytest.mark.skipif(not shutil.which("promtool") or not shutil.which("prometheus"),
                                reason="Debian package prometheus not installed (make deps)")


def promtool(*args, cwd=PROMETHEUS_DIR):
    r = subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"promtool {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def documented_metrics():
    """Every `switchyard_...` name written in docs/metrics.md."""
    with open(METRICS_DOC) as f:
        return set(re.findall(r"`(switchyard_[a-z0-9_]+)", f.read()))


def series_names(expr):
    """The switchyard_* series an expression reads, histogram suffixes folded to the family."""
    names = set()
    for name in re.findall(r"\bswitchyard_[a-z0-9_]+", expr):
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[: -len(suffix)].endswith("_seconds"):
                name = name[: -len(suffix)]
        names.add(name)
    return names


def dashboard_exprs():
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    exprs = []

    def walk(panels):
        for panel in panels:
            exprs.extend(t["expr"] for t in panel.get("targets", []))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    return dashboard, exprs


def alert_rules():
    with open(os.path.join(PROMETHEUS_DIR, "switchyard-alerts.yml")) as f:
        return [rule for group in yaml.safe_load(f)["groups"] for rule in group["rules"]]


# --- the files ----------------------------------------------------------------------------------


def test_promtool_accepts_the_scrape_config_and_the_rules():
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")
    out = promtool("check", "rules", "switchyard-alerts.yml")
    assert "4 rules found" in out
    promtool("test", "rules", "switchyard-alerts.test.yml")


def test_alerts_cover_what_operators_need_and_use_documented_names():
    names = {rule["alert"] for rule in alert_rules()}
    assert names == {"SwitchyardEdgeNotConverged", "SwitchyardEndpointDown", "SwitchyardProberHeartbeatStale",
                     "SwitchyardRoute5xxRatioHigh"}
    documented = documented_metrics()
    for rule in alert_rules():
        used = series_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= documented, f"{rule['alert']} uses undocumented {used - documented}"


def test_dashboard_parses_and_every_query_is_valid_promql_on_documented_names(tmp_path):
    dashboard, exprs = dashboard_exprs()
    assert dashboard["uid"] and len(exprs) >= 15
    documented = documented_metrics()
    roles = set()
    for expr in exprs:
        used = series_names(expr)
        assert used, f"no switchyard series in {expr!r}"
        assert used <= documented, f"{expr!r} uses undocumented {used - documented}"
        roles |= {name.split("_")[1] for name in used}
    assert roles == {"edge", "controller", "prober"}
    # promtool parses every query: as recording rules, Grafana's $__rate_interval made concrete
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": e.replace("$__rate_interval", "1m")} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    assert f"{len(exprs)} rules found" in promtool("check", "rules", str(path))


def test_documented_names_follow_prometheus_conventions():
    with open(METRICS_DOC) as f:
        text = f.read()
    # the table rows of the controller and prober sections: name, type
    rows = re.findall(r"^\| `(switchyard_(?:controller|prober)_[a-z0-9_]+)` \| (\w+) \|", text, re.M)
    assert len(rows) >= 13
    for name, kind in rows:
        if kind == "counter":
            assert name.endswith("_total"), name
        if kind == "histogram":
            assert name.endswith("_seconds"), name


# --- a real Prometheus --------------------------------------------------------------------------


def edges_serve_metrics():
    """Whether this build's edge has --metrics-listen (the edge half of the metrics work)."""
    r = subprocess.run([BIN, "edge", "--help"], capture_output=True, text=True, timeout=30)
    return "--metrics-listen" in r.stdout + r.stderr


@pytest.fixture(scope="module")
def prom_stack(redis, workdir):
    cport, pport = free_port(), free_port()
    controller = Controller(redis, workdir, extra=("--metrics-listen", f"127.0.0.1:{cport}"))
    prober = Prober(redis, workdir, "p-prom", lease_ms=1000, extra=("--metrics-listen", f"127.0.0.1:{pport}"))
    # an edge too where edges serve metrics (the harness then gives each a metrics port)
    edge = Edge(redis, workdir, "edge-prom") if edges_serve_metrics() else None
    edge_targets = [edge.metrics_url.removeprefix("http://")] if edge is not None else []
    storage = tempfile.mkdtemp(prefix="switchyard-prom-", dir=workdir)
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
        "rule_files": [os.path.join(PROMETHEUS_DIR, "switchyard-alerts.yml")],
        "scrape_configs": [
            {"job_name": "switchyard-controller", "static_configs": [{"targets": [f"127.0.0.1:{cport}"]}]},
            {"job_name": "switchyard-prober", "static_configs": [{"targets": [f"127.0.0.1:{pport}"]}]},
        ] + ([{"job_name": "switchyard-edge", "static_configs": [{"targets": edge_targets}]}] if edge_targets else []),
    }
    config_path = os.path.join(workdir, "prometheus.yml")
    with open(config_path, "w") as f:
        yaml.safe_dump(config, f)
    prom = Process(f"prometheus-{port}", ["prometheus", f"--config.file={config_path}",
                                          f"--storage.tsdb.path={storage}",
                                          f"--web.listen-address=127.0.0.1:{port}",
                                          "--storage.tsdb.retention.time=1h", "--log.level=warn"],
                   log_dir=workdir)
    url = f"http://127.0.0.1:{port}"

    def ready():
        if not prom.alive():
            raise AssertionError("prometheus exited:\n" + prom.output())
        return requests.get(url + "/-/ready", timeout=1).status_code == 200

    wait_until(ready, 30, what=f"prometheus ready (log: {prom.log_path})")
    yield controller, prober, edge, url
    prom.stop()
    if edge is not None:
        edge.stop()
    prober.stop()
    controller.stop()


def query(url, promql):
    r = requests.get(url + "/api/v1/query", params={"query": promql}, timeout=5)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def scalar(url, promql):
    result = query(url, promql)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_the_stack_and_answers_promql(prom_stack, redis):
    controller, prober, edge, url = prom_stack
    targets = 3 if edge is not None else 2
    controller.ok("PUT", "/api/v1/upstreams/prom-web", {"endpoints": [{"address": "127.0.0.1:9"}]})
    for _ in range(3):
        assert controller.request("PUT", "/api/v1/routes/prom-bad", {"host": "p.test"}).status_code == 422

    # every target up
    wait_until(lambda: scalar(url, 'sum(up{job=~"switchyard-.*"})') == targets, 20, interval=0.5,
               what=f"{targets} switchyard targets up in Prometheus")
    # the 422s, by route template, as Prometheus stored them
    wait_until(lambda: scalar(url, 'sum(switchyard_controller_requests_total{route="/api/v1/routes/{id}",status="422"})') == 3,
               20, interval=0.5, what="three 422s in Prometheus")
    # the configuration version Prometheus has equals Redis's
    version = redis.version()
    wait_until(lambda: scalar(url, "max(switchyard_controller_config_version)") == version, 20, interval=0.5,
               what=f"config version {version} in Prometheus")
    if edge is not None:
        # the edge converged: the not-converged alert's own expression is empty
        wait_until(lambda: scalar(url, "min(switchyard_edge_config_version)") == version
                   and scalar(url, "min(switchyard_edge_digest_agrees)") == 1, 20, interval=0.5,
                   what="the edge's applied version and digest in Prometheus")
    # which prober holds the lease, asked the way an operator would
    leaders = wait_until(lambda: query(url, "switchyard_prober_leader == 1"), 20, interval=0.5, what="a leader")
    assert [r["metric"]["prober"] for r in leaders] == [prober.id]
    # the alert rules are loaded and evaluate; once the prober is scraped (a fresh heartbeat)
    # the stale-heartbeat alert is quiet (it may be pending from an evaluation before that)
    def stale_alert():
        groups = requests.get(url + "/api/v1/rules", timeout=5).json()["data"]["groups"]
        return {rule["name"]: rule for group in groups for rule in group["rules"]}.get("SwitchyardProberHeartbeatStale")

    assert stale_alert() is not None
    wait_until(lambda: stale_alert()["health"] == "ok" and stale_alert()["state"] == "inactive", 20, interval=0.5,
               what="SwitchyardProberHeartbeatStale evaluated and inactive")
    age = scalar(url, f'switchyard_prober_heartbeat_age_seconds{{prober="{prober.id}"}}')
    assert age is not None and age < 5
