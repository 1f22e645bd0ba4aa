"""The crawler-ingest API's six record kinds and how their fields map onto the typed value columns.

Rows store a kind as a small integer and up to three numeric fields in ``v1..v3`` (plus ``pid`` for
processes), so a record costs a few dozen bytes instead of a JSON blob; the crawler-ingest API's payload shape is
rebuilt on the way out from this table.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    code: int
    #: Field names in the order of the value columns v1, v2, v3.
    fields: tuple[str, ...]

    def column(self, field: str) -> str:
        """The value column holding ``field`` (``usedMiB`` -> ``v2`` for memory)."""
        return f"v{self.fields.index(field) + 1}"


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("memory", 1, ("totalMiB", "usedMiB", "freeMiB")),
    Kind("utilization", 2, ("gpuPercent", "memoryPercent")),
    Kind("temperature", 3, ("celsius",)),
    Kind("power", 4, ("watts",)),
    Kind("clocks", 5, ("graphicsMHz", "memoryMHz", "smMHz")),
    Kind("process", 6, ("usedMiB",)),
)}
KINDS_BY_CODE: dict[int, Kind] = {k.code: k for k in KINDS.values()}

#: ``pid`` column value for records that are not about a process: key columns are NOT NULL because
#: SQL treats NULLs as distinct, which would let duplicates past the unique constraint.
NO_PID = -1


def missing_pid(name: str | None) -> int:
    """The ``pid`` column of a process record sent without a pid (the FastAPI backend allowed that):
    negative like NO_PID, so it reads back as null, but distinct per process name, so two such
    processes of one instant are not taken for one record by the natural key."""
    return -2 - (zlib.crc32(name.encode("utf-8", "surrogatepass")) & 0x3FFF_FFFF) if name else NO_PID
