"""``/gpus``, ``/stats`` and ``/health``: answered from the summary tables (and the jobs' status),
never a scan of records.

``gpu_series`` (one row per GPU, counts and first/last seen) and ``series_totals`` (one row per GPU
and metric), both kept by ingest, stay tiny however long the history grows: these endpoints cost the
same at 10M records as at 10.
"""
from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db
from ..ingest.json_repair import repair_count
from ..storage.kinds import KINDS_BY_CODE
from ..job_status import failing
from ..jobs import jobs_report
from ..storage import write_queue
from ..storage.status import tailers_status
from ..storage.models import GpuSeries, SeriesTotal
from .aggregate import Partial
from .series import Series

_TOTALS = SeriesTotal.__table__.c
_SERIES = GpuSeries.__table__.c


def _field_stats(kind_fields: tuple[str, ...], row: Any) -> dict[str, Any]:
    stats = {}
    for index, field in enumerate(kind_fields, start=1):
        partial = Partial()
        partial.add(row[f"n{index}"], row[f"sum{index}"], row[f"min{index}"], row[f"max{index}"])
        stats[field] = {name: partial.value(name) for name in ("avg", "min", "max")}
    return stats


def gpu_stats(series: dict[int, Series], filtered: bool) -> list[dict[str, Any]]:
    """Per GPU and metric: record count and avg/min/max of every field, from the totals ingest keeps."""
    query = select(SeriesTotal.__table__)
    if filtered:
        query = query.where(_TOTALS.series_id.in_(list(series)))
    per_series: dict[int, dict[str, Any]] = {sid: {} for sid in series}
    for row in db.session.execute(query.order_by(_TOTALS.series_id, _TOTALS.metric)).mappings():
        if row["series_id"] not in per_series:
            continue  # a GPU first seen after the lookup: it is in the next answer
        kind = KINDS_BY_CODE[row["metric"]]
        per_series[row["series_id"]][kind.name] = {"count": int(row["n"]), "fields": _field_stats(kind.fields, row)}
    return [{**series[sid].describe(), "metrics": metrics} for sid, metrics in per_series.items()]


def health_report() -> tuple[dict[str, Any], int]:
    """Liveness of the history store and its background jobs. A database failure is a 503, never
    raised; a job whose latest run failed makes it ``degraded`` but still a 200 (reads are served)."""
    repaired = {"repairedJsonBodies": repair_count(current_app).bodies}
    try:
        db.session.execute(text("SELECT 1"))
        records, gpus = db.session.execute(
            select(func.coalesce(func.sum(_SERIES.record_count), 0), func.count())).one()
        jobs, tailers = jobs_report(), tailers_status()
    except SQLAlchemyError as exc:
        db.session.rollback()
        return {"status": "degraded", "database": {"reachable": False, "error": type(exc).__name__,
                                                   "reason": str(exc.orig or exc).splitlines()[0][:300]},
                "counts": None, "jobs": None, "tailers": None, "writer": write_queue().status(), **repaired}, 503
    fleet = current_app.extensions["fleet"].status()
    # A failing job or Redis down (the live fleet stream only: records are still stored) degrade, never 503.
    degraded = failing(jobs["runs"]) or fleet["status"] == "degraded"
    return {"status": "degraded" if degraded else "ok",
            "database": {"reachable": True, "dialect": db.engine.dialect.name},
            "counts": {"records": int(records), "gpus": int(gpus)}, "writer": write_queue().status(), "jobs": jobs,
            "tailers": tailers, "fleet": fleet, **repaired}, 200
