"""docs/openapi.yaml against a real controller and a real redis-server, with schemathesis:
it generates requests for every documented operation from the document the controller
serves (GET /api/v1/openapi.yaml, the same bytes as the file) and checks every answer: no 5xx, the status code is
documented for the operation, the content type too, and the body matches the documented
schema (docs/openapi.yaml; the router side: Tests/SwitchyardControllerTests/OpenAPITests).

Bounded: at most MAX_EXAMPLES generated requests per operation (OPENAPI_MAX_EXAMPLES to
change it), each with a timeout; the whole file takes about a minute (OPENAPI_MAX_EXAMPLES=150: a few). Writes go to this
module's throwaway Redis. The token is the admin token, so every operation runs (the roles
themselves: test_hardening.py and AccessAPITests)."""
import os

import pytest
import requests
import schemathesis
import yaml
from openapi_spec_validator import validate as validate_openapi
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

DOCUMENT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "openapi.yaml")
MAX_EXAMPLES = int(os.environ.get("OPENAPI_MAX_EXAMPLES", "25"))
# plus: documented response headers (ETag, WWW-Authenticate, Retry-After) match their schema,
# and an operation that declares the bearer scheme refuses a request without a valid token
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance, ignored_auth]
# GET /status?wait_version waits for edges this stack has none of: at most this long.
MAX_WAIT_MS = 200
# every answer's status by operation, for the final check
ANSWERS = {}


@pytest.fixture(scope="module")
def seeded(controller):
    """A few real objects, so generated reads and writes also meet existing ones."""
    controller.upstream("backend", 9201, 9202)
    controller.route("bbs", "bbs.test.com", "/api", "backend")
    return controller


@pytest.fixture(scope="module")
def api_schema(seeded):
    # the file, which the controller serves byte for byte (test_the_served_document_is_the_file):
    # loaded from its URL, schemathesis would leave out the operation that serves it
    loaded = schemathesis.openapi.from_path(DOCUMENT)
    # valid requests and invalid ones (wrong types, missing fields, values out of range):
    # the invalid ones must be refused with a documented 4xx and the JSON error, never a 5xx
    loaded.config.generation.update(modes=list(schemathesis.GenerationMode))
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


def test_the_document_is_valid_openapi():
    with open(DOCUMENT, encoding="utf-8") as f:
        document = yaml.safe_load(f)
    assert document["openapi"].startswith("3.0.")
    validate_openapi(document)  # raises naming the first problem


def test_the_served_document_is_the_file(controller):
    with open(DOCUMENT, "rb") as f:
        text = f.read()
    r = controller.request("GET", "/api/v1/openapi.yaml")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/yaml")
    assert r.content == text
    assert requests.get(controller.url + "/api/v1/openapi.yaml", timeout=5).status_code == 401


def bound_wait(query):
    """A valid timeout_ms (or none: 10 s) becomes at most MAX_WAIT_MS; invalid ones stay
    (answered 422 at once)."""
    value = query.get("timeout_ms", MAX_WAIT_MS)
    try:
        ms = int(value)
    except (TypeError, ValueError):
        return
    query["timeout_ms"] = min(ms, MAX_WAIT_MS) if ms >= 0 else ms


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.generate])
def test_every_answer_matches_the_document(case, seeded):
    if case.path == "/api/v1/status" and case.query and "wait_version" in case.query:
        bound_wait(case.query)
    response = case.call_and_validate(base_url=seeded.url,
                                      headers={"Authorization": f"Bearer {seeded.token}"},
                                      checks=CHECKS, timeout=15)
    ANSWERS.setdefault(f"{case.method.upper()} {case.path}", []).append(response.status_code)


def test_every_operation_was_exercised(api_schema):
    """The run above reached every documented operation, and valid writes were applied (the
    document's examples are valid requests): a run that only collected 4xx would prove little."""
    documented = {f"{op.method.upper()} {op.path}"
                  for op in (r.ok() for r in api_schema.get_all_operations())}
    # (negative generation also sends methods a path does not have: answered 404/405)
    assert documented and documented <= set(ANSWERS), sorted(documented - set(ANSWERS))
    for operation in set(ANSWERS) - documented:
        assert set(ANSWERS[operation]) <= {404, 405}, (operation, ANSWERS[operation])
    for operation in ("PUT /api/v1/upstreams/{name}", "PUT /api/v1/routes/{id}", "POST /api/v1/apply",
                      "GET /api/v1/routes/{id}", "GET /api/v1/history"):
        assert any(200 <= s < 300 for s in ANSWERS[operation]), (operation, ANSWERS[operation])
    statuses = sorted({s for codes in ANSWERS.values() for s in codes})
    print(f"{sum(map(len, ANSWERS.values()))} requests, statuses {statuses}")
    assert not [s for s in statuses if s >= 500]


def test_dry_run_reports_match_the_document(api_schema, seeded):
    """Dry runs that change something (generated requests rarely do): the reports, with
    created, updated and deleted objects field by field and a shadowed route, are checked
    against the document like every answer."""
    auth = {"Authorization": f"Bearer {seeded.token}"}
    # the generated requests above may have changed or deleted the seeded objects
    seeded.upstream("backend", 9201, 9202)
    seeded.route("bbs", "bbs.test.com", "/api", "backend")
    version = seeded.status()["version"]
    cases = [
        api_schema["/api/v1/routes/{id}"]["PUT"].Case(
            path_parameters={"id": "bbs-twin"}, query={"dry_run": "true"},
            body={"host": "bbs.test.com", "path": "/api", "match": "prefix", "upstream": "backend",
                  "priority": 5}),
        api_schema["/api/v1/upstreams/{name}/endpoints/{address}"]["DELETE"].Case(
            path_parameters={"name": "backend", "address": "127.0.0.1:9201"}, query={"dry_run": "true"}),
        api_schema["/api/v1/apply"]["POST"].Case(
            query={"dry_run": "true"},
            body={"upstreams": [{"name": "web", "endpoints": [{"address": "127.0.0.1:9301"}]}],
                  "routes": [{"id": "web", "host": "www.test.com", "path": "/", "upstream": "web"}],
                  "delete": {"routes": ["bbs"]}}),
    ]
    reports = []
    for case in cases:
        response = case.call_and_validate(base_url=seeded.url, headers=auth, checks=CHECKS, timeout=15)
        assert response.status_code == 200, response.text
        assert response.headers.get("x-switchyard-dry-run") == ["true"], response.headers
        reports.append(response.json())
    assert [r["changed"] for r in reports] == [1, 1, 3]
    assert reports[0]["impact"]["shadowed_routes"], reports[0]
    assert reports[1]["changes"]["updated"][0]["fields"], reports[1]
    assert reports[2]["changes"]["deleted"] == [{"kind": "route", "id": "bbs"}]
    assert seeded.status()["version"] == version  # dry runs wrote nothing
