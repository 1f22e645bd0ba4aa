"""One jobs leader: the PostgreSQL advisory lock (lost with its session) and the SQLite flock; both
name the leader the same way to whichever process asks."""
from __future__ import annotations

import psycopg
import pytest

from metrics_app.extensions import db
from metrics_app.leadership import AdvisoryLockLeadership, FlockLeadership, leadership_for, process_name


def test_flock_leader_is_named_to_other_processes_and_forgotten_when_it_lets_go(app, tmp_path):
    path = str(tmp_path / "jobs.lock")
    leader, follower = FlockLeadership(path), FlockLeadership(path)
    with app.app_context():
        assert follower.current(db.engine) is None
        assert leader.poll() and not follower.poll()
        assert leader.current(db.engine) == follower.current(db.engine) == process_name()
        leader.release()
        assert follower.current(db.engine) is None  # the file still holds the name, but nobody holds the lock
        assert follower.poll()
        follower.release()


@pytest.fixture
def pg_engine(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("the advisory lock needs PostgreSQL (set TEST_DATABASE_URL)")
        yield db.engine


def test_advisory_lock_one_leader_and_the_lead_goes_with_the_session(pg_engine):
    first, second = leadership_for(pg_engine, ""), leadership_for(pg_engine, "")
    assert isinstance(first, AdvisoryLockLeadership)
    try:
        assert first.poll() and first.poll() and not second.poll()
        assert first.current(pg_engine) == second.current(pg_engine) == process_name()
        # The leader's session is killed (a crash, a network cut): its next poll notices, the other leads.
        with psycopg.connect(first.conninfo, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = %s",
                          (first._conn.info.backend_pid,))
        assert not first.poll() and not first.leading
        assert second.poll()
        assert first.current(pg_engine) == process_name()
        second.release()
        assert first.current(pg_engine) is None
    finally:
        first.release()
        second.release()


def test_advisory_lock_keys_differ_per_schema(pg_engine):
    """Test sessions (and deployments) sharing one server in separate schemas never contend."""
    leader = leadership_for(pg_engine, "")
    try:
        assert leader.poll()
        base = pg_engine.url.set(query={}).set(drivername="postgresql").render_as_string(hide_password=False)
        other = AdvisoryLockLeadership(base)  # the public schema of the same database
        try:
            assert other.poll()
        finally:
            other.release()
    finally:
        leader.release()


def test_health_names_the_leader_once_there_is_one(app, client, tmp_path):
    from metrics_app.jobs import EXTENSION_KEY, BackgroundJobs

    app.config["JOBS_LOCK_PATH"] = str(tmp_path / "jobs.lock")
    jobs = app.extensions[EXTENSION_KEY] = BackgroundJobs(app)
    assert client.get("/health").get_json()["jobs"]["leader"] is None
    try:
        assert jobs.leader.poll()
        body = client.get("/health").get_json()["jobs"]
        assert body["leader"] == process_name()
        assert body["lock"] in ("flock", "postgresql_advisory_lock")
    finally:
        jobs.stop()
