"""Every background job reports its latest success and failure in one place, and /health and
/api/health say ``degraded`` while any job's latest run failed (a tailer that cannot read its file,
a recorder that cannot store, a job added later through the same one call)."""
from __future__ import annotations

import time
import urllib.request

import orjson
import pytest

from metrics_app import create_app
from metrics_app.jobs import BackgroundJobs
from metrics_app.job_status import registry
from metrics_app.sampling.runner import PeriodicThread

from .dbsetup import config_for, dispose
from .ingest.records import utilization
from .server import GunicornServer


def boom() -> None:
    raise OSError("disk on fire")


def health(client) -> dict:
    response = client.get("/health")
    assert response.status_code == 200
    return response.get_json()


def test_a_tailer_failing_every_poll_makes_health_degraded_until_it_recovers(app, client, tmp_path):
    path = tmp_path / "ws_out.jsonl"
    path.mkdir()  # open() fails on every poll: IsADirectoryError
    app.config.update(ENABLE_WS_FILE=True, INPUT_WS_PATH=str(path), JOBS_LOCK_PATH=str(tmp_path / "jobs.lock"))
    jobs = BackgroundJobs(app)
    assert jobs.leader.poll()
    for _ in range(2):
        jobs._as_leader(jobs._poll_tailers)()  # never raises: the thread would carry on
    body = health(client)
    tailer = body["jobs"]["runs"]["tailer-ws"]
    assert body["status"] == "degraded"
    assert tailer["status"] == "failing" and tailer["failures_in_a_row"] == 2
    assert tailer["last_error"].startswith("IsADirectoryError") and tailer["last_success"] is None
    api = client.get("/api/health").get_json()
    assert api["status"] == "degraded" and api["jobs"]["runs"]["tailer-ws"]["status"] == "failing"

    path.rmdir()
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in utilization(3)))
    jobs._as_leader(jobs._poll_tailers)()
    body = health(client)
    tailer = body["jobs"]["runs"]["tailer-ws"]
    assert body["status"] == "ok" and tailer["status"] == "ok" and tailer["failures_in_a_row"] == 0
    assert tailer["last_success"] >= tailer["last_failure"]  # the failure stays on record
    assert body["counts"]["records"] == 3
    jobs.stop()


def test_registering_a_job_is_one_call_and_its_failures_degrade_health(app, client):
    with app.app_context():
        subscriber = registry().register("fleet-subscriber")
    assert health(client)["jobs"]["runs"]["fleet-subscriber"]["status"] == "not_run_yet"
    assert health(client)["status"] == "ok"
    with app.app_context():
        subscriber.failed(ConnectionError("fleet broker unreachable"))
    job = health(client)["jobs"]["runs"]["fleet-subscriber"]
    assert job["status"] == "failing" and job["last_error"] == "ConnectionError: fleet broker unreachable"
    with app.app_context():
        subscriber.succeeded()
    assert health(client)["status"] == "ok"


def test_a_failed_run_is_logged_and_recorded_not_raised(app, client, caplog):
    with app.app_context():
        recorder = registry().register("local-recorder")
        assert recorder.run(boom) is None
        assert recorder.run(lambda: 7) == 7
        assert recorder.run(boom) is None
    assert "job local-recorder failed" in caplog.text
    job = health(client)["jobs"]["runs"]["local-recorder"]
    assert job["status"] == "failing" and job["failures_in_a_row"] == 1 and job["last_success"] is not None


def test_any_worker_reports_what_the_leader_recorded(app, client, database_url):
    """Only the leader runs the jobs; another worker, running none, reports the stored runs."""
    with app.app_context():
        registry().register("retention").run(boom)
    other = create_app(config_for(database_url))
    try:
        body = health(other.test_client())
    finally:
        dispose(other)
    assert body["status"] == "degraded" and body["jobs"]["runs"]["retention"]["last_error"] == "OSError: disk on fire"


def test_a_zero_interval_is_refused_instead_of_killing_the_thread():
    with pytest.raises(ValueError, match="interval must be > 0"):
        PeriodicThread("retention", 0, lambda: None)


@pytest.mark.slow
def test_the_real_server_reports_a_failing_tailer(tmp_path):
    unreadable = tmp_path / "ws_out.jsonl"
    unreadable.mkdir()
    with GunicornServer(tmp_path, SAMPLERS_ENABLED="false", ENABLE_WS_FILE="true", INPUT_WS_PATH=str(unreadable),
                        FILE_POLL_INTERVAL_SEC="0.2", RECORD_INTERVAL_SEC="0") as server:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            body = orjson.loads(urllib.request.urlopen(server.url("/health"), timeout=5).read())
            if body["jobs"]["runs"].get("tailer-ws", {}).get("status") == "failing":
                break
            time.sleep(0.2)
        assert body["status"] == "degraded", body
        assert body["jobs"]["runs"]["retention"]["status"] == "ok"
        api = orjson.loads(urllib.request.urlopen(server.url("/api/health"), timeout=5).read())
        assert api["status"] == "degraded" and api["jobs"]["runs"]["tailer-ws"]["status"] == "failing"
