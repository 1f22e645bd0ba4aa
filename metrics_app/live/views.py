"""One-shot HTTP views over the hub's ring buffer; none of them reads hardware."""
from __future__ import annotations

import math

from flask import Response, current_app, render_template, request
from sqlalchemy.exc import SQLAlchemyError

from ..auth_groups import READ, open_route, requires
from ..errors import ApiError, error_response
from ..extensions import db, hub
from ..job_status import failing
from ..jobs import jobs_report
from ..jsonio import json_response, raw_json_response
from ..websocket import EXTENSION_KEY as WEBSOCKET_SLOTS, websocket_required
from . import bp


@bp.get("/api/metrics")
@requires(READ)
def latest_metrics() -> Response:
    frame = hub.state().first_frame()
    if frame is None:
        return error_response(503, "no_sample_yet", "The sampler has not produced a snapshot yet; retry shortly.")
    return raw_json_response(frame.text)


@bp.get("/api/metrics/history")
@requires(READ)
def metrics_history() -> Response:
    limit = current_app.config["HISTORY_SECONDS"]
    raw = request.args.get("seconds", str(limit))
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ApiError(400, "invalid_parameter", "seconds must be a positive number",
                       {"seconds": raw, "max": limit})
    frames = hub.state().history(min(seconds, limit))
    return raw_json_response("[" + ",".join(f.text for f in frames) + "]")


@bp.get("/api/health")
@open_route
def health() -> Response:
    """The samplers' health, and the background jobs': one that keeps failing makes it ``degraded``.
    The jobs' record is in the database; without one, ``jobs`` is null and the samplers decide."""
    report = hub.state().health()
    slots = current_app.extensions[WEBSOCKET_SLOTS]
    report["websocket_clients"] = {"open": slots.open, "limit": slots.limit}
    try:
        report["jobs"] = jobs_report()
    except SQLAlchemyError:
        db.session.rollback()
        report["jobs"] = None
    if report["status"] == "healthy" and report["jobs"] and failing(report["jobs"]["runs"]):
        report["status"] = "degraded"
    return json_response(report, 503 if report["status"] == "unhealthy" else 200)


@bp.get("/ws/metrics")
@requires(READ)
def metrics_stream_plain_get() -> Response:
    return websocket_required("/api/metrics", "a one-time fetch")


@bp.get("/test_websocket.html")
@open_route
def websocket_test_page() -> str:
    return render_template("test_websocket.html")
