"""Response shapes of the read side, for the OpenAPI document only.

The views build plain dicts and serialize them with orjson (marshmallow dumping would cost more
than the query on a page of 500); these schemas describe those dicts and the tests check that real
responses match them, so the two cannot drift silently.
"""
from __future__ import annotations

from marshmallow import Schema, fields


class ErrorSchema(Schema):
    error = fields.String(required=True, metadata={"description": "Short machine-readable code"})
    message = fields.String(required=True)
    details = fields.Raw(allow_none=True, metadata={"description": "Per-parameter or per-record problems"})


class LabelsSchema(Schema):
    gpuIndex = fields.Integer(required=True)
    hostname = fields.String(allow_none=True)
    gpuId = fields.String(allow_none=True, metadata={"description": "GPU UUID"})
    gpuName = fields.String(allow_none=True)


class MetricItemSchema(LabelsSchema):
    id = fields.Integer(required=True)
    timestamp = fields.DateTime(required=True, metadata={"description": "UTC, millisecond precision, `Z` suffix"})
    metric = fields.String(required=True)
    payload = fields.Dict(required=True, metadata={
        "description": "The kind's fields (e.g. totalMiB/usedMiB/freeMiB for memory), plus pid for process"})


class MetricsPageSchema(Schema):
    items = fields.List(fields.Nested(MetricItemSchema), required=True)
    count = fields.Integer(required=True)
    next_cursor = fields.String(allow_none=True, required=True,
                                metadata={"description": "Pass as `cursor` for the next page; null on the last"})


class AggregateSchema(Schema):
    aggregate = fields.String(required=True)
    field = fields.String(allow_none=True, required=True)
    value = fields.Float(allow_none=True, required=True, metadata={"description": "null when no record matched"})
    count = fields.Integer(required=True, metadata={"description": "Records aggregated"})


class BucketSchema(Schema):
    start = fields.DateTime(required=True)
    value = fields.Float(allow_none=True, required=True)
    count = fields.Integer(required=True)


class BucketSeriesSchema(Schema):
    aggregate = fields.String(required=True)
    field = fields.String(allow_none=True, required=True)
    bucket = fields.String(required=True, metadata={"description": "Bucket size as requested, e.g. 5m"})
    buckets = fields.List(fields.Nested(BucketSchema), required=True,
                          metadata={"description": "Only buckets that hold records"})
    count = fields.Integer(required=True)


class GpuSchema(LabelsSchema):
    firstSeen = fields.DateTime(required=True)
    lastSeen = fields.DateTime(required=True)
    recordCount = fields.Integer(required=True)


class GpuListSchema(Schema):
    gpus = fields.List(fields.Nested(GpuSchema), required=True)
    count = fields.Integer(required=True)


class GpuStatsSchema(GpuSchema):
    metrics = fields.Dict(required=True, metadata={
        "description": 'Per metric: {"count": n, "fields": {field: {"avg", "min", "max"}}}'})


class StatsSchema(Schema):
    gpus = fields.List(fields.Nested(GpuStatsSchema), required=True)
    count = fields.Integer(required=True)


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={
        "description": "ok; degraded when the database fails (503) or the fleet stream does (200)"})
    database = fields.Dict(required=True, metadata={"description": "reachable, dialect; error and reason on failure"})
    counts = fields.Dict(allow_none=True, required=True, metadata={"description": "records, gpus"})
    tailers = fields.Raw(allow_none=True, required=True, metadata={"description": "JSONL tailers' last runs"})
    retention = fields.Raw(allow_none=True, required=True, metadata={"description": "Retention's last run"})
    jobs = fields.Dict(allow_none=True, metadata={
        "description": "leader: hostname:pid of the process running the background jobs now (the same from every "
                       "instance; null when none leads), lock: postgresql_advisory_lock or flock"})
    fleet = fields.Dict(metadata={"description": "The live fleet stream: mode (redis or local), status, reason"})
