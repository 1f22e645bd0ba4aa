"""The local recorder: this machine's GPUs appear in GET /metrics and /gpus beside crawled ones."""
from __future__ import annotations

import time

from metrics_app.extensions import hub
from metrics_app.jobs import BackgroundJobs
from metrics_app.recording.recorder import LocalRecorder

from ..fakes import HOST_FRAGMENT, StaticGpuSource, StaticSource, gpu_entry
from ..ingest.records import utilization


def fake_hub(app, *gpus):
    state = hub.init_app(app, sources=[StaticSource("host", HOST_FRAGMENT),
                                       StaticGpuSource("nvidia", "NVIDIA", list(gpus))])
    for source_state in state.states:
        source_state.poll(state.clock)
    state.tick()
    return state


def test_recorded_gpus_are_listed_next_to_crawled_ones(app, client):
    app.config["RECORD_HOSTNAME"] = "local-box"
    fake_hub(app, gpu_entry(0), gpu_entry(1, powerDraw=None))
    client.post("/metrics", json=utilization(3, host="crawled"))
    with app.app_context():
        assert LocalRecorder().record() == 9
    gpus = client.get("/gpus").get_json()["gpus"]
    assert {(g["hostname"], g["gpuIndex"], g["gpuId"]) for g in gpus} == {
        ("crawled", 0, None), ("local-box", 0, "GPU-00000000"), ("local-box", 1, "GPU-00000001")}
    items = client.get("/metrics?hostname=local-box&gpuIndex=0&metric=memory").get_json()["items"]
    assert [i["payload"] for i in items] == [{"totalMiB": 24576.0, "usedMiB": 12288.0, "freeMiB": 12288.0}]
    assert items[0]["gpuName"] == "NVIDIA GeForce RTX 4090"
    power = client.get("/metrics?hostname=local-box&metric=power").get_json()["items"]
    assert [i["gpuIndex"] for i in power] == [0]


def test_each_snapshot_is_recorded_once(app, client):
    state = fake_hub(app, gpu_entry(0))
    recorder = LocalRecorder()
    with app.app_context():
        assert recorder.record() == 5
        assert recorder.record() == 0  # no new tick since
        state.tick()
        assert recorder.record() == 5
    assert client.get("/metrics").get_json()["count"] == 10


def test_nothing_is_recorded_before_the_first_sample(app):
    with app.app_context():
        assert LocalRecorder().record() == 0


def test_the_background_jobs_run_the_recorder_every_interval(app, client, tmp_path):
    app.config.update(RECORD_INTERVAL_SEC=0.1, RECORD_HOSTNAME="local-box", JOBS_LOCK_PATH=str(tmp_path / "j.lock"))
    state = fake_hub(app, gpu_entry(0))
    jobs = BackgroundJobs(app)
    jobs.start()
    try:
        deadline = time.monotonic() + 10
        while client.get("/metrics?metric=temperature").get_json()["count"] < 3 and time.monotonic() < deadline:
            state.tick()
            time.sleep(0.1)
    finally:
        jobs.stop()
    assert client.get("/metrics?metric=temperature").get_json()["count"] >= 3


def test_interval_zero_disables_the_recorder(app, tmp_path):
    app.config.update(RECORD_INTERVAL_SEC=0, JOBS_LOCK_PATH=str(tmp_path / "j.lock"))
    jobs = BackgroundJobs(app)
    jobs.start()
    try:
        assert [t._thread.name for t in jobs._threads] == ["jobs-leadership", "retention"]
    finally:
        jobs.stop()
