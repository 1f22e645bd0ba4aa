"""XID errors through a fake NVML event set, the PCIe and XID helper threads, and what /api/health makes of them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pynvml as real

from metrics_app.sampling.hub import HubState
from metrics_app.sampling.nvidia import NvidiaSource
from metrics_app.sampling.xid import XidWatcher

from ..fakes import StaticGpuSource, gpu_entry
from .fakes_nvml import FakeGpu, FakeNvml

AT = datetime(2026, 12, 1, 22, 0, tzinfo=timezone.utc)


def watched(gpus: list[FakeGpu]) -> tuple[NvidiaSource, FakeNvml, XidWatcher]:
    fake = FakeNvml(gpus)
    src = NvidiaSource(interval_sec=1.0, nvml=fake, name_of_pid=lambda pid: None)
    src.read()
    return src, fake, XidWatcher(src.event_targets, src.xids, wait_ms=10, now=lambda: AT)


def test_xid_counted_with_the_last_code_and_time_dcgm_exporter_239(caplog) -> None:
    lost = FakeGpu(uuid=b"GPU-79")
    src, fake, watcher = watched([FakeGpu(), lost])
    assert src.read()["gpus"][1]["xidErrors"] is None  # not registered yet: unknown, not 0
    assert watcher.run_once() is True  # registers, then the wait times out: normal
    assert [g.uuid for g, types in fake.registered] == [b"GPU-19d6d965-2acc-f646-00f8-4c76979aabb4", b"GPU-79"]
    assert all(types == real.nvmlEventTypeXidCriticalError for _, types in fake.registered)
    assert src.read()["gpus"][1]["xidErrors"] == {"count": 0, "last": None, "lastAt": None}
    fake.pending_events += [(lost, 79), (lost, 48)]
    waits = fake.calls.count("nvmlEventSetWait_v2")
    watcher.run_once()  # both queued events in one step, then the timeout
    assert fake.calls.count("nvmlEventSetWait_v2") - waits == 3 and not fake.pending_events
    first, second = src.read()["gpus"]
    assert second["xidErrors"] == {"count": 2, "last": 48, "lastAt": "2026-12-01T22:00:00.000+00:00"}
    assert first["xidErrors"]["count"] == 0
    assert "XID 79 on NVIDIA GPU 1 (GPU-79)" in caplog.text
    assert fake.calls.count("nvmlEventSetCreate") == 1  # registered once, not per wait
    lost.lost = True  # XID 79: fallen off the bus; the failed entry keeps its XIDs
    gone = src.read()["gpus"][1]
    assert gone["available"] is False and gone["xidErrors"]["last"] == 48


def test_gpu_without_xid_events_says_so_windows() -> None:
    src, _, watcher = watched([FakeGpu(events=0)])
    watcher.run_once()
    gpu = src.read()["gpus"][0]
    assert gpu["xidErrors"] is None and gpu["unsupported"]["xidErrors"] == "not_supported"


def test_reregistered_after_a_driver_reload() -> None:
    clock = [0.0]
    fake = FakeNvml([FakeGpu()])
    src = NvidiaSource(interval_sec=1.0, nvml=fake, clock=lambda: clock[0], init_retry_sec=60.0)
    src.read()
    watcher = XidWatcher(src.event_targets, src.xids, wait_ms=10)
    watcher.run_once()
    fake.count_error = real.NVML_ERROR_DRIVER_NOT_LOADED
    src.read()
    assert watcher.run_once() is False  # nothing to wait on while NVML is gone
    fake.count_error = None
    clock[0] += 61
    src.read()
    watcher.run_once()
    assert fake.calls.count("nvmlDeviceRegisterEvents") == 2 and fake.calls.count("nvmlEventSetFree") == 1


def test_hub_runs_the_pcie_and_xid_threads_beside_the_reader() -> None:
    fake = FakeNvml([FakeGpu()])
    src = NvidiaSource(interval_sec=0.05, nvml=fake, name_of_pid=lambda pid: None, pcie_interval_sec=0.05)
    hub = HubState([src], interval_sec=0.05, history_seconds=5)
    hub.start()
    try:
        threads = list(hub._threads)
        assert {"sampler-nvidia", "sampler-nvidia-pcie", "sampler-nvidia-xid"} <= {
            t.name for t in threads if t.is_alive()}
        frame = hub.latest()
        for _ in range(40):
            frame = hub.buffer.wait_newer(frame.seq, timeout=1.0)
            if frame.snapshot["gpus"][0]["pcieRxBytesPerSec"] is not None:
                break
        assert frame.snapshot["gpus"][0]["pcieRxBytesPerSec"] == 14742333 * 1024
    finally:
        hub.stop()
    assert not any(t.is_alive() for t in threads if t.name == "sampler-nvidia-xid")


def health_with(*gpus: dict) -> dict:
    hub = HubState([StaticGpuSource("nvidia", "NVIDIA", list(gpus))], interval_sec=1.0, history_seconds=10)
    for state in hub.states:
        state.poll(hub.clock)
    hub.tick()
    return hub.health()


def test_health_degraded_naming_the_gpu_after_a_recent_xid() -> None:
    recent = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat(timespec="milliseconds")
    old = (datetime.now(timezone.utc) - timedelta(minutes=6)).isoformat(timespec="milliseconds")
    health = health_with(gpu_entry(0, xidErrors={"count": 1, "last": 31, "lastAt": old}),
                         gpu_entry(1, xidErrors={"count": 3, "last": 79, "lastAt": recent}))
    assert health["status"] == "degraded"
    assert health["problems"] == [f"GPU 1 (GPU-00000001): XID 79 at {recent} (3 since start)"]
    assert health["gpus"][1]["xidErrors"]["last"] == 79
    assert health_with(gpu_entry(0, xidErrors={"count": 1, "last": 31, "lastAt": old}))["status"] == "healthy"


def test_health_shows_per_field_errors() -> None:
    health = health_with(gpu_entry(0, fieldErrors={"energyJoules": "NVML: Unknown Error"}), gpu_entry(1))
    assert health["status"] == "degraded"
    assert health["gpus"][0]["fieldErrors"] == {"energyJoules": "NVML: Unknown Error"}
    assert health["problems"] == ["GPU 0 (GPU-00000000): energyJoules failed: NVML: Unknown Error"]
    assert health_with(gpu_entry(0, unsupported={"energyJoules": "not_supported"}))["status"] == "healthy"
