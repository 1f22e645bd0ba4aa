"""Schemathesis against the service's own /openapi.json: no 5xx, every response
(status, content type, body) one the document declares, and input the document forbids never accepted.

In process through the WSGI app, so thousands of cases take seconds rather than a server round trip
each. Valid and invalid inputs are both generated (``mode = "all"``) from a fixed seed with Hypothesis
derandomized and its example database off, so CI runs the same cases every time. WebSocket routes are
fuzzed as plain HTTP, which they answer with a documented 426. Timestamps at the edges of what can be
stored (and cursors beyond them) are sent by hand below: random date-times rarely reach year 1 or 9999.

schemathesis' fixture-based loader (``from_fixture``) does not run under pytest 9, so the document is
loaded at import from a database-less app and every case is sent to the test's own ``app``.
"""
from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone

import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, ignored_auth, negative_data_rejection,
                                               response_schema_conformance, status_code_conformance)

from metrics_app import create_app

from ..dbsetup import config_for
from ..ingest.records import CRAWLER_EXAMPLES, INGEST_EXAMPLES, utilization
from ..live.conftest import live  # noqa: F401 - a ticked hub, so /api/metrics has a snapshot to serve

pytestmark = pytest.mark.slow

#: Fuzzing examples per operation and generation mode; operations without inputs stop after a few.
MAX_EXAMPLES = 450
MIN_CASES = 2_000
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]
CONFIG = {
    "seed": 6,
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    "phases": {"stateful": {"enabled": False}},
}

#: Stored at the first and last representable millisecond: every fuzzed read meets them.
EDGE_RECORDS = [dict(INGEST_EXAMPLES["power"], gpuIndex=7, timestamp="0001-01-01T00:00:00Z"),
                dict(INGEST_EXAMPLES["power"], gpuIndex=8, timestamp="9999-12-31T23:59:59.999Z")]
RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
HAND_SETTINGS = settings(max_examples=200, derandomize=True, database=None, deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture])

cases_run: dict[str, int] = {}

schema = schemathesis.openapi.from_wsgi(
    "/openapi.json", create_app(config_for("sqlite://")), config=schemathesis.Config.from_dict(CONFIG),
)


@pytest.fixture
def stored(client):
    """Some history, so the reads' response schemas are checked on real items, not only empty lists."""
    response = client.post("/metrics", json=[*INGEST_EXAMPLES.values(), *utilization(50), *EDGE_RECORDS,
                                             *CRAWLER_EXAMPLES.values()])
    assert response.status_code == 201


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
def test_every_response_matches_the_spec(case, app, live, stored):  # noqa: F811 - live is the fixture
    """The app is shared by an operation's cases on purpose: it is what a long-running server is."""
    cases_run[case.operation.label] = cases_run.get(case.operation.label, 0) + 1
    case.call_and_validate(app=app, checks=CHECKS)


def test_enough_cases_were_generated():
    """Runs after the fuzz test (file order); prints the figure the issue asks for."""
    if not cases_run:
        pytest.skip("the fuzz test was not selected")
    total = sum(cases_run.values())
    print(f"\nschemathesis cases by operation: {cases_run}; total {total}")
    assert total >= MIN_CASES, cases_run


@HAND_SETTINGS
@given(moment=st.datetimes(), offset_minutes=st.integers(-14 * 60, 14 * 60))
@example(moment=datetime(9999, 12, 31, 23, 59, 59), offset_minutes=-14 * 60)
@example(moment=datetime(1, 1, 1), offset_minutes=14 * 60)
@example(moment=datetime(999, 6, 1), offset_minutes=0)
def test_any_iso_timestamp_is_stored_or_refused_and_reads_survive(client, moment, offset_minutes):
    """Every offset at every date: 201 when the UTC instant is in years 1-9999, else 422; either way
    the reads that format stored timestamps still answer, in RFC 3339 with a four-digit year."""
    stamp = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes))).isoformat()
    response = client.post("/metrics", json=dict(INGEST_EXAMPLES["power"], timestamp=stamp))
    assert response.status_code in (201, 422), response.get_data(as_text=True)
    for path in ("/gpus", "/metrics?format=csv"):
        read = client.get(path)
        assert read.status_code == 200
        assert all(RFC3339_UTC.fullmatch(t) for t in re.findall(r"\d+-\d\d-\d\dT[^,\"\n]*", read.get_data(as_text=True)))


