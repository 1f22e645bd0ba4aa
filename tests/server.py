"""Start the real service (gunicorn, as ./start.sh runs it) in a subprocess for end-to-end tests."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Where tests/conftest.py tells servers the session's migrated SQLite template is.
SQLITE_TEMPLATE_VARIABLE = "TEST_SQLITE_TEMPLATE"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GunicornServer:
    """``with GunicornServer(tmp_path, SAMPLE_INTERVAL_SEC="1.0") as server: server.url(...)``"""

    def __init__(self, workdir: Path, **env: str) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.env = {
            **os.environ,
            "PORT": str(self.port),
            # One worker unless a test is about several: per-worker state (/health counters, live
            # client slots) then answers the same on every connection.
            "GUNICORN_WORKERS": "1",
            "DATABASE_URL": os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{workdir / 'metrics.db'}",
            "LOG_LEVEL": "WARNING",
            # Fixtures are dated (2025): keep them raw records, as config.TestConfig does in process.
            "METRICS_RETENTION_HOURS": str(24 * 365 * 100),
            "ROLLUP_1M_RETENTION_DAYS": str(365 * 1000),
            "ROLLUP_1H_RETENTION_DAYS": str(365 * 1000),
            **env,
        }
        self.env.pop("TEST_DATABASE_URL", None)
        self.env.pop(SQLITE_TEMPLATE_VARIABLE, None)
        self.process: subprocess.Popen | None = None

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def provide_database(self) -> None:
        """Every database a server gets is migrated already, so no start runs ``flask db upgrade``: the
        session's (``database_url``, shared with the in-process app, or on PostgreSQL the default), an
        existing file (a restart), or a new SQLite file copied from the session's migrated template."""
        url = self.env["DATABASE_URL"]
        path = Path(url.removeprefix("sqlite:///"))
        if url.startswith("sqlite:///") and not path.exists():
            template = os.environ.get(SQLITE_TEMPLATE_VARIABLE)
            if not template:
                raise RuntimeError(f"{SQLITE_TEMPLATE_VARIABLE} is unset: test servers run under tests/conftest.py, "
                                   "which migrates the session's SQLite template")
            shutil.copyfile(template, path)

    def start(self) -> "GunicornServer":
        self.provide_database()
        self.log = open(self.workdir / f"gunicorn-{self.port}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.read_log()}")
            try:
                urllib.request.urlopen(self.url("/api/health"), timeout=1).read()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop(signal.SIGKILL)  # a server that never answered must not outlive the test
        raise RuntimeError(f"gunicorn did not answer: {self.read_log()}")

    def read_log(self) -> str:
        return (self.workdir / f"gunicorn-{self.port}.log").read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        if self.process:
            self.log.close()

    def __enter__(self) -> "GunicornServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
