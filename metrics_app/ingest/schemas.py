"""marshmallow schemas for both vocabularies crawlers speak: the single source of truth for what a
valid record is. ``validation.py`` derives its per-record checks from these fields, so ranges live
only here.

- The crawler-ingest API's six record kinds, chosen by ``metric`` (``KIND_FIELDS``), with the
  variants its FastAPI backend accepts: no ``gpuIndex``, any of the three clocks, no ``pid``.
- The C++ crawler's own records, chosen by ``metricType`` (``CRAWLER_FIELDS``): ``gpu`` carries five
  kinds' values at once, ``process`` one process. ``CRAWLER_RECORDS`` says where each value lands.

Numbers are strict: JSON numbers only (no strings, no booleans), finite, within a sane range. Unknown
fields are errors (a misspelt field must not be silently dropped).
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, NamedTuple

from marshmallow import RAISE, Schema, ValidationError, fields, validates_schema
from marshmallow.validate import ContainsNoneOf, Length, OneOf, Range

from ..storage.kinds import KINDS
from ..storage.timefmt import EPOCH, MAX_MS, MIN_MS, ONE_MS

#: 1 PiB in MiB: far above any GPU, low enough to catch unit mistakes (bytes sent as MiB).
MAX_MIB = 1024.0 ** 3
MAX_MHZ = 100_000.0
MAX_WATTS = 100_000.0
MAX_GPU_INDEX = 65_535
MAX_PID = 2 ** 31 - 1
#: Process names: Windows paths reach 260 characters, longer with the long-path prefix.
MAX_NAME = 1024
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
    """ISO 8601 text to UTC epoch milliseconds; a timestamp without an offset is UTC. Not cached
    here: the fast path keeps its own (fastpath.EpochMs), the one place that parses in bulk."""
    if type(value) is not str:
        raise ValueError("Not a valid ISO 8601 timestamp string.")
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

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | float:
        try:
            return to_number(value, self.integer)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class UtcTimestamp(fields.Field):
    """ISO 8601 in, UTC epoch milliseconds out (the storage unit)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        try:
            return to_epoch_ms(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


def _label(longest: int) -> fields.String:
    return fields.String(allow_none=True, validate=[Length(max=longest), NO_NUL])


class LabelsSchema(Schema):
    """Fields every record of both vocabularies shares: when, and which GPU (hostname and gpuId or
    gpuIndex, all optional: a host's only GPU needs neither)."""

    class Meta:
        unknown = RAISE

    #: Fields of which a record must carry at least one (non-null) value; checked by the fast path too.
    any_of: tuple[str, ...] = ()

    timestamp = UtcTimestamp(required=True)
    gpuIndex = StrictNumber(integer=True, allow_none=True, validate=Range(0, MAX_GPU_INDEX))
    hostname = _label(255)
    gpuId = _label(128)
    gpuName = _label(255)

    @validates_schema
    def _any_of(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if self.any_of and all(data.get(name) is None for name in self.any_of):
            raise ValidationError(f"Needs at least one of {', '.join(self.any_of)}.", self.any_of[0])


class RecordSchema(LabelsSchema):
    """The crawler-ingest API's records: the kind is ``metric``."""

    metric = fields.String(required=True, validate=OneOf(sorted(KINDS)))


class CrawlerRecordSchema(LabelsSchema):
    """The C++ crawler's records: the kind is ``metricType``."""

    metricType = fields.String(required=True, validate=OneOf(("gpu", "process")))


def _number(low: float, high: float, integer: bool = False, required: bool = True) -> StrictNumber:
    return StrictNumber(integer=integer, required=required, allow_none=not required, validate=Range(low, high))


def _mib() -> StrictNumber:
    return _number(0, MAX_MIB)


def _mhz(required: bool = True) -> StrictNumber:
    return _number(0, MAX_MHZ, required=required)


def _pid() -> StrictNumber:
    return _number(0, MAX_PID, integer=True, required=False)


#: Each kind's own fields with their units' sane ranges (field names are the crawler-ingest API's); ``pid`` and
#: ``name`` are a process's own columns, every other field is a value column of its kind.
KIND_FIELDS: dict[str, dict[str, fields.Field]] = {
    "memory": {"totalMiB": _mib(), "usedMiB": _mib(), "freeMiB": _mib()},
    "utilization": {"gpuPercent": _number(0, 100), "memoryPercent": _number(0, 100)},
    "temperature": {"celsius": _number(-60, 200)},
    "power": {"watts": _number(0, MAX_WATTS)},
    "clocks": {"graphicsMHz": _mhz(False), "memoryMHz": _mhz(False), "smMHz": _mhz(False)},
    "process": {"pid": _pid(), "usedMiB": _mib(), "name": _label(MAX_NAME)},
}
ANY_OF = {"clocks": ("graphicsMHz", "memoryMHz", "smMHz")}

#: The C++ crawler's records: its field names, with the ranges of the fields they become.
CRAWLER_FIELDS: dict[str, dict[str, fields.Field]] = {
    "gpu": {"totalMemoryMiB": _mib(), "usedTotalMemoryMiB": _mib(), "freeMemoryMiB": _mib(),
            "gpuUtilPercent": _number(0, 100), "memUtilPercent": _number(0, 100),
            "temperatureCelsius": _number(-60, 200), "powerMilliwatts": _number(0, MAX_WATTS * 1000),
            "graphicsClockMHz": _mhz(), "memClockMHz": _mhz(), "smClockMHz": _mhz()},
    "process": {"pid": _pid(), "processName": _label(MAX_NAME), "processUsedMemoryMiB": _mib()},
}


class Target(NamedTuple):
    """Where a crawler field lands: a field of a kind, its value divided by ``divisor``."""

    kind: str
    field: str
    divisor: int = 1


#: metricType -> crawler field -> target. A ``gpu`` record becomes one record of each kind it names.
CRAWLER_RECORDS: dict[str, dict[str, Target]] = {
    "gpu": {"totalMemoryMiB": Target("memory", "totalMiB"), "usedTotalMemoryMiB": Target("memory", "usedMiB"),
            "freeMemoryMiB": Target("memory", "freeMiB"), "gpuUtilPercent": Target("utilization", "gpuPercent"),
            "memUtilPercent": Target("utilization", "memoryPercent"),
            "temperatureCelsius": Target("temperature", "celsius"),
            "powerMilliwatts": Target("power", "watts", 1000), "graphicsClockMHz": Target("clocks", "graphicsMHz"),
            "memClockMHz": Target("clocks", "memoryMHz"), "smClockMHz": Target("clocks", "smMHz")},
    "process": {"pid": Target("process", "pid"), "processName": Target("process", "name"),
                "processUsedMemoryMiB": Target("process", "usedMiB")},
}


def _schema(base: type[LabelsSchema], key: str, kind: str, own: dict[str, fields.Field], name: str,
            any_of: tuple[str, ...] = ()) -> type[LabelsSchema]:
    """One kind's schema; its ``key`` takes that kind only, so the OpenAPI document can tell kinds apart."""
    cls = base.from_dict({key: fields.String(required=True, validate=OneOf([kind])), **own}, name=name)
    cls.any_of = any_of
    return cls


#: One schema class per kind (named for the OpenAPI document) and one shared instance of each.
SCHEMA_CLASSES: dict[str, type[LabelsSchema]] = {
    kind: _schema(RecordSchema, "metric", kind, kind_fields, f"{kind.capitalize()}RecordSchema", ANY_OF.get(kind, ()))
    for kind, kind_fields in KIND_FIELDS.items()
}
CRAWLER_SCHEMA_CLASSES: dict[str, type[LabelsSchema]] = {
    kind: _schema(CrawlerRecordSchema, "metricType", kind, crawler_fields, f"Crawler{kind.capitalize()}RecordSchema")
    for kind, crawler_fields in CRAWLER_FIELDS.items()
}
SCHEMAS: dict[str, Schema] = {kind: cls() for kind, cls in SCHEMA_CLASSES.items()}
CRAWLER_SCHEMAS: dict[str, Schema] = {kind: cls() for kind, cls in CRAWLER_SCHEMA_CLASSES.items()}
BASE_SCHEMA = RecordSchema(unknown="exclude")
CRAWLER_BASE_SCHEMA = CrawlerRecordSchema(unknown="exclude")