def _encoded(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@HAND_SETTINGS
@given(cursor=st.one_of(
    st.text(max_size=60),
    st.builds(lambda order, ts, row: _encoded(f"{order}:{ts}:{row}"), st.sampled_from(["asc", "desc"]),
              st.integers(-(2 ** 80), 2 ** 80), st.integers(-(2 ** 80), 2 ** 80))))
def test_any_cursor_is_a_page_or_a_400(client, stored, cursor):
    response = client.get("/metrics", query_string={"cursor": cursor})
    assert response.status_code in (200, 400), response.get_data(as_text=True)


#: The same fuzzing with both tokens set, smaller: what changes is auth, not validation.
TOKEN_EXAMPLES = 20
INGEST_TOKEN, READ_TOKEN = "fuzz-ingest", "fuzz-read"
SECURED_APP = create_app(type("SecuredConfig", (config_for("sqlite://"),),
                              {"INGEST_TOKEN": [INGEST_TOKEN], "READ_TOKEN": [READ_TOKEN]}))


def secured_schema(token: str):
    """The document as served with tokens set; schemathesis sends ``token`` as the bearer credential
    (and leaves it out of the cases that test a missing one)."""
    config = {**CONFIG, "generation": {**CONFIG["generation"], "max-examples": TOKEN_EXAMPLES},
              "auth": {"openapi": {"bearerAuth": {"bearer": token}}}}
    return schemathesis.openapi.from_wsgi(
        "/openapi.json", SECURED_APP, config=schemathesis.Config.from_dict(config))


ingest_schema = secured_schema(INGEST_TOKEN).include(method="POST")
read_schema = secured_schema(READ_TOKEN).exclude(method="POST")
secured_statuses: dict[int, int] = {}


@pytest.fixture
def secured_history(app, client):
    """Both tokens set on the test's app, and some history posted with the ingest token."""
    app.config.update(INGEST_TOKEN=[INGEST_TOKEN], READ_TOKEN=[READ_TOKEN])
    response = client.post("/metrics", json=[*INGEST_EXAMPLES.values(), *utilization(50)],
                           headers={"Authorization": f"Bearer {INGEST_TOKEN}"})
    assert response.status_code == 201


def call_with_and_without_the_token(case, app) -> None:
    """With the token every response conforms (and the token is enforced: ``ignored_auth``); the same
    request without it is a 401 on a protected operation, and never a 5xx anywhere."""
    response = case.call_and_validate(app=app, checks=[*CHECKS, ignored_auth])
    secured_statuses[response.status_code] = secured_statuses.get(response.status_code, 0) + 1
    anonymous = case.derive(headers=CaseInsensitiveDict(
        {name: value for name, value in (case.headers or {}).items() if name.lower() != "authorization"}))
    response = anonymous.call(app=app)
    # Negative cases include undeclared methods (TRACE /metrics): a 405 for anyone, token or not.
    protected = "security" in case.operation.schema.raw_schema["paths"][case.path].get(case.method.lower(), {})
    if protected:
        assert response.status_code == 401, (case.method, case.path, response.status_code, response.text)
        assert response.json()["error"] == "unauthorized"
    else:
        assert response.status_code < 500, (case.method, case.path, response.status_code, response.text)


@ingest_schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
def test_with_the_ingest_token_ingest_conforms_and_without_it_is_a_401(case, app, live, secured_history):  # noqa: F811
    call_with_and_without_the_token(case, app)


@read_schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
def test_with_the_read_token_reads_conform_and_without_it_are_401s(case, app, live, secured_history):  # noqa: F811
    call_with_and_without_the_token(case, app)


def test_the_token_runs_got_past_auth():
    """Runs after them (file order): a wrong token would make every case a conforming 401."""
    if not secured_statuses:
        pytest.skip("the fuzz tests with tokens were not selected")
    print(f"\nschemathesis cases with tokens, by status: {dict(sorted(secured_statuses.items()))}")
    assert secured_statuses.get(200, 0) > 0 and secured_statuses.get(201, 0) > 0, secured_statuses
