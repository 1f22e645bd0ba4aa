"""Routes of the read side; parsing lives in params, SQL in records/aggregate/summary."""
from __future__ import annotations

from flask import Response, request

from ..auth_groups import READ, open_route, requires
from ..jsonio import json_response
from . import bp
from .aggregate import aggregate
from .export import export_response
from .params import MetricsQuerySchema, SeriesFilterSchema, parse_args
from .records import list_records
from .series import find_series, has_series_filter
from .summary import gpu_stats, health_report

_METRICS_ARGS = MetricsQuerySchema()
_SERIES_ARGS = SeriesFilterSchema()


@bp.get("/metrics")
@requires(READ)
def query_metrics() -> Response:
    args = parse_args(_METRICS_ARGS, request.args)
    series = find_series(args)
    if "aggregate" in args:
        return json_response(aggregate(args, series))
    if args["format"] != "json":
        return export_response(args, series)
    return json_response(list_records(args, series))


@bp.get("/gpus")
@requires(READ)
def list_gpus() -> Response:
    series = find_series(parse_args(_SERIES_ARGS, request.args))
    return json_response({"gpus": [s.describe() for s in series.values()], "count": len(series)})


@bp.get("/stats")
@requires(READ)
def stats() -> Response:
    args = parse_args(_SERIES_ARGS, request.args)
    gpus = gpu_stats(find_series(args), has_series_filter(args))
    return json_response({"gpus": gpus, "count": len(gpus)})


@bp.get("/health")
@open_route
def health() -> Response:
    report, status = health_report()
    return json_response(report, status)
