"""Path entries of the OpenAPI document, one function per area of the service.

Written by hand rather than introspected from the URL map: each entry says what a caller needs
(parameters, shapes, error cases) and the tests check that every served route is documented.
"""
from __future__ import annotations

from typing import Any

from apispec import APISpec

from ..query.params import MetricsQuerySchema, SeriesFilterSchema


def _json(schema: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json("ErrorSchema", description)


def _with_exports(response: dict[str, Any]) -> dict[str, Any]:
    """``format=csv`` / ``ndjson`` (query/export.py): a CSV table, or one listing item per line."""
    response["content"]["text/csv"] = {"schema": {"type": "string"}}
    response["content"]["application/x-ndjson"] = {"schema": {"type": "string"}}
    return response


def _bad_parameters() -> dict[str, Any]:
    return _error("Invalid, unknown or repeated query parameter; `details` names each one")


def add_live_paths(spec: APISpec) -> None:
    """The live-metrics API: the service's own hardware, sampled in-process."""
    live = ["live"]
    spec.path(path="/", operations={"get": {
        "tags": ["service"], "summary": "Service name, version, endpoints and GPU vendors found",
        "responses": {"200": _json({"type": "object"}, "Service description")}}})
    spec.path(path="/api/metrics", operations={"get": {
        "tags": live, "summary": "Latest snapshot of this host's CPU, memory and GPUs",
        "responses": {"200": _json("SnapshotSchema", "The latest snapshot"),
                      "503": _error("The sampler has not produced a snapshot yet")}}})
    spec.path(path="/api/metrics/history", operations={"get": {
        "tags": live, "summary": "Snapshots of the last seconds, oldest first",
        "parameters": [{"in": "query", "name": "seconds", "schema": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                        "description": "How far back; capped at HISTORY_SECONDS"}],
        "responses": {"200": _json({"type": "array", "items": {"$ref": "#/components/schemas/SnapshotSchema"}},
                                   "Snapshots"),
                      "400": _error("seconds is not a positive number")}}})
    spec.path(path="/api/health", operations={"get": {
        "tags": live, "summary": "Health of the samplers (one entry per hardware source)",
        "responses": {"200": _json({"type": "object"}, "Healthy or degraded"),
                      "503": _json({"type": "object"}, "Unhealthy")}}})
    spec.path(path="/ws/metrics", operations={"get": {
        "tags": live, "summary": "WebSocket: one snapshot per tick",
        "description": "Connect with ws:// or wss://; every frame is the JSON of GET /api/metrics. "
                       "A client that falls behind skips stale frames. A plain HTTP GET is answered 426.",
        "responses": {"101": {"description": "Switching protocols"},
                      "426": _error("Not a WebSocket upgrade")}}})


def _vocabulary(key: str, schemas: dict[str, str]) -> dict[str, Any]:
    refs = {kind: f"#/components/schemas/{name}" for kind, name in schemas.items()}
    return {"oneOf": [{"$ref": ref} for ref in refs.values()], "discriminator": {"propertyName": key, "mapping": refs}}


def add_ingest_paths(spec: APISpec, record_schemas: dict[str, str], crawler_schemas: dict[str, str]) -> None:
    """The crawler-ingest API, write side: crawlers on other machines send records (kind -> schema name, for the
    crawler-ingest API's records by ``metric`` and the C++ crawler's by ``metricType``)."""
    record = {"oneOf": [_vocabulary("metric", record_schemas), _vocabulary("metricType", crawler_schemas)]}
    spec.path(path="/metrics", operations={"post": {
        "tags": ["history"], "summary": "Store one record or an array of records (all or nothing)",
        "description": "The schema is chosen by `metric`, or for the C++ crawler's records by `metricType` "
                       "(a `gpu` record is stored as the memory, utilization, temperature, power and clocks "
                       "records it carries; counts in the answer are of stored records). A GPU is identified "
                       "by hostname and gpuId, else hostname and gpuIndex, else by hostname alone. A body "
                       "that is invalid JSON only because backslashes in strings start no escape (Windows "
                       "paths written unescaped) is stored with those backslashes doubled. Sending the same "
                       "records again stores nothing twice (natural key: GPU, metric, timestamp, pid), so "
                       "retries are safe.",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"oneOf": [record, {"type": "array", "items": record}]}}}},
        "responses": {"201": _json({"type": "object", "properties": {
                          "saved": {"type": "integer"}, "duplicates": {"type": "integer"},
                          "received": {"type": "integer"}, "rollupOnly": {"type": "integer"},
                          "expired": {"type": "integer"}}},
                                   "Stored; `saved` counts new records; `rollupOnly` (only when non-zero) those older "
                                   "than raw retention, kept only in the rollup tiers still covering them; `expired` "
                                   "(only when non-zero) those older than every tier, dropped"),
                      "400": _error("Body is not JSON, or not an object or array"),
                      "413": _error("Body over MAX_CONTENT_LENGTH or more than MAX_BATCH records"),
                      "422": _error("Invalid records: `details` lists every problem by index and field")}}})
    spec.path(path="/ws/ingest", operations={"get": {
        "tags": ["history"], "summary": "WebSocket: stream records like POST /metrics",
        "description": 'Each message (object or array) is answered {"type": "ack", "saved": n} or '
                       '{"type": "error", ...}. A plain HTTP GET is answered 426.',
        "responses": {"101": {"description": "Switching protocols"},
                      "426": _error("Not a WebSocket upgrade")}}})


def add_query_paths(spec: APISpec) -> None:
    """The crawler-ingest API, read side: history listings, aggregates, GPUs, statistics, health."""
    history = ["history"]
    spec.path(path="/metrics", operations={"get": {
        "tags": history, "summary": "List records (keyset-paged) or aggregate them",
        "description": "Without `aggregate`: a page of records ordered by timestamp; follow `next_cursor`. "
                       "With `aggregate` (and `metric`, `field`): one value, or one per `bucket`. "
                       "Examples: `?gpuIndex=0&metric=memory&start=2025-01-01T00:00:00Z&end=2025-01-01T01:00:00Z`, "
                       "`?metric=utilization&aggregate=avg&field=gpuPercent`, "
                       "`?metric=power&aggregate=max&field=watts&bucket=5m`.",
        "parameters": [{"in": "query", "schema": MetricsQuerySchema}],
        "responses": {"200": _with_exports(_json({"oneOf": ["MetricsPageSchema", "AggregateSchema",
                                                            "BucketSeriesSchema"]},
                                                 "A page of records, an aggregate, or a bucketed aggregate; "
                                                 "with `format=csv|ndjson`, every matching record as a download")),
                      "400": _bad_parameters()}}})
    spec.path(path="/gpus", operations={"get": {
        "tags": history, "summary": "Every GPU that has sent records, with first/last seen and record count",
        "parameters": [{"in": "query", "schema": SeriesFilterSchema}],
        "responses": {"200": _json("GpuListSchema", "GPUs by hostname and index"), "400": _bad_parameters()}}})
    spec.path(path="/stats", operations={"get": {
        "tags": history, "summary": "Per GPU: record count and avg/min/max of each field, per metric",
        "parameters": [{"in": "query", "schema": SeriesFilterSchema}],
        "responses": {"200": _json("StatsSchema", "Statistics per GPU"), "400": _bad_parameters()}}})
    spec.path(path="/health", operations={"get": {
        "tags": history, "summary": "History store health: database reachable, counts, background jobs",
        "responses": {"200": _json("HealthSchema", "Database reachable"),
                      "503": _json("HealthSchema", "Database unreachable (status degraded, with reason)")}}})
