"""/openapi.json is valid OpenAPI 3 covering every route; /docs and /redoc load all assets from us."""
from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

#: Served but deliberately not in /openapi.json: the documents themselves, their assets, a demo page,
#: static files, and the Prometheus exposition (text format, described by Prometheus, not JSON).
UNDOCUMENTED = {"/openapi.json", "/docs", "/docs/assets/{name}", "/redoc", "/redoc/redoc.standalone.js",
                "/test_websocket.html", "/static/{filename}", "/api/prometheus"}

#: The keys of an OpenAPI path item that are operations (the others are summary, parameters, ...).
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def openapi_path(rule: str) -> str:
    """Werkzeug's ``/a/<path:name>`` as OpenAPI writes it: ``/a/{name}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


@pytest.fixture
def spec(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def test_spec_is_valid_openapi_3(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.")


def test_the_document_lists_exactly_the_served_operations(app, spec):
    """Every route the app serves, with each of its methods, is in the document unless it is on the
    allow-list, and the document lists nothing the app does not serve."""
    served = {(openapi_path(rule.rule), method.lower()) for rule in app.url_map.iter_rules()
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert {path for path, _ in served} >= UNDOCUMENTED, "an allow-listed route is no longer served"
    documented = {(path, method) for path, item in spec["paths"].items() for method in item if method in METHODS}
    assert {op for op in served if op[0] not in UNDOCUMENTED} == documented


def test_live_and_ingest_endpoints_are_documented(spec):
    paths = spec["paths"]
    for path in ("/", "/api/metrics", "/api/metrics/history", "/api/health", "/ws/metrics", "/ws/ingest"):
        assert "get" in paths[path], path
    assert {"get", "post"} <= set(paths["/metrics"])


def test_post_metrics_body_comes_from_the_ingest_schemas(spec):
    body = spec["paths"]["/metrics"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    documented, crawler = body["oneOf"][0]["oneOf"]
    assert documented["discriminator"]["mapping"]["memory"] == "#/components/schemas/MemoryRecordSchema"
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
