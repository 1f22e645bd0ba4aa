"""The OpenAPI response schemas describe what the views really send (the views bypass marshmallow)."""
from __future__ import annotations

import pytest

from metrics_app.docs import schemas

from ..ingest.records import CRAWLER_EXAMPLES, INGEST_EXAMPLES

CASES = {
    "/metrics?limit=2": schemas.MetricsPageSchema,
    "/metrics?metric=power&aggregate=avg&field=watts": schemas.AggregateSchema,
    "/metrics?metric=power&aggregate=avg&field=watts&bucket=5m": schemas.BucketSeriesSchema,
    "/gpus": schemas.GpuListSchema,
    "/stats": schemas.StatsSchema,
    "/health": schemas.HealthSchema,
    "/metrics?limit=0": schemas.ErrorSchema,
}


@pytest.mark.parametrize(("url", "schema"), CASES.items())
def test_response_matches_its_documented_schema(client, populated, url, schema):
    assert schema().validate(client.get(url).get_json()) == {}


@pytest.mark.parametrize(("url", "schema"), CASES.items())
def test_gpus_without_index_or_uuid_match_the_documented_schemas(client, url, schema):
    pidless = {k: v for k, v in INGEST_EXAMPLES["process"].items() if k != "pid"}
    records = [*CRAWLER_EXAMPLES.values(), dict(pidless, timestamp="2025-11-12T18:30:07Z")]
    assert client.post("/metrics", json=records).status_code == 201
    assert schema().validate(client.get(url).get_json()) == {}
