"""Gunicorn settings for ``./start.sh``; README "Deployment" explains the choices and their measurements.

Every Flask-Sock connection occupies a handler for its whole life. The gevent worker makes that a
greenlet (a few tens of KB) instead of an OS thread, so thousands of live clients fit in one worker
without starving plain HTTP requests.
"""
import gc
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the gunicorn script's own folder comes first
from config import ConfigError, load_environment  # noqa: E402

# The master validates the whole environment before it forks a worker: a worker exiting on a bad
# value would only be forked again, so the one-line error must come from here.
try:
    _settings = load_environment()
except ConfigError as exc:
    raise SystemExit(str(exc)) from None

bind = f"0.0.0.0:{_settings['PORT']}"
worker_class = _settings["GUNICORN_WORKER_CLASS"]
workers = _settings["GUNICORN_WORKERS"]
threads = _settings["GUNICORN_THREADS"]
# Concurrent connections per worker (gevent / gthread): WebSocket clients (at most WS_MAX_CLIENTS,
# 15,000) plus HTTP requests, which keep the remaining 5,000 slots however many streams are open.
worker_connections = _settings["GUNICORN_WORKER_CONNECTIONS"]
backlog = 4096
# Each worker listens on a socket of its own (SO_REUSEPORT), so the kernel spreads connections evenly
# across workers. On one shared socket, whichever worker woke first accepted a whole burst: all 16
# keep-alive connections of a single-record benchmark landed on one worker (1,014 POSTs/s, the other
# worker idle; 1,277 with this), and each wave of 5,000 live clients split unevenly, so a worker's
# memory followed its share (README "Deployment").
reuse_port = True
# Live streams are long-lived; the arbiter's timeout is a heartbeat, not a request deadline in gevent.
timeout = _settings["GUNICORN_TIMEOUT"]
graceful_timeout = 5
keepalive = 5
accesslog = _settings["GUNICORN_ACCESS_LOG"] or None
errorlog = "-"
loglevel = _settings["LOG_LEVEL"].lower()
# No preload: each worker must create its app (and its sampler threads) after the fork.
preload_app = False


def on_starting(server):
    """Refuse a port another process listens on, as a plain bind would. With ``reuse_port`` the
    master binds nothing and each worker's bind would succeed beside another server of the same
    user, which would then silently take part of the connections. Retried as gunicorn retries its
    own bind (workers of a server just stopped may still hold the port); skipped for a master
    re-executed by USR2, whose workers share the port with the old ones on purpose."""
    if server.master_pid:
        return
    for address in server.cfg.address:
        if isinstance(address, tuple):  # not a unix: or fd:// bind
            _wait_for_free_port(*address[:2])


def _wait_for_free_port(host: str, port: int, tries: int = 5) -> None:
    for attempt in range(tries):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
            try:
                probe.bind((host, port))
                return
            except OSError as exc:
                reason = exc.strerror
        if attempt < tries - 1:
            time.sleep(1)
    raise SystemExit(f"cannot listen on {host}:{port} (PORT={port}): {reason}")


def post_worker_init(worker):
    """Start the hardware samplers and the background jobs once this worker has forked and loaded the app.

    Every worker samples for its own live clients; the jobs (retention, tailers, local recording)
    run only in the worker that holds the leader lock, which each worker keeps trying to take.
    """
    app = worker.wsgi
    # Garbage-collector pauses were the live stream's worst jitter: with 2,000 clients, gen-2 passes
    # stopped the worker for up to 200 ms and gen-0 passes for 10-15 ms, pushing the p99 gap between
    # messages to 1.28-1.31 s. Freezing everything loaded so far (imports, app) out of the collector
    # and collecting young objects less often brought it to 1.02 s (README "Deployment").
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    if worker.cfg.workers > 1:  # the fleet stream spans the sibling workers (README "Running a fleet")
        app.extensions["fleet"].share_with_workers(worker.ppid)
    if app.config["SAMPLERS_ENABLED"]:
        app.extensions["sampler_hub"].start()
    if app.config["BACKGROUND_JOBS_ENABLED"]:
        app.extensions["background_jobs"].start()


def worker_exit(server, worker):
    """On SIGTERM, after the last request has been answered: commit whatever is still queued for the
    writer thread (an acknowledged record is already committed; this saves the unanswered ones)."""
    app = getattr(worker, "wsgi", None)
    queue = getattr(app, "extensions", {}).get("write_queue")
    if queue is not None and not queue.close(timeout=graceful_timeout):
        server.log.warning("worker %s exited with writes still queued", worker.pid)
