"""Every background job reports here: its latest success, its latest failure and that error.

One registry per app (``app.extensions["job_status"]``). Registering a job is one call, and each run
goes through the returned ``Job``: ``registry(app).register("fleet-subscriber").run(step)``, or
``succeeded()`` / ``failed(exc)`` from a job that runs as one long loop rather than in ticks. The
record is written to ``job_runs`` because only the jobs' leader runs them, while any worker may
answer /health. A job "keeps failing" when its latest run failed; /health and /api/health are then
``degraded``. A run's error never leaves ``Job.run``: it is logged and recorded, and the thread goes on.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from flask import Flask, current_app

from .storage import write_queue
from .storage.status import record_job_run, stored_job_runs

log = logging.getLogger(__name__)
EXTENSION_KEY = "job_status"


class Job:
    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, step: Callable[[], Any]) -> Any:
        """Call ``step`` (in an app context) and record how it went; its result, or None if it raised."""
        began = time.monotonic()
        try:
            result = step()
        except Exception as exc:  # noqa: BLE001 - one failed run must not end the job's thread
            log.exception("job %s failed; retrying at its next run", self.name)
            self.failed(exc, began)
            return None
        self.succeeded(began)
        return result

    def succeeded(self, began: float | None = None) -> None:
        self._record(began, None)

    def failed(self, exc: BaseException, began: float | None = None) -> None:
        self._record(began, f"{type(exc).__name__}: {exc}")

    def _record(self, began: float | None, error: str | None) -> None:
        duration_ms = 0 if began is None else int((time.monotonic() - began) * 1000)
        try:
            write_queue().run(lambda conn: record_job_run(conn, self.name, duration_ms=duration_ms, error=error))
        except Exception:  # noqa: BLE001 - the database itself is failing; /health reports that
            log.exception("could not record the run of job %s", self.name)


class JobRegistry:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}

    def register(self, name: str) -> Job:
        """The one call a new background job makes; registering a name twice gives the same Job."""
        return self.jobs.setdefault(name, Job(name))

    def report(self) -> dict[str, dict[str, Any]]:
        """Each job this process runs (or, running none, each one stored by whichever host does):
        ``status`` is ``ok``, ``failing`` (its latest run failed) or ``not_run_yet``."""
        stored = stored_job_runs()
        names = sorted(self.jobs) or list(stored)
        return {name: _with_status(stored.get(name)) for name in names}


def _with_status(run: dict[str, Any] | None) -> dict[str, Any]:
    if run is None:
        return {"status": "not_run_yet", "last_success": None, "last_failure": None, "failures_in_a_row": 0,
                "last_error": None, "duration_ms": None}
    return {"status": "failing" if run["failures_in_a_row"] else "ok", **run}


def failing(report: dict[str, dict[str, Any]]) -> list[str]:
    return [name for name, job in report.items() if job["status"] == "failing"]


def init_app(app: Flask) -> JobRegistry:
    return app.extensions.setdefault(EXTENSION_KEY, JobRegistry())


def registry(app: Flask | None = None) -> JobRegistry:
    return (app or current_app).extensions[EXTENSION_KEY]
