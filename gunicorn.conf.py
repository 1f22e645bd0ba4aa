"""Gunicorn settings for ``./start.sh``; README "Deployment" explains the choices and their measurements.

Every Flask-Sock connection occupies a handler for its whole life. The gevent worker makes that a
greenlet (a few tens of KB) instead of an OS thread, so thousands of live clients fit in one worker
without starving plain HTTP requests.
"""
import gc
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
workers = int(os.environ.get("GUNICORN_WORKERS", "1"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# Concurrent connections per worker (gevent / gthread): WebSocket clients (at most WS_MAX_CLIENTS,
# 15,000) plus HTTP requests, which keep the remaining 5,000 slots however many streams are open.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "20000"))
backlog = 4096
# Live streams are long-lived; the arbiter's timeout is a heartbeat, not a request deadline in gevent.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 5
keepalive = 5
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# No preload: each worker must create its app (and its sampler threads) after the fork.
preload_app = False


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
