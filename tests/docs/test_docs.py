"""/openapi.json is valid OpenAPI 3 covering every route; /docs and /redoc load all assets from us."""
from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

#: Routes that are not API operations.
UNDOCUMENTED = {"/openapi.json", "/docs", "/docs/assets/<path:name>", "/redoc", "/redoc/redoc.standalone.js",
                "/test_websocket.html", "/static/<path:filename>"}


@pytest.fixture
def spec(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def test_spec_is_valid_openapi_3(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.")


def test_every_served_route_is_documented(app, spec):
    for rule in app.url_map.iter_rules():
        if rule.rule in UNDOCUMENTED or rule.rule == app.config.get("PROMETHEUS_PATH"):
            continue
        documented = {m.upper() for m in spec["paths"].get(rule.rule, {})}
        served = rule.methods - {"HEAD", "OPTIONS"}
        assert served <= documented | {"GET"} and rule.rule in spec["paths"], rule.rule


def test_live_and_ingest_endpoints_are_documented(spec):
    paths = spec["paths"]
    for path in ("/", "/api/metrics", "/api/metrics/history", "/api/health", "/ws/metrics", "/ws/ingest"):
        assert "get" in paths[path], path
    assert {"get", "post"} <= set(paths["/metrics"])


def test_post_metrics_body_comes_from_the_ingest_schemas(spec):
    body = spec["paths"]["/metrics"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    seed, crawler = body["oneOf"][0]["oneOf"]
    assert seed["discriminator"]["mapping"]["memory"] == "#/components/schemas/MemoryRecordSchema"
    assert crawler["discriminator"] == {"propertyName": "metricType", "mapping": {
        "gpu": "#/components/schemas/CrawlerGpuRecordSchema",
        "process": "#/components/schemas/CrawlerProcessRecordSchema"}}
    schemas = spec["components"]["schemas"]
    memory = schemas["MemoryRecordSchema"]
    assert {"totalMiB", "usedMiB", "freeMiB", "timestamp", "gpuIndex"} <= set(memory["properties"])
    assert memory["properties"]["gpuIndex"]["type"] == "integer" and "gpuIndex" not in memory["required"]
    assert memory["properties"]["metric"]["enum"] == ["memory"]
    assert schemas["ClocksRecordSchema"]["anyOf"] == [
        {"required": ["graphicsMHz"]}, {"required": ["memoryMHz"]}, {"required": ["smMHz"]}]
    gpu = schemas["CrawlerGpuRecordSchema"]
    assert gpu["properties"]["powerMilliwatts"]["type"] == "number" and "powerMilliwatts" in gpu["required"]
    assert "processName" in schemas["CrawlerProcessRecordSchema"]["properties"]


def test_query_parameters_come_from_the_query_schema(spec):
    names = {p["name"] for p in spec["paths"]["/metrics"]["get"]["parameters"]}
    assert names == {"gpuIndex", "hostname", "gpuId", "gpuName", "metric", "start", "end", "limit", "order", "cursor",
                     "aggregate", "field", "bucket", "format"}


def _local_assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_doc_pages_load_every_asset_from_this_server(client, page):
    response = client.get(page)
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assets = _local_assets(html)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    assert "http://" not in html and "https://" not in html
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200 and len(served.data) > 100, asset
    assert '"/openapi.json"' in html


def test_swagger_ui_does_not_call_the_online_validator(client):
    assert "validatorUrl: null" in client.get("/docs").get_data(as_text=True)


def test_asset_paths_cannot_escape_the_package(client):
    assert client.get("/docs/assets/../../../../etc/passwd").status_code == 404
    assert client.get("/docs/assets/missing.js").status_code == 404
