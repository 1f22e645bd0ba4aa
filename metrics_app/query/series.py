"""The GPU list (``gpu_series``) as the entry point of every read.

Label filters (hostname, gpuIndex, gpuId, gpuName) are resolved against this small table first, so the big
``records`` and ``rollups_1m`` tables are only ever filtered by ``series_id`` — the leading column of
their indexes — and never joined.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ..extensions import db
from ..storage.models import GpuSeries
from ..storage.timefmt import iso_utc


@dataclass(frozen=True, slots=True)
class Series:
    id: int
    hostname: str
    gpu_index: int | None
    gpu_uuid: str | None
    gpu_name: str | None
    first_ts_ms: int
    last_ts_ms: int
    record_count: int

    def labels(self) -> dict[str, Any]:
        """Absent hostnames are stored as '' (key columns are NOT NULL); clients see null. So does a
        GPU whose crawler never sent its index (or UUID)."""
        return {"gpuIndex": self.gpu_index, "hostname": self.hostname or None,
                "gpuId": self.gpu_uuid, "gpuName": self.gpu_name}

    def describe(self) -> dict[str, Any]:
        return {**self.labels(), "firstSeen": iso_utc(self.first_ts_ms),
                "lastSeen": iso_utc(self.last_ts_ms), "recordCount": self.record_count}


#: Query parameter -> ``gpu_series`` column; every match is exact.
_FILTERS = {"gpuIndex": "gpu_index", "hostname": "hostname", "gpuId": "gpu_uuid", "gpuName": "gpu_name"}


def has_series_filter(args: dict[str, Any]) -> bool:
    return any(name in args for name in _FILTERS)


def find_series(args: dict[str, Any]) -> dict[int, Series]:
    """Every GPU matching the label filters in ``args`` (all GPUs when there are none), by id."""
    table = GpuSeries.__table__
    query = select(table.c.id, table.c.hostname, table.c.gpu_index, table.c.gpu_uuid, table.c.gpu_name,
                   table.c.first_ts_ms, table.c.last_ts_ms, table.c.record_count)
    for name, column in _FILTERS.items():
        if name in args:
            query = query.where(table.c[column] == args[name])
    # Spelled out so SQLite (NULLs first) and PostgreSQL (NULLs last) list GPUs in the same order.
    query = query.order_by(table.c.hostname, table.c.gpu_index.is_(None), table.c.gpu_index, table.c.gpu_uuid,
                           table.c.id)
    return {row.id: Series(*row) for row in db.session.execute(query)}
