"""The live HTTP endpoints, driven by a hub on fake sources."""
from config import TestConfig
from metrics_app import create_app

from ..fakes import HOST_FRAGMENT


def test_metrics_is_the_latest_snapshot_in_the_live_metrics_format(client, live):
    body = client.get("/api/metrics").get_json()
    assert set(body) == {"timestamp", "cpu", "memory", "gpu", "battery", "gpus"}
    assert body["cpu"] == HOST_FRAGMENT["cpu"]
    assert body["memory"] == HOST_FRAGMENT["memory"]
    assert body["battery"] == HOST_FRAGMENT["battery"]
    assert body["gpu"] == {
        "model": "NVIDIA GeForce RTX 4090", "vendor": "NVIDIA", "memoryTotal": 25769803776,
        "memoryUsed": 12884901888, "memoryFree": 12884901888, "memoryPercent": 50.0, "utilization": 75.0,
        "memoryUtilization": 60.0, "temperature": 65, "powerDraw": 350.0, "graphicsClock": 2520,
        "memoryClock": 10501,
    }
    assert [g["uuid"] for g in body["gpus"]] == ["GPU-00000000", "GPU-00000001"]


def test_metrics_before_the_first_tick_is_a_clear_503(client):
    response = client.get("/api/metrics")
    assert response.status_code == 503
    assert response.get_json()["error"] == "no_sample_yet"


def test_reading_metrics_never_reads_hardware(client, live):
    calls = [s.source.calls for s in live.states]
    for _ in range(20):
        client.get("/api/metrics")
        client.get("/api/metrics/history?seconds=10")
    assert [s.source.calls for s in live.states] == calls


def test_history_backfills_oldest_first(client, live):
    live.tick()
    live.tick()
    frames = client.get("/api/metrics/history?seconds=60").get_json()
    assert len(frames) == 3
    assert [f["timestamp"] for f in frames] == sorted(f["timestamp"] for f in frames)
    assert frames[-1] == client.get("/api/metrics").get_json()


def test_history_rejects_a_bad_window(client, live):
    for bad in ("abc", "-5", "0", "nan", "inf"):
        response = client.get(f"/api/metrics/history?seconds={bad}")
        assert response.status_code == 400, bad
        assert response.get_json()["error"] == "invalid_parameter"


def test_health_has_the_documented_fields_and_sampler_state(client, live):
    body = client.get("/api/health").get_json()
    assert body["status"] == "healthy"
    assert body["nvidia_available"] is True and body["rocm_available"] is False
    assert body["gpu_support"] == "NVIDIA"
    assert body["platform"]
    assert body["sampler"]["sources"]["host"]["status"] == "ok"
    assert [g["index"] for g in body["gpus"]] == [0, 1]


def test_plain_get_on_the_websocket_endpoint_explains_itself(client):
    response = client.get("/ws/metrics")
    assert response.status_code == 426
    body = response.get_json()
    assert body["error"] == "websocket_required"
    assert "/api/metrics" in body["message"]


def test_root_describes_the_service(client, live):
    body = client.get("/").get_json()
    assert body["service"] and body["version"] and body["status"] == "running"
    assert {"/api/metrics", "/api/health", "/ws/metrics"} <= set(body["endpoints"])
    assert body["nvidia_available"] is True and body["rocm_available"] is False
    assert body["platform"]


def test_unknown_path_and_wrong_method_use_the_json_error_shape(client):
    response = client.get("/nope")
    assert response.status_code == 404
    assert set(response.get_json()) == {"error", "message", "details"}
    response = client.delete("/api/metrics")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"


def test_cors_allows_any_origin_by_default(client, live):
    response = client.get("/api/metrics", headers={"Origin": "http://localhost:5173"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"


class RestrictedOrigins(TestConfig):
    CORS_ORIGINS = ["http://dashboard.example"]


def test_restricted_cors_origins_apply_to_http_and_to_the_websocket_handshake():
    client = create_app(RestrictedOrigins).test_client()
    allowed = client.get("/api/health", headers={"Origin": "http://dashboard.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://dashboard.example"
    denied = client.get("/api/health", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in denied.headers

    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": "http://evil.example"}
    response = client.get("/ws/metrics", headers=upgrade)
    assert response.status_code == 403
    assert response.get_json()["error"] == "origin_not_allowed"


def test_test_page_is_served(client):
    response = client.get("/test_websocket.html")
    assert response.status_code == 200
    assert b"/ws/metrics" in response.data
