"""Background writers: the retention job, the JSONL file tailers and the local GPU recorder.

Every gunicorn worker builds the app, but these must run in one process only: each tick first tries
to become the leader by taking an ``flock`` that it then keeps for life (every run is reported in
``job_status``, for /health). When the leader dies the
kernel drops its lock and another worker takes over on its next tick. (The lock file is local, so
with PostgreSQL shared by several hosts, enable the jobs on one host only.)

Nothing starts at import, in ``create_app``, in tests (``BACKGROUND_JOBS_ENABLED`` is off there) or
in ``flask`` commands: ``start()`` runs from gunicorn's ``post_worker_init`` or on the first request.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
import threading
from functools import partial
from typing import Callable

from flask import Flask

from . import job_status
from .extensions import db
from .ingest.tailer import FileTailer
from .recording.recorder import LocalRecorder
from .sampling.runner import PeriodicThread
from .storage import write_queue
from .storage.retention import retention_job

log = logging.getLogger(__name__)
EXTENSION_KEY = "background_jobs"


def default_lock_path(database_url: str) -> str:
    """Beside a SQLite file; for a server database, one lock per URL in the temp directory."""
    if database_url.startswith("sqlite:///") and len(database_url) > len("sqlite:///"):
        return database_url[len("sqlite:///"):] + ".jobs.lock"
    digest = hashlib.sha1(database_url.encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"gpu-metrics-jobs-{digest}.lock")


class LeaderLock:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._mutex = threading.Lock()

    def acquire(self) -> bool:
        """True once this process is the leader (and from then on); never blocks."""
        with self._mutex:
            if self._fd is not None:
                return True
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd = fd
            log.info("process %d leads the background jobs (lock %s)", os.getpid(), self.path)
            return True

    def release(self) -> None:
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class BackgroundJobs:
    def __init__(self, app: Flask) -> None:
        self.app = app
        config = app.config
        with app.app_context():
            # The engine's URL, not the configured one: Flask-SQLAlchemy moves a relative SQLite path
            # (the default ./metrics.db) into the instance folder, and the lock must sit beside the file.
            database_url = db.engine.url.render_as_string(hide_password=False)
        self.leader = LeaderLock(config.get("JOBS_LOCK_PATH") or default_lock_path(database_url))
        self.tailers = [
            FileTailer(name, config[path_key], config["MAX_BATCH"])
            for name, flag, path_key in (("ws", "ENABLE_WS_FILE", "INPUT_WS_PATH"),
                                         ("msg", "ENABLE_MSG_FILE", "INPUT_MSG_PATH"))
            if config[flag]
        ]
        self._threads: list[PeriodicThread] = []
        self._start_lock = threading.Lock()
        self.status = job_status.init_app(app)

    def _as_leader(self, job: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            with self.app.app_context():
                if self.leader.acquire():
                    job()
        return run

    def _poll_tailers(self) -> None:
        """Each tailer is a job of its own for /health; one file's trouble does not stop the other."""
        for tailer in self.tailers:
            self.status.register(f"tailer-{tailer.name}").run(lambda: tailer.poll(write_queue(self.app)))

    def start(self) -> None:
        if self._threads:  # runs before every request outside gunicorn: no lock once started
            return
        with self._start_lock:
            if self._threads:
                return
            config, reported = self.app.config, self.status.register
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
            for name, interval, job in jobs:
                thread = PeriodicThread(name, interval, self._as_leader(job))
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        threads, self._threads = self._threads, []
        for thread in threads:
            thread.stop()
        for tailer in self.tailers:
            tailer.close()
        self.leader.release()


def init_app(app: Flask) -> BackgroundJobs:
    jobs = BackgroundJobs(app)
    app.extensions[EXTENSION_KEY] = jobs
    if app.config["BACKGROUND_JOBS_ENABLED"]:
        # Servers other than gunicorn get the jobs on the first request; under gunicorn,
        # post_worker_init has started them already and this is a no-op.
        app.before_request(jobs.start)
    return jobs
