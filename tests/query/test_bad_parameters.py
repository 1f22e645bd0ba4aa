"""Every bad query is a 400 in the one error shape, naming the parameter; never a 500."""
from __future__ import annotations

import base64

import pytest

BAD = {
    "/metrics?metric=power&aggregate=avg&field=wats": "field",
    "/metrics?metric=power&aggregate=median&field=watts": "aggregate",
    "/metrics?metric=voltage": "metric",
    "/metrics?aggregate=avg&field=watts": "metric",
    "/metrics?metric=power&aggregate=avg": "field",
    "/metrics?field=watts": "field",
    "/metrics?metric=power&bucket=5m": "bucket",
    "/metrics?metric=power&aggregate=avg&field=watts&bucket=5x": "bucket",
    "/metrics?metric=power&aggregate=avg&field=watts&bucket=0s": "bucket",
    "/metrics?metric=power&aggregate=count&limit=5": "limit",
    "/metrics?start=yesterday": "start",
    "/metrics?end=2025-13-01T00:00:00Z": "end",
    "/metrics?start=2025-01-02T00:00:00Z&end=2025-01-01T00:00:00Z": "start",
    "/metrics?limit=0": "limit",
    "/metrics?limit=10001": "limit",
    "/metrics?limit=ten": "limit",
    "/metrics?limit=1.5": "limit",
    "/metrics?gpuIndex=-1": "gpuIndex",
    "/metrics?gpuIndex=x": "gpuIndex",
    "/metrics?order=up": "order",
    "/metrics?cursor=not-a-cursor": "cursor",
    "/metrics?cursor=" + base64.urlsafe_b64encode(b"asc:x:1").decode(): "cursor",
    "/metrics?order=desc&cursor=" + base64.urlsafe_b64encode(b"asc:1:1").decode(): "cursor",
    "/metrics?gpu_index=0": "gpu_index",
    "/metrics?limit=5&limit=6": "limit",
    "/gpus?metric=power": "metric",
    "/stats?gpuIndex=a": "gpuIndex",
}


@pytest.mark.parametrize(("url", "parameter"), BAD.items())
def test_bad_parameter_is_400_naming_it(client, populated, url, parameter):
    response = client.get(url)
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "message", "details"}
    assert body["error"] == "invalid_parameter" and parameter in body["details"]


def test_bad_field_lists_the_allowed_ones(client, populated):
    body = client.get("/metrics?metric=memory&aggregate=avg&field=percent").get_json()
    assert all(name in body["details"]["field"][0] for name in ("totalMiB", "usedMiB", "freeMiB"))


def test_limits_at_the_bounds_are_accepted(client, populated):
    assert client.get("/metrics?limit=1").get_json()["count"] == 1
    assert client.get("/metrics?limit=10000").get_json()["count"] == 1080


def test_sql_looking_input_is_just_a_value(client, populated):
    assert client.get("/metrics?hostname=h1'%20OR%201=1--").get_json()["count"] == 0
    assert client.get("/metrics?metric=power&aggregate=max&field=v1").status_code == 400
