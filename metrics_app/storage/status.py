"""What the background jobs last did, kept in the database so any worker's /health can report it
(only the leader process runs the jobs): each job's latest success and failure, and each file
tailer's progress through its file."""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ..extensions import db
from .models import JobRun, TailerOffset
from .timefmt import iso_utc
from .dialect import dialect_insert

JOB_RUNS = JobRun.__table__
TAILERS = TailerOffset.__table__


def now_ms() -> int:
    return int(time.time() * 1000)


def record_job_run(conn: Connection, name: str, *, duration_ms: int, error: str | None = None) -> None:
    """One run of job ``name``: a success when ``error`` is None, else a failure (one more in a row)."""
    if error is None:
        values = {"last_success_ms": now_ms(), "failures": 0, "duration_ms": duration_ms}
        on_conflict = values
    else:
        values = {"last_failure_ms": now_ms(), "failures": 1, "duration_ms": duration_ms, "error": error[:1000]}
        on_conflict = {**values, "failures": JOB_RUNS.c.failures + 1}
    stmt = dialect_insert(conn, JOB_RUNS).values(name=name, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=on_conflict))


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso_utc(ms)


def stored_job_runs() -> dict[str, dict[str, Any]]:
    """Every job that has run, by name (needs an app context)."""
    with db.engine.connect() as conn:
        rows = conn.execute(select(JOB_RUNS).order_by(JOB_RUNS.c.name)).all()
    return {r.name: {"last_success": _iso(r.last_success_ms), "last_failure": _iso(r.last_failure_ms),
                     "failures_in_a_row": r.failures, "last_error": r.error, "duration_ms": r.duration_ms}
            for r in rows}


def tailers_status() -> list[dict[str, Any]]:
    """Each tailer's place in its file and its malformed lines, for GET /health (needs an app context)."""
    with db.engine.connect() as conn:
        tailers = conn.execute(select(TAILERS).order_by(TAILERS.c.name)).all()
    return [{
        "name": t.name, "path": t.path, "offset": t.offset, "lines": t.line_no, "lines_ok": t.lines_ok,
        "malformed": t.lines_malformed, "last_error": t.last_error, "last_run": _iso(t.updated_ms or None),
    } for t in tailers]
