"""What the background jobs last did, kept in the database so any worker's /health can report it
(only the leader process runs the jobs)."""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ..extensions import db
from .models import JobRun, TailerOffset
from .timefmt import iso_utc
from .writer import dialect_insert

JOB_RUNS = JobRun.__table__
TAILERS = TailerOffset.__table__


def now_ms() -> int:
    return int(time.time() * 1000)


def upsert_job_run(conn: Connection, name: str, *, duration_ms: int, deleted: int, error: str | None) -> None:
    values = {"finished_ms": now_ms(), "duration_ms": duration_ms, "deleted": deleted,
              "error": None if error is None else error[:1000]}
    stmt = dialect_insert(conn, JOB_RUNS).values(name=name, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))


def _iso(ms: int | None) -> str | None:
    return None if not ms else iso_utc(ms)


def jobs_status() -> dict[str, Any]:
    """``{"retention": {...} | None, "tailers": [...]}`` for GET /health (needs an app context)."""
    with db.engine.connect() as conn:
        runs = {r.name: r for r in conn.execute(select(JOB_RUNS))}
        tailers = conn.execute(select(TAILERS).order_by(TAILERS.c.name)).all()
    retention = runs.get("retention")
    return {
        "retention": None if retention is None else {
            "last_run": _iso(retention.finished_ms), "duration_ms": retention.duration_ms,
            "deleted": retention.deleted, "error": retention.error,
        },
        "tailers": [{
            "name": t.name, "path": t.path, "offset": t.offset, "lines": t.line_no, "records_ok": t.lines_ok,
            "malformed": t.lines_malformed, "last_error": t.last_error, "last_run": _iso(t.updated_ms),
        } for t in tailers],
    }
