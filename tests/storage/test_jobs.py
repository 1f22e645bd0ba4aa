"""Background jobs run in one process only (the leader) and are never started by create_app."""
from __future__ import annotations

import tempfile
import threading

import orjson

from metrics_app import create_app
from metrics_app.jobs import EXTENSION_KEY, default_lock_path
from metrics_app.leadership import FlockLeadership

from ..dbsetup import config_for, dispose
from ..ingest.records import utilization


def test_only_one_leader_until_it_lets_go(tmp_path):
    first, second = FlockLeadership(str(tmp_path / "j.lock")), FlockLeadership(str(tmp_path / "j.lock"))
    assert first.poll() and first.poll()
    assert not second.poll()
    first.release()
    assert second.poll()
    second.release()


def test_lock_path_sits_beside_a_sqlite_file():
    assert default_lock_path("sqlite:////data/metrics.db") == "/data/metrics.db.jobs.lock"
    assert default_lock_path("postgresql+psycopg://u@h/db").endswith(".lock")
    assert default_lock_path("sqlite+pysqlite:///rel/m.db?timeout=5") == "rel/m.db.jobs.lock"
    assert default_lock_path("sqlite://").startswith(tempfile.gettempdir())  # in memory: no file to sit beside


def test_create_app_starts_no_thread_and_the_first_request_starts_the_jobs(database_url, app, tmp_path):
    """With the jobs enabled (as in production), building the app starts nothing; serving does."""
    # app (the fixture): empties the tables the retention run writes to afterwards.
    config = type("JobsEnabled", (config_for(database_url),), {
        "BACKGROUND_JOBS_ENABLED": True, "JOBS_LOCK_PATH": str(tmp_path / "jobs.lock")})
    before = set(threading.enumerate())
    served = create_app(config)
    try:
        assert set(threading.enumerate()) == before
        assert served.test_client().get("/api/health").status_code == 200
        assert "retention" in {thread.name for thread in set(threading.enumerate()) - before}
    finally:
        served.extensions[EXTENSION_KEY].stop()
        dispose(served)
    assert set(threading.enumerate()) <= before


def test_a_leader_tick_runs_the_tailers(app, tmp_path):
    path = tmp_path / "ws_out.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in utilization(4)))
    app.config.update(ENABLE_WS_FILE=True, INPUT_WS_PATH=str(path), JOBS_LOCK_PATH=str(tmp_path / "jobs.lock"))
    from metrics_app.jobs import BackgroundJobs

    jobs = BackgroundJobs(app)
    assert jobs.leader.poll()
    jobs._as_leader(jobs._poll_tailers)()
    assert jobs.tailers[0].lines_ok == 4
    jobs.stop()


def test_a_process_that_gains_the_lead_runs_its_hourly_job_at_once(app, client, tmp_path):
    import time

    from metrics_app.jobs import BackgroundJobs

    app.config.update(JOBS_LOCK_PATH=str(tmp_path / "jobs.lock"), LEADER_POLL_INTERVAL_SEC=0.05,
                      RECORD_INTERVAL_SEC=0)  # retention alone, every RETENTION_CLEAN_INTERVAL_SEC (an hour)

    def retention() -> dict:
        return client.get("/health").get_json()["jobs"]["runs"]["retention"]

    def wait_until(done) -> None:
        deadline = time.monotonic() + 5
        while not done() and time.monotonic() < deadline:
            time.sleep(0.05)

    leader, follower = BackgroundJobs(app), BackgroundJobs(app)
    leader.start()
    follower.start()
    try:
        wait_until(lambda: retention()["status"] == "ok")
        first = retention()["last_success"]
        assert first is not None and not follower.leader.leading
        leader.stop()  # the leader goes: the follower's next poll takes the lead and runs retention
        wait_until(lambda: retention()["last_success"] != first)
        assert follower.leader.leading and retention()["last_success"] > first
    finally:
        follower.stop()
        leader.stop()


def test_started_jobs_run_retention_and_report_it(app, client, tmp_path):
    import time

    from metrics_app.jobs import BackgroundJobs

    app.config["JOBS_LOCK_PATH"] = str(tmp_path / "jobs.lock")
    jobs = BackgroundJobs(app)
    jobs.start()
    try:
        deadline = time.monotonic() + 10
        while (retention := client.get("/health").get_json()["jobs"]["runs"]["retention"])["status"] == "not_run_yet" \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert retention["status"] == "ok" and retention["last_success"].endswith("Z")
    finally:
        jobs.stop()
