"""GET /fleet: every host's GPUs with the latest value of each metric, its age and staleness."""
from __future__ import annotations

import pytest

from .records import record


pytestmark = pytest.mark.usefixtures("clean_db")

def post(client, records):
    response = client.post("/metrics", json=records)
    assert response.status_code == 201, response.get_json()


def test_latest_value_of_every_metric_per_host_and_gpu(client):
    post(client, [record(metric="utilization", ago=2, gpuPercent=10.0), record(metric="utilization", gpuPercent=90.0),
                  record(metric="temperature"), record(metric="process"), record(host="node-2", gpu=3, metric="power")])
    body = client.get("/fleet").get_json()
    assert body["count"] == {"hosts": 2, "gpus": 2}
    node1, node2 = body["hosts"]
    assert node1["hostname"] == "node-1" and node2["gpus"][0]["gpuIndex"] == 3
    gpu = node1["gpus"][0]
    assert (gpu["gpuId"], gpu["gpuName"], gpu["stale"]) == ("GPU-node-1-0", "NVIDIA H100", False)
    util = gpu["metrics"]["utilization"]
    assert util["gpuPercent"] == 90.0 and util["memoryPercent"] == 20.0 and not util["stale"]
    assert 0 <= util["age_sec"] < 5
    assert gpu["metrics"]["temperature"]["celsius"] == 61.0
    assert [(p["pid"], p["usedMiB"]) for p in gpu["processes"]] == [(4242, 512.0)]
    assert body["stream"] == {"mode": "local", "status": "ok", "reason": None}


def test_stale_after_three_of_the_hosts_intervals(client):
    # node-1 reports every 2 s; its temperature stopped 30 s ago, its utilization is current.
    post(client, [record(metric="utilization", ago=ago) for ago in (6, 4, 2, 0)])
    post(client, [record(metric="temperature", ago=32), record(metric="temperature", ago=30)])
    host = client.get("/fleet").get_json()["hosts"][0]
    assert host["interval_sec"] == pytest.approx(2.0, abs=0.01)  # stamps taken a few µs apart
    assert host["stale_after_sec"] == pytest.approx(6.0, abs=0.03)
    metrics = host["gpus"][0]["metrics"]
    assert metrics["temperature"]["stale"] is True and metrics["utilization"]["stale"] is False
    assert host["stale"] is False


def test_a_host_seen_once_long_ago_is_stale_by_the_configured_bound(app, client):
    app.config["FLEET_STALE_AFTER_SEC"] = 60
    app.extensions["fleet"].stale_after_sec = 60
    post(client, [record(host="old", ago=120), record(host="fresh", ago=1)])
    hosts = {h["hostname"]: h for h in client.get("/fleet").get_json()["hosts"]}
    assert hosts["old"]["stale"] is True and hosts["old"]["stale_after_sec"] == 60
    assert hosts["fresh"]["stale"] is False


def test_ended_processes_are_not_listed(client):
    post(client, [record(metric="utilization", ago=ago) for ago in (3, 2, 1, 0)])
    post(client, [record(metric="process", ago=20, pid=1), record(metric="process", pid=2)])
    gpu = client.get("/fleet").get_json()["hosts"][0]["gpus"][0]
    assert [p["pid"] for p in gpu["processes"]] == [2]


def test_filters_repeat_and_combine(client):
    post(client, [record(host=h, gpu=g, metric=m) for h in ("a", "b", "c") for g in (0, 1)
                  for m in ("utilization", "power")])
    body = client.get("/fleet?hostname=a&hostname=c&metric=power").get_json()
    assert [h["hostname"] for h in body["hosts"]] == ["a", "c"]
    assert all(list(g["metrics"]) == ["power"] for h in body["hosts"] for g in h["gpus"])
    body = client.get("/fleet?gpuId=GPU-b-1").get_json()
    assert [(h["hostname"], g["gpuIndex"]) for h in body["hosts"] for g in h["gpus"]] == [("b", 1)]


def test_an_old_batch_does_not_replace_newer_values(client):
    post(client, [record(gpuPercent=70.0)])
    post(client, [record(ago=600, gpuPercent=1.0)])  # an import of last week, a replayed spool
    util = client.get("/fleet").get_json()["hosts"][0]["gpus"][0]["metrics"]["utilization"]
    assert util["gpuPercent"] == 70.0


def test_rejected_batch_changes_nothing(client):
    response = client.post("/metrics", json=[record(), record(metric="temperature", celsius="hot")])
    assert response.status_code == 422
    assert client.get("/fleet").get_json()["hosts"] == []


@pytest.mark.parametrize("query, bad", [("metric=bogus", "metric"), ("gpu=1", "gpu"), ("hostname=a%00b", "hostname")])
def test_bad_parameters_are_a_400_naming_them(client, query, bad):
    for path in ("/fleet", "/ws/fleet"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400
        body = response.get_json()
        assert body["error"] == "invalid_parameter" and bad in body["details"]


def test_plain_get_of_the_stream_is_a_426(client):
    response = client.get("/ws/fleet")
    assert response.status_code == 426 and response.get_json()["details"]["http"] == "/fleet"


def test_reads_need_the_read_token(app, client):
    app.config["READ_TOKEN"] = ["s3cret"]
    assert client.get("/fleet").status_code == 401
    assert client.get("/fleet", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/fleet?token=s3cret").status_code == 401  # ?token= is for WebSocket handshakes only


def test_health_reports_the_local_stream(client):
    assert client.get("/health").get_json()["fleet"] == {"mode": "local", "status": "ok", "reason": None}


def test_response_matches_the_documented_schema(client):
    from metrics_app.docs.fleet import FleetSchema

    post(client, [record(metric=m) for m in ("utilization", "memory", "process")])
    body = client.get("/fleet").get_json()
    assert FleetSchema().validate(body) == {}
    assert "/fleet" in client.get("/openapi.json").get_json()["paths"]


def test_a_restarted_instance_fills_its_table_from_the_database(app, client, database_url):
    """The table is memory: a new process answers from the newest stored record per GPU and metric."""
    from metrics_app import create_app
    from tests.dbsetup import config_for, dispose

    post(client, [record(host="kept", metric="utilization", ago=5, gpuPercent=10.0),
                  record(host="kept", metric="utilization", ago=1, gpuPercent=33.0),
                  record(host="kept", metric="power"), record(host="long-gone", ago=3600)])
    restarted = create_app(config_for(database_url))
    try:
        body = restarted.test_client().get("/fleet").get_json()
        assert [h["hostname"] for h in body["hosts"]] == ["kept"]  # beyond the stale bound: not live any more
        metrics = body["hosts"][0]["gpus"][0]["metrics"]
        assert metrics["utilization"]["gpuPercent"] == 33.0 and metrics["power"]["watts"] == 210.5
    finally:
        dispose(restarted)


def test_a_record_without_hostname_is_shown_with_null(client):
    anonymous = record()
    del anonymous["hostname"]
    post(client, [anonymous])
    host = client.get("/fleet").get_json()["hosts"][0]
    assert host["hostname"] is None and host["gpus"][0]["gpuIndex"] == 0


def test_the_426_names_the_protocol_to_upgrade_to(client):
    response = client.get("/ws/fleet")
    assert response.headers["Upgrade"] == "websocket" and response.headers["Connection"] == "Upgrade"
