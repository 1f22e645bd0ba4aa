"""``GET /``: what this service is and where its endpoints are."""
from __future__ import annotations

import platform

from flask import Blueprint, Response, current_app, render_template, request

from .auth_groups import open_route
from .extensions import hub
from .jsonio import json_response

bp = Blueprint("service", __name__)

SERVICE_NAME = "gpu-metrics-service"
VERSION = "0.1.0"


def _endpoints() -> list[str]:
    paths = {rule.rule for rule in current_app.url_map.iter_rules() if rule.endpoint != "static"}
    return sorted(paths)


@bp.get("/")
@open_route
def service_info() -> Response | str:
    """Browsers (``Accept: text/html``) get the dashboard; API clients and curl get the JSON."""
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        return render_template("dashboard.html", hostname=platform.node())
    state = hub.state()
    return json_response({
        "service": SERVICE_NAME,
        "version": VERSION,
        "status": "running",
        "endpoints": _endpoints(),
        "nvidia_available": state.vendor_available("NVIDIA"),
        "rocm_available": state.vendor_available("AMD"),
        "platform": platform.system(),
    })
