"""The schema is Alembic's: a fresh database upgrades cleanly and has no pending model changes."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, inspect

from tests.server import ROOT

pytestmark = pytest.mark.slow


def flask_db(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "SAMPLERS_ENABLED": "false"}
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_upgrade_then_check_reports_no_pending_changes(database_url):
    upgrade = flask_db(database_url, "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    check = flask_db(database_url, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr


def test_fresh_sqlite_file_upgrades(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert flask_db(url, "upgrade").returncode == 0
    engine = create_engine(url)
    assert {"gpu_series", "records", "rollups_1m", "tailer_offsets", "job_runs"} <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
