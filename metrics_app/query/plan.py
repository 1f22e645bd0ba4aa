"""Which tier answers which part of an aggregate's range, and at what resolution.

Each instant of ``[lo, hi)`` is answered by the finest tier that still covers it (storage/tiers.py):
raw records from the raw cutoff on, per-minute rollups back to the minute tier's cutoff, per-hour
rollups before that. A range straddling cutoffs is split at them and the parts add up; the
response's ``resolution`` names the coarsest part. Inside a rollup tier a minute (an hour) counts
when it *starts* inside the range: its records cannot be told apart any more.

Within each part, whole coarser units are read from the coarser table (same answer, far fewer rows):
raw rows only at the partial minutes at the edges, minutes only at the partial hours, and hours for
the rest, as far as ``bucket`` allows (a unit must fall wholly inside one bucket). A bucket that is
not a multiple of a touched tier's resolution cannot be answered and is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

from ..storage.tiers import HOUR, MINUTE, RAW, RESOLUTION_MS, Cutoffs

#: Finest first.
LEVELS = (RAW, MINUTE, HOUR)
Bound = int | None


@dataclass(frozen=True, slots=True)
class Piece:
    """Read ``table`` (a tier name) for times in ``[lo, hi)`` (None: unbounded)."""

    table: str
    lo: Bound
    hi: Bound


class BucketTooFine(Exception):
    """The range reaches a tier coarser than the bucket: ``finest`` is the smallest bucket step that
    tier can answer; it holds what is older than ``before_ms``."""

    def __init__(self, finest: str, before_ms: int) -> None:
        super().__init__(finest)
        self.finest, self.before_ms = finest, before_ms


def _ceil(ts: Bound, unit: int) -> Bound:
    return None if ts is None else -(-ts // unit) * unit


def _floor(ts: Bound, unit: int) -> Bound:
    return None if ts is None else ts // unit * unit


def _before(a: Bound, b: Bound) -> bool:
    """``a < b`` where a None ``a`` is minus infinity and a None ``b`` plus infinity."""
    return a is None or b is None or a < b


def _cover(level: int, lo: Bound, hi: Bound, bucket_ms: int | None, pieces: list[Piece]) -> None:
    """``[lo, hi)`` from tier ``level`` at the edges and coarser tables for the whole units inside."""
    coarser = level + 1
    if coarser < len(LEVELS):
        unit = RESOLUTION_MS[LEVELS[coarser]]
        first, last = _ceil(lo, unit), _floor(hi, unit)
        if (bucket_ms is None or bucket_ms % unit == 0) and _before(first, last):
            if lo is not None and lo < first:
                pieces.append(Piece(LEVELS[level], lo, first))
            _cover(coarser, first, last, bucket_ms, pieces)
            if hi is not None and last < hi:
                pieces.append(Piece(LEVELS[level], last, hi))
            return
    pieces.append(Piece(LEVELS[level], lo, hi))


def plan(lo: Bound, hi: Bound, bucket_ms: int | None, cuts: Cutoffs,
         held: Collection[str]) -> tuple[list[Piece], str]:
    """The pieces to read for ``[lo, hi)`` and the resolution of the answer.

    ``held``: the rollup tiers holding data before the next finer tier's cutoff. With no ``start``,
    an older tier's part is only part of the range when it holds something (else an empty history
    would answer at hour resolution and refuse minute buckets).
    """
    parts = [(RAW, cuts.raw, None), (MINUTE, cuts.minute, cuts.raw), (HOUR, None, cuts.minute)]
    pieces: list[Piece] = []
    resolution = RAW
    for level, (tier, since, until) in enumerate(parts):
        a = since if since is not None and (lo is None or lo < since) else lo
        b = until if until is not None and (hi is None or hi > until) else hi
        if not _before(a, b):
            continue
        if level and lo is None and tier not in held:
            continue
        step = RESOLUTION_MS[tier]
        if bucket_ms is not None and bucket_ms % step:
            raise BucketTooFine(tier, until)
        _cover(level, a, b, bucket_ms, pieces)
        resolution = tier
    return pieces, resolution
