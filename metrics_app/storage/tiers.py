"""How long each resolution of the history is kept, and where each tier's coverage starts now.

Three tiers: raw records for ``METRICS_RETENTION_HOURS``, per-minute rollups for
``ROLLUP_1M_RETENTION_DAYS``, per-hour rollups for ``ROLLUP_1H_RETENTION_DAYS``. Every cutoff is a
whole unit of the next coarser tier (raw at a minute, the minute tier at an hour), so a minute is
either wholly raw-backed or not, and an hour wholly minute-backed or not: a coarser row never counts
a record that a finer one lost, and queries can split a range at the cutoffs without partial units.

``METRICS_RETENTION_HOURS=0`` keeps records forever, and so every tier: all cutoffs are ``FOREVER``
(no record is old enough for a rollup-only tier, and retention deletes nothing).

The writer runs on a thread without an app context and only sees its connection, so the settings
are kept per engine (bound by ``storage.init_app``), like the engine's writer lock.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping


MINUTE_MS = 60_000
HOUR_MS = 3_600_000
#: Tier names as queries report them (``"resolution"``), finest first.
RAW, MINUTE, HOUR = "raw", "1m", "1h"
RESOLUTION_MS = {RAW: 1, MINUTE: MINUTE_MS, HOUR: HOUR_MS}
#: A cutoff before any storable time (year 0001 is -62,135,596,800,000 ms), a whole hour.
FOREVER = -(1 << 62) // HOUR_MS * HOUR_MS


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """The oldest instant each tier still covers (inclusive), UTC ms."""

    raw: int
    minute: int
    hour: int


@dataclass(frozen=True, slots=True)
class Retention:
    raw_hours: float
    minute_days: float
    hour_days: float

    def __post_init__(self) -> None:
        if self.raw_hours and not 0 < self.raw_hours <= self.minute_days * 24 <= self.hour_days * 24:
            raise ValueError("retention must be positive and grow with each tier: METRICS_RETENTION_HOURS "
                             "<= ROLLUP_1M_RETENTION_DAYS * 24 <= ROLLUP_1H_RETENTION_DAYS * 24, got "
                             f"{self.raw_hours:g} h, {self.minute_days:g} d, {self.hour_days:g} d")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Retention":
        return cls(float(config["METRICS_RETENTION_HOURS"]), float(config["ROLLUP_1M_RETENTION_DAYS"]),
                   float(config["ROLLUP_1H_RETENTION_DAYS"]))

    def cutoffs(self, now_ms: int | None = None) -> Cutoffs:
        if not self.raw_hours:
            return Cutoffs(FOREVER, FOREVER, FOREVER)
        now = int(time.time() * 1000) if now_ms is None else now_ms
        raw = _floor(now - int(self.raw_hours * HOUR_MS), MINUTE_MS)
        minute = _floor(now - int(self.minute_days * 24 * HOUR_MS), HOUR_MS)
        hour = _floor(now - int(self.hour_days * 24 * HOUR_MS), HOUR_MS)
        return Cutoffs(raw, minute, hour)


def _floor(ts_ms: int, unit_ms: int) -> int:
    return ts_ms - ts_ms % unit_ms
