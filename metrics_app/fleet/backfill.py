"""Filling a fresh fleet table from the database, so a restarted instance (or a worker that has not
stored anything itself) answers ``GET /fleet`` and new ``/ws/fleet`` clients at once.

Per metric, the newest record of every GPU seen within the stale bound: one seek per GPU for the
newest time on the clustered natural key's ``series_id, metric, ts_ms`` prefix, never a scan of
the records. Processes are left out: which of a GPU's pids are still running cannot be told
from the newest row, and the next report brings them.
"""
from __future__ import annotations

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Engine

from ..storage.kinds import KINDS
from ..storage.models import GpuSeries, Record
from ..storage.writer import Row

_S = GpuSeries.__table__.c
_R = Record.__table__.c
_NEWEST = Record.__table__.alias("newest").c  # its own alias: otherwise correlated with the outer records


def latest_rows(engine: Engine, since_ms: int) -> list[Row]:
    rows: list[Row] = []
    with engine.connect() as conn:
        for kind in KINDS.values():
            if kind.name == "process":
                continue
            newest = (select(func.max(_NEWEST.ts_ms))
                      .where(_NEWEST.series_id == _S.id, _NEWEST.metric == kind.code).scalar_subquery())
            query = (select(_S.hostname, _S.gpu_index, _S.gpu_uuid, _S.gpu_name, _R.metric, _R.ts_ms, _R.pid,
                            _R.v1, _R.v2, _R.v3)
                     .select_from(GpuSeries.__table__)
                     .join(Record.__table__, and_(_R.series_id == _S.id, _R.metric == kind.code, _R.ts_ms == newest))
                     .where(_S.last_ts_ms >= since_ms))
            rows.extend(Row(*found) for found in conn.execute(query))
    return rows
