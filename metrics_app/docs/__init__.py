"""API documentation served by the service itself: ``/openapi.json``, Swagger UI at ``/docs``, ReDoc
at ``/redoc``.

GPU clusters are often offline, so neither page loads anything from a CDN: Swagger UI's files come
from the ``swagger-ui-bundle`` package and ReDoc's standalone bundle from ``flask-openapi3-redoc``
(the one PyPI package found that ships it without pulling in Django or FastAPI; only its static file
is used, never its code).
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Response, current_app, render_template, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from ..auth_groups import OPEN, declare_blueprint
from ..jsonio import json_response
from .spec import spec_for

bp = declare_blueprint(Blueprint("docs", __name__, template_folder="templates"), OPEN)

SWAGGER_UI_DIR = Path(swagger_ui_path)
REDOC_DIR = Path(str(files("flask_openapi3_redoc") / "templates" / "redoc" / "js"))
#: Assets cache for a day: they change only when the package is upgraded.
_ASSET_MAX_AGE = 86_400


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return json_response(spec_for(current_app._get_current_object()))


@bp.get("/docs")
def swagger_ui() -> str:
    return render_template("docs/swagger.html")


@bp.get("/docs/assets/<path:name>")
def swagger_ui_asset(name: str) -> Response:
    return send_from_directory(SWAGGER_UI_DIR, name, max_age=_ASSET_MAX_AGE)


@bp.get("/redoc")
def redoc() -> str:
    return render_template("docs/redoc.html")


@bp.get("/redoc/redoc.standalone.js")
def redoc_bundle() -> Response:
    return send_from_directory(REDOC_DIR, "redoc.standalone.js", max_age=_ASSET_MAX_AGE)
