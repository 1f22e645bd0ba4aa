"""The OpenAPI response schemas describe what the views really send (the views bypass marshmallow)."""
from __future__ import annotations

import pytest

from metrics_app.docs import schemas

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
def test_response_matches_its_documented_schema(client, seeded, url, schema):
    assert schema().validate(client.get(url).get_json()) == {}
