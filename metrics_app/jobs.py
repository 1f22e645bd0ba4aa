"""Background writers: the retention job, the JSONL file tailers and the local GPU recorder.

Every gunicorn worker of every instance builds the app, but these must run in one process only: a
leadership thread polls ``leadership.py`` every ``LEADER_POLL_INTERVAL_SEC`` (a PostgreSQL advisory
lock across instances, an ``flock`` with SQLite), and each job runs only while its process leads.
A job is due at once when its process gains the lead, then every interval; every run is recorded
in ``job_status`` for /health.

Nothing starts at import, in ``create_app``, in tests (``BACKGROUND_JOBS_ENABLED`` is off there) or
in ``flask`` commands: ``start()`` runs from gunicorn's ``post_worker_init`` or on the first request.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from functools import partial
from typing import Any, Callable

from flask import Flask, current_app

from . import job_status
from .extensions import db
from .ingest.tailer import FileTailer
from .leadership import leadership_for
from .once import start_once
from .recording.recorder import LocalRecorder
from .sampling.runner import PeriodicThread
from .storage import write_queue
from .storage.dialect import sqlite_file
from .storage.retention import retention_job

log = logging.getLogger(__name__)
EXTENSION_KEY = "background_jobs"


def default_lock_path(database_url: str) -> str:
    """Beside a SQLite file; for a server database, one lock per URL in the temp directory."""
    if path := sqlite_file(database_url):
        return path + ".jobs.lock"
    digest = hashlib.sha1(database_url.encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"gpu-metrics-jobs-{digest}.lock")


class BackgroundJobs:
    def __init__(self, app: Flask) -> None:
        self.app = app
        config = app.config
        with app.app_context():
            # The engine's URL, not the configured one: Flask-SQLAlchemy moves a relative SQLite path
            # (the default ./metrics.db) into the instance folder, and the lock must sit beside the file.
            database_url = db.engine.url.render_as_string(hide_password=False)
            self.leader = leadership_for(db.engine, config.get("JOBS_LOCK_PATH") or default_lock_path(database_url))
        self.tailers = [
            FileTailer(name, config[path_key], config["MAX_BATCH"])
            for name, flag, path_key in (("ws", "ENABLE_WS_FILE", "INPUT_WS_PATH"),
                                         ("msg", "ENABLE_MSG_FILE", "INPUT_MSG_PATH"))
            if config[flag]
        ]
        self._threads: list[PeriodicThread] = []
        self._start_lock = threading.Lock()
        self.runs = job_status.init_app(app)

    def _as_leader(self, job: Callable[[], object]) -> Callable[[], None]:
        """What a job's thread runs at each of its intervals: ``job``, if this process leads."""
        def run() -> None:
            if self.leader.leading:
                with self.app.app_context():
                    job()
        return run

    def _poll_leadership(self, jobs: list[PeriodicThread]) -> None:
        """A process that has just gained the lead runs its jobs now rather than at their next interval."""
        was_leading = self.leader.leading
        if self.leader.poll() and not was_leading:
            for job in jobs:
                job.wake()

    def leadership(self) -> dict[str, Any]:
        """For GET /health: the same leader from every instance, and the lock that elects it."""
        return {"leader": self.leader.current(db.engine), "lock": self.leader.kind}

    def _poll_tailers(self) -> None:
        """Each tailer is a job of its own for /health; one file's trouble does not stop the other."""
        for tailer in self.tailers:
            self.runs.register(f"tailer-{tailer.name}").run(lambda: tailer.poll(write_queue(self.app)))

    @start_once
    def start(self) -> None:
        config, reported = self.app.config, self.runs.register
        poll = config["LEADER_POLL_INTERVAL_SEC"]
        jobs = []
        if config["METRICS_RETENTION_HOURS"] > 0:
            jobs.append(("retention", config["RETENTION_CLEAN_INTERVAL_SEC"],
                         partial(reported("retention").run, retention_job)))
        else:
            log.info("METRICS_RETENTION_HOURS=0: records are kept forever (no retention job)")
        if self.tailers:
            jobs.append(("file-tailers", config["FILE_POLL_INTERVAL_SEC"], self._poll_tailers))
        if config["RECORD_INTERVAL_SEC"] > 0:
            jobs.append(("local-recorder", config["RECORD_INTERVAL_SEC"],
                         partial(reported("local-recorder").run, LocalRecorder().record)))
        self.leader.poll()  # now, so that a process that can lead runs its jobs at once
        # Each job sleeps for its own interval (an hour for retention): only the leadership poll
        # wakes every LEADER_POLL_INTERVAL_SEC, and it wakes the jobs when the lead is gained.
        job_threads = [PeriodicThread(name, interval, self._as_leader(job)) for name, interval, job in jobs]
        threads = [PeriodicThread("jobs-leadership", poll, partial(self._poll_leadership, job_threads),
                                  delay=poll), *job_threads]
        for thread in threads:
            thread.start()
        self._threads = threads

    def stop(self) -> None:
        threads, self._threads = self._threads, []
        for thread in threads:
            thread.stop()
        for tailer in self.tailers:
            tailer.close()
        self.leader.release()


def jobs_report(app: Flask | None = None) -> dict[str, Any]:
    """``jobs`` of /health and /api/health: who leads them now (the same answer from every instance)
    and each job's latest runs (``job_status``)."""
    app = app or current_app
    return {**app.extensions[EXTENSION_KEY].leadership(), "runs": job_status.registry(app).report()}


def init_app(app: Flask) -> BackgroundJobs:
    jobs = BackgroundJobs(app)
    app.extensions[EXTENSION_KEY] = jobs
    if app.config["BACKGROUND_JOBS_ENABLED"]:
        # Servers other than gunicorn get the jobs on the first request; under gunicorn,
        # post_worker_init has started them already and this is a no-op.
        app.before_request(jobs.start)
    return jobs
