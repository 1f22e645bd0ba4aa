"""OpenAPI entries of the fleet: ``GET /fleet`` and ``WS /ws/fleet`` (metrics_app/fleet/)."""
from __future__ import annotations

from apispec import APISpec
from marshmallow import Schema, fields

from ..fleet.filters import FleetFilterSchema


class FleetValueSchema(Schema):
    timestamp = fields.DateTime(required=True, metadata={"description": "The record's time (UTC, `Z`)"})
    age_sec = fields.Float(required=True, metadata={"description": "Seconds between the record's time and now"})
    stale = fields.Boolean(required=True, metadata={"description": "Older than the host's `stale_after_sec`"})


class FleetGpuSchema(Schema):
    gpuIndex = fields.Integer(allow_none=True, required=True, metadata={"description": "null: sent without one"})
    gpuId = fields.String(allow_none=True, required=True)
    gpuName = fields.String(allow_none=True, required=True)
    stale = fields.Boolean(required=True, metadata={"description": "Every metric of this GPU is stale"})
    metrics = fields.Dict(required=True, metadata={
        "description": "Per metric (utilization, memory, ...): FleetValueSchema plus that kind's fields, "
                       "e.g. gpuPercent and memoryPercent"})
    processes = fields.List(fields.Dict(), required=True, metadata={
        "description": "Processes reported within the stale bound: pid, usedMiB, timestamp, age_sec, stale"})


class FleetHostSchema(Schema):
    hostname = fields.String(allow_none=True, required=True, metadata={"description": "null: sent without one"})
    interval_sec = fields.Float(allow_none=True, required=True, metadata={
        "description": "This host's usual gap between two records of one metric; null until seen twice"})
    stale_after_sec = fields.Float(required=True, metadata={
        "description": "3 x interval_sec, at most FLEET_STALE_AFTER_SEC (that bound when the interval is unknown)"})
    stale = fields.Boolean(required=True)
    gpus = fields.List(fields.Nested(FleetGpuSchema), required=True)


class FleetStreamSchema(Schema):
    mode = fields.String(required=True, metadata={
        "description": "redis (across instances), workers (across this instance's gunicorn workers) or local "
                       "(this process)"})
    status = fields.String(required=True, metadata={
        "description": "ok; starting; degraded while Redis is unreachable or a sibling worker is not reading"})
    reason = fields.String(allow_none=True, required=True)


class FleetSchema(Schema):
    generated_at = fields.DateTime(required=True)
    hosts = fields.List(fields.Nested(FleetHostSchema), required=True)
    count = fields.Dict(required=True, metadata={"description": "hosts, gpus"})
    stream = fields.Nested(FleetStreamSchema, required=True)


def add_fleet_paths(spec: APISpec) -> None:
    fleet = ["fleet"]
    parameters = [{"in": "query", "schema": FleetFilterSchema}]
    bad = {"description": "Invalid or unknown query parameter; `details` names each one",
           "content": {"application/json": {"schema": "ErrorSchema"}}}
    spec.path(path="/fleet", operations={"get": {
        "tags": fleet, "summary": "Every host's GPUs: the latest value of each metric, its age and staleness",
        "description": "Answered from memory: the newest stored records when the process started, then what "
                       "this process committed since, and with REDIS_URL every instance, else every worker of "
                       "this gunicorn. Filters repeat: `?hostname=a&hostname=b&metric=power`.",
        "parameters": parameters,
        "responses": {"200": {"description": "Hosts by name, GPUs by index",
                              "content": {"application/json": {"schema": FleetSchema}}}, "400": bad}}})
    spec.path(path="/ws/fleet", operations={"get": {
        "tags": fleet, "summary": "WebSocket: the latest record per host, GPU and metric, then each committed one",
        "description": 'First message `{"type": "snapshot", "records": [...]}` (the latest record per key matching '
                       'the filter), then `{"type": "update", "records": [...]}` as records are committed by any '
                       "source (POST /metrics, WS /ws/ingest, tailers, recorder, import). Records have the shape "
                       "POST /metrics takes. A slow client gets the newest record per key when it catches up and "
                       "is dropped after WS_SEND_TIMEOUT_SEC blocked. Browsers pass the read token as `?token=`.",
        "parameters": parameters,
        "responses": {"101": {"description": "Switching protocols"}, "400": bad,
                      "426": {"description": "Not a WebSocket upgrade",
                              "content": {"application/json": {"schema": "ErrorSchema"}}}}}})
