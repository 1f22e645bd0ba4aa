"""GPU and system metrics service: live hardware metrics and crawler history on one port.

Data flow, top-down from ``create_app``:
  sampling/ (one thread per hardware source) -> hub ring buffer -> live/ (HTTP, WebSocket, Prometheus)
  crawlers -> ingest/ (marshmallow; plain POST /metrics beneath Flask, lane.py) -> storage/ (one writer
              thread, group commit) -> query/ (history, /gpus, /stats)
  storage commits -> fleet/ (latest per host, GPU and metric; shared between workers and instances)
                  -> /fleet, /ws/fleet
  jobs.py (one leader worker): retention, JSONL tailers, recording/ (this host's GPUs into storage)
  auth.py guards ingest and reads by token; docs/ serves the OpenAPI spec, Swagger UI and ReDoc.
"""
from __future__ import annotations

import logging

from flask import Flask

from config import environment_config

from . import docs, errors, fleet, ingest, jobs, live, query, service, storage
from .auth import init_auth
from .ingest.lane import IngestLane
from .native import native_logging_locks
from .cli.agent import agent_cli
from .cli.gpus import gpus_cli
from .cli.metrics import metrics_cli
from .extensions import cors, hub, sock
from .websocket import init_websockets


def create_app(config_class: type | None = None) -> Flask:
    """Without ``config_class``: the validated environment (``config.ConfigError`` names a bad variable)."""
    app = Flask(__name__)
    app.config.from_object(config_class or environment_config())
    root = logging.getLogger()
    existing = set(root.handlers)
    logging.basicConfig(level=app.config["LOG_LEVEL"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    native_logging_locks(handler for handler in root.handlers if handler not in existing)

    origins = app.config["CORS_ORIGINS"]
    wildcard = "*" in origins
    cors.init_app(app, origins="*" if wildcard else origins, send_wildcard=wildcard)
    sock.init_app(app)
    hub.init_app(app)
    storage.init_app(app)
    jobs.init_app(app)
    fleet.init_app(app)
    # After the hooks above, which start the samplers and jobs on the first request outside gunicorn:
    # a first request refused here (401, a WebSocket turned away) must still start them.
    init_websockets(app)
    init_auth(app)

    errors.register_error_handlers(app)
    app.register_blueprint(service.bp)
    app.register_blueprint(live.bp)
    app.register_blueprint(ingest.bp)
    app.register_blueprint(query.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(fleet.bp)
    app.cli.add_command(gpus_cli)
    app.cli.add_command(metrics_cli)
    app.cli.add_command(agent_cli)
    app.wsgi_app = IngestLane(app)  # crawlers' plain POST /metrics skips Flask's machinery (ingest/lane.py)
    return app
