"""marshmallow schemas for the seed's six record kinds: the single source of truth for what a valid
record is. ``fastpath.py`` derives its per-record checks from these fields, so ranges live only here.

Numbers are strict: JSON numbers only (no strings, no booleans), finite, within a sane range. Unknown
fields are errors (a misspelt field must not be silently dropped).
"""
from __future__ import annotations

import math
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields
from marshmallow.validate import ContainsNoneOf, Length, OneOf, Range

from ..storage.kinds import KINDS
from ..storage.timefmt import MAX_MS, MIN_MS

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_MS = timedelta(milliseconds=1)
#: 1 PiB in MiB: far above any GPU, low enough to catch unit mistakes (bytes sent as MiB).
MAX_MIB = 1024.0 ** 3
MAX_MHZ = 100_000.0
MAX_WATTS = 100_000.0
MAX_GPU_INDEX = 65_535
MAX_PID = 2 ** 31 - 1
#: PostgreSQL text cannot hold NUL, so a label with one would fail the INSERT (a 500); refused up front
#: on every database alike. Also used by the query filters on the same labels.
NO_NUL = ContainsNoneOf(["\x00"], error="Must not contain NUL (\\u0000) characters.")


def to_number(value: Any, integer: bool) -> int | float:
    """The JSON number ``value`` as int or float; ValueError for anything else (bool, str, inf...)."""
    if type(value) is bool:
        raise ValueError(f"Not a valid {'integer' if integer else 'number'} (booleans are rejected).")
    if type(value) is int:
        if integer:
            return value
        try:
            return float(value)
        except OverflowError:
            raise ValueError("Number out of range.") from None
    if type(value) is float:
        if not math.isfinite(value):
            raise ValueError("Number must be finite.")
        if integer:
            raise ValueError("Not a valid integer.")
        return value
    raise ValueError("Not a valid integer." if integer else "Not a valid number.")


def to_epoch_ms(value: Any) -> int:
    """ISO 8601 text to UTC epoch milliseconds; a timestamp without an offset is UTC."""
    if type(value) is not str:
        raise ValueError("Not a valid ISO 8601 timestamp string.")
    return _parse_iso(value)


@lru_cache(maxsize=16_384)
def _parse_iso(value: str) -> int:
    """Cached: a batch from one crawler repeats each timestamp for every GPU and kind."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"Not a valid ISO 8601 timestamp: {value[:64]!r}.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    ms = (parsed - EPOCH) // ONE_MS
    if not MIN_MS <= ms <= MAX_MS:  # e.g. 9999-12-31T23:59:59-14:00: no year 10000 can be read back out
        raise ValueError(f"Timestamp {value[:64]!r} is outside years 0001-9999 in UTC.")
    return ms


class StrictNumber(fields.Field):
    """A JSON number (int or float, never bool or string), finite; ``integer=True`` for ints only."""

    def __init__(self, *, integer: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.integer = integer

    def convert(self, value: Any) -> int | float:
        return to_number(value, self.integer)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | float:
        try:
            return self.convert(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class UtcTimestamp(fields.Field):
    """ISO 8601 in, UTC epoch milliseconds out (the storage unit)."""

    def convert(self, value: Any) -> int:
        return to_epoch_ms(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        try:
            return self.convert(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class RecordSchema(Schema):
    """Fields every kind shares: when, which GPU, and the optional labels real crawlers send."""

    class Meta:
        unknown = RAISE

    timestamp = UtcTimestamp(required=True)
    gpuIndex = StrictNumber(integer=True, required=True, validate=Range(0, MAX_GPU_INDEX))
    metric = fields.String(required=True, validate=OneOf(sorted(KINDS)))
    hostname = fields.String(allow_none=True, validate=[Length(max=255), NO_NUL])
    gpuId = fields.String(allow_none=True, validate=[Length(max=128), NO_NUL])
    gpuName = fields.String(allow_none=True, validate=[Length(max=255), NO_NUL])


def _number(low: float, high: float, integer: bool = False) -> StrictNumber:
    return StrictNumber(integer=integer, required=True, validate=Range(low, high))


#: Each kind's own fields with their units' sane ranges (field names are the seed's).
KIND_FIELDS: dict[str, dict[str, StrictNumber]] = {
    "memory": {"totalMiB": _number(0, MAX_MIB), "usedMiB": _number(0, MAX_MIB), "freeMiB": _number(0, MAX_MIB)},
    "utilization": {"gpuPercent": _number(0, 100), "memoryPercent": _number(0, 100)},
    "temperature": {"celsius": _number(-60, 200)},
    "power": {"watts": _number(0, MAX_WATTS)},
    "clocks": {"graphicsMHz": _number(0, MAX_MHZ), "memoryMHz": _number(0, MAX_MHZ)},
    "process": {"pid": _number(0, MAX_PID, integer=True), "usedMiB": _number(0, MAX_MIB)},
}

#: One schema class per kind (named for the OpenAPI document) and one shared instance of each.
SCHEMA_CLASSES: dict[str, type[Schema]] = {
    kind: RecordSchema.from_dict(kind_fields, name=f"{kind.capitalize()}RecordSchema")
    for kind, kind_fields in KIND_FIELDS.items()
}
SCHEMAS: dict[str, Schema] = {kind: cls() for kind, cls in SCHEMA_CLASSES.items()}
BASE_SCHEMA = RecordSchema(unknown="exclude")
