"""The OpenAPI 3 document, generated once per app from the marshmallow schemas with apispec."""
from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema

from .. import service
from ..auth import token_setting
from ..ingest.schemas import CRAWLER_SCHEMA_CLASSES, SCHEMA_CLASSES, LabelsSchema, StrictNumber, UtcTimestamp
from . import schemas
from .fleet import FleetSchema, add_fleet_paths
from .paths import add_ingest_paths, add_live_paths, add_query_paths

OPENAPI_VERSION = "3.0.3"
_RESPONSE_SCHEMAS = (schemas.ErrorSchema, schemas.MetricsPageSchema, schemas.AggregateSchema,
                     schemas.BucketSeriesSchema, schemas.GpuListSchema, schemas.StatsSchema, schemas.HealthSchema,
                     schemas.SnapshotSchema, FleetSchema)


def _schema_name(schema: type[Schema] | Schema) -> str:
    """Component names are the class names: stable, and what a reader of the code searches for."""
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__


def _strict_number(self: Any, field: Any, **_kwargs: Any) -> dict[str, Any]:
    """Ingest's number field is mapped to ``number``; this narrows the integer-only ones."""
    return {"type": "integer"} if isinstance(field, StrictNumber) and field.integer else {}


def _any_of(schema: type[LabelsSchema]) -> dict[str, Any]:
    """A record that must carry one of several optional fields (clocks) says so in the document too."""
    return {"anyOf": [{"required": [name]} for name in schema.any_of]} if schema.any_of else {}


def build_spec(record_schemas: dict[str, type[LabelsSchema]],
               crawler_schemas: dict[str, type[LabelsSchema]]) -> dict[str, Any]:
    """The ingest schema of each kind of both vocabularies (by ``metric``, and the C++ crawler's by
    ``metricType``), for the POST /metrics body."""
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(
        title="GPU metrics service", version=service.VERSION, openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={"description": "Live metrics of this host's GPUs (the live-metrics API) and the queryable history of "
                             "records sent by crawlers on other machines (the crawler-ingest API). Every error is "
                             '`{"error", "message", "details"}`.'},
        tags=[{"name": "service"}, {"name": "live", "description": "This host, sampled in-process"},
              {"name": "history", "description": "Crawler records: ingest and queries"},
              {"name": "fleet", "description": "Every host's latest records, live, across instances"}],
    )
    plugin.map_to_openapi_type(UtcTimestamp, "string", "date-time")
    plugin.map_to_openapi_type(StrictNumber, "number", None)
    plugin.converter.add_attribute_function(_strict_number)
    for schema in _RESPONSE_SCHEMAS:
        spec.components.schema(_schema_name(schema), schema=schema)
    for schema in (*record_schemas.values(), *crawler_schemas.values()):
        spec.components.schema(_schema_name(schema), component=_any_of(schema), schema=schema)
    add_live_paths(spec)
    add_ingest_paths(spec, {kind: _schema_name(s) for kind, s in record_schemas.items()},
                     {kind: _schema_name(s) for kind, s in crawler_schemas.items()})
    add_query_paths(spec)
    add_fleet_paths(spec)
    return spec.to_dict()


def document_auth(document: dict[str, Any], app: Flask) -> dict[str, Any]:
    """Marks the operations this deployment's tokens protect (none without INGEST_TOKEN/READ_TOKEN),
    so Swagger UI offers a token and clients see the 401 before they meet it."""
    protected = {(rule.rule, method.lower()) for rule in app.url_map.iter_rules() for method in rule.methods
                 if (setting := token_setting(rule.endpoint, app)) and app.config[setting]}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if (path, method) in protected:
                operation["security"] = [{"bearerAuth": []}, {"apiKeyAuth": []}]  # either
                operation["responses"]["401"] = {
                    "description": "Missing or wrong token (Authorization: Bearer or X-API-Key)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorSchema"}}}}
    if protected:
        document["components"]["securitySchemes"] = {
            "bearerAuth": {"type": "http", "scheme": "bearer"},
            "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
    return document


def spec_for(app: Flask) -> dict[str, Any]:
    """Built on first use and kept: the document depends only on code and configuration."""
    cached = app.extensions.get("openapi_spec")
    if cached is None:
        cached = app.extensions["openapi_spec"] = document_auth(build_spec(SCHEMA_CLASSES, CRAWLER_SCHEMA_CLASSES), app)
    return cached
