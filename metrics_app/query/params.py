"""Query-string parsing for the read side: one marshmallow schema per endpoint, errors as 400s.

The schemas double as the OpenAPI description of the parameters, so the docs cannot drift from
what the views accept. Unknown parameters are rejected (400) rather than ignored: a typo such as
``gpu_index=0`` would otherwise silently return every GPU's history.
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Any, NamedTuple

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from werkzeug.datastructures import MultiDict

from ..errors import ApiError
from ..ingest.schemas import MAX_GPU_INDEX, NO_NUL, UtcTimestamp
from ..storage.kinds import KINDS
from ..storage.timefmt import MAX_MS, MIN_MS

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 500
AGGREGATES = ("avg", "min", "max", "count", "sum")
EXPORT_FORMATS = ("json", "csv", "ndjson")
_BUCKET_RE = re.compile(r"^([1-9][0-9]{0,6})(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Bucket(NamedTuple):
    text: str
    ms: int


class BucketSize(fields.String):
    """``60s``, ``5m``, ``1h``, ``1d``: parsed to milliseconds, the spelling kept for the response."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Bucket:
        text = super()._deserialize(value, attr, data, **kwargs)
        match = _BUCKET_RE.match(text)
        if match is None:
            raise ValidationError("must be a positive integer followed by s, m, h or d (e.g. 60s, 5m, 1h, 1d)")
        return Bucket(text, int(match.group(1)) * _UNIT_SECONDS[match.group(2)] * 1000)


class SeriesFilterSchema(Schema):
    """Which GPUs: every filter narrows the set of ``gpu_series`` rows a query reads."""

    class Meta:
        unknown = RAISE

    # Bounded like ingest's: a larger integer matches nothing and would overflow the database's INTEGER.
    gpuIndex = fields.Integer(strict=False, validate=validate.Range(min=0, max=MAX_GPU_INDEX),
                              metadata={"description": "GPU index on its host"})
    hostname = fields.String(validate=NO_NUL, metadata={"description": "Crawler host name (exact match)"})
    gpuId = fields.String(validate=NO_NUL, metadata={"description": "GPU UUID (exact match)"})
    gpuName = fields.String(validate=NO_NUL, metadata={"description": "GPU model name (exact match)"})


class MetricsQuerySchema(SeriesFilterSchema):
    """Parameters of ``GET /metrics``: a filtered, keyset-paged listing, or an aggregate over it."""

    metric = fields.String(validate=validate.OneOf(tuple(KINDS)), metadata={"description": "Record kind"})
    start = UtcTimestamp(metadata={"description": "Inclusive lower bound, ISO 8601 (no offset = UTC)"})
    end = UtcTimestamp(metadata={"description": "Inclusive upper bound, ISO 8601 (no offset = UTC)"})
    limit = fields.Integer(strict=False, validate=validate.Range(min=1, max=MAX_LIMIT),
                           metadata={"description": f"Page size, default {DEFAULT_LIMIT}, max {MAX_LIMIT}"})
    order = fields.String(validate=validate.OneOf(("asc", "desc")), load_default="asc",
                          metadata={"description": "By timestamp (ties by GPU, metric and pid)"})
    cursor = fields.String(metadata={"description": "Opaque `next_cursor` of the previous page"})
    aggregate = fields.String(validate=validate.OneOf(AGGREGATES),
                              metadata={"description": "Aggregate instead of listing; needs `metric`"})
    field = fields.String(metadata={"description": "Field of the metric to aggregate (not needed for count)"})
    bucket = BucketSize(metadata={"description": "With `aggregate`: one value per time bucket (60s, 5m, 1h, 1d…)"})
    format = fields.String(validate=validate.OneOf(EXPORT_FORMATS), load_default="json",
                           metadata={"description": "`csv` or `ndjson`: stream every matching record as a file "
                                                    "download (no `limit`/`cursor`/`aggregate`)"})

    @validates_schema
    def _export_lists_everything(self, data: dict[str, Any], **_kwargs: Any) -> None:
        """An export is every matching record; paging or aggregating it has no meaning."""
        if data.get("format", "json") == "json":
            return
        for name in ("limit", "cursor", "aggregate"):
            if name in data:
                raise ValidationError(f"format={data['format']} streams every matching record; "
                                      f"drop {name} and narrow with filters, start and end", name)

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "start" in data and "end" in data and data["start"] > data["end"]:
            raise ValidationError("start must not be after end", "start")
        if "aggregate" not in data:
            for name in ("field", "bucket"):
                if name in data:
                    raise ValidationError(f"{name} needs aggregate=avg|min|max|count|sum", name)
            return
        for name in ("cursor", "limit"):
            if name in data:
                raise ValidationError(f"{name} applies to record listings, not to aggregates", name)
        if "metric" not in data:
            raise ValidationError("aggregate needs metric (fields are per metric)", "metric")
        allowed = KINDS[data["metric"]].fields
        if data["aggregate"] != "count" and "field" not in data:
            raise ValidationError(f"aggregate={data['aggregate']} needs field, one of {list(allowed)}", "field")
        if "field" in data and data["field"] not in allowed:
            raise ValidationError(
                f"unknown field {data['field']!r} for metric {data['metric']!r}; allowed: {list(allowed)}", "field")


def parse_args(schema: Schema, args: MultiDict[str, str]) -> dict[str, Any]:
    """Validate a query string; every problem becomes one 400 naming the parameters at fault."""
    repeated = sorted(name for name, values in args.lists() if len(values) > 1)
    if repeated:
        raise ApiError(400, "invalid_parameter", "parameters may be given only once",
                       {name: ["given more than once"] for name in repeated})
    try:
        return schema.load(args.to_dict())
    except ValidationError as exc:
        details = exc.normalized_messages()
        names = ", ".join(sorted(details))
        raise ApiError(400, "invalid_parameter", f"invalid query parameter(s): {names}", details) from exc


#: A listing position: the last row's (ts_ms, series_id, metric, pid), the records' sort order.
Position = tuple[int, int, int, int]


def encode_cursor(order: str, position: Position) -> str:
    """Opaque to clients; carries the order so a cursor cannot be replayed against the other one."""
    return base64.urlsafe_b64encode(":".join([order, *map(str, position)]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, order: str) -> Position:
    """A cursor's position must be one a stored row can have: any other shape (such as one issued
    before records were keyed by time and GPU) or integer is no cursor this service issued, and one
    beyond the key columns' types would fail the query (a 500)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        cursor_order, *numbers = raw.split(":")
        ts_ms, series_id, metric, pid = (int(n) for n in numbers)
        if not MIN_MS <= ts_ms <= MAX_MS or max(abs(series_id), abs(pid)) >= 2 ** 31 or abs(metric) >= 2 ** 15:
            raise ValueError("beyond the key columns' types")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "invalid_parameter", "cursor is not one this service issued",
                       {"cursor": ["malformed"]}) from exc
    if cursor_order != order:
        raise ApiError(400, "invalid_parameter", f"cursor was issued for order={cursor_order}",
                       {"cursor": [f"use order={cursor_order} with this cursor"]})
    return ts_ms, series_id, metric, pid
