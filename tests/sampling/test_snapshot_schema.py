"""The OpenAPI schema of the live snapshot matches what the readers really produce, for every vendor and state."""
from __future__ import annotations

from pathlib import Path

import pynvml as real

from metrics_app.docs.schemas import LiveGpuSchema, SingleGpuSchema, SnapshotSchema
from metrics_app.sampling.gpu_fields import GPU_KEYS
from metrics_app.sampling.hub import HubState
from metrics_app.sampling.nvidia import NvidiaSource
from metrics_app.sampling.rocm import parse
from metrics_app.sampling.snapshot import SINGLE_GPU_FIELDS

from ..fakes import HOST_FRAGMENT, StaticGpuSource, StaticSource
from .fakes_nvml import FakeGpu, FakeNvml


def snapshot_of(*sources) -> dict:
    hub = HubState(list(sources), interval_sec=1.0, history_seconds=10)
    for state in hub.states:
        state.poll(hub.clock)
    return hub.tick().snapshot


def test_schema_names_exactly_the_reader_keys() -> None:
    assert set(LiveGpuSchema().fields) == set(GPU_KEYS) | {"stale"}
    assert set(SingleGpuSchema().fields) == set(SINGLE_GPU_FIELDS)


def test_real_snapshots_of_both_vendors_validate(shared_dir: Path) -> None:
    nvml = FakeNvml([FakeGpu(processes=[(5762, 1024)]), FakeGpu(lost=True),
                     FakeGpu(errors={"nvmlDeviceGetTemperature": real.NVML_ERROR_UNKNOWN})])
    nvidia = NvidiaSource(interval_sec=1.0, nvml=nvml, name_of_pid=lambda pid: None)
    nvidia.read_pcie()
    amd = parse((shared_dir / "fixtures" / "rocm-smi" / "rocm-smi_mi250_rocm5x_wandb-core.json").read_text())
    snapshot = snapshot_of(StaticSource("host", HOST_FRAGMENT), nvidia, StaticGpuSource("amd", "AMD", amd))
    assert len(snapshot["gpus"]) == 5 and snapshot["gpus"][1]["available"] is False
    assert SnapshotSchema().validate(snapshot) == {}


def test_a_stray_key_or_a_missing_one_is_caught() -> None:
    snapshot = snapshot_of(NvidiaSource(interval_sec=1.0, nvml=FakeNvml([FakeGpu()])))
    snapshot["gpus"][0]["bogus"] = 1
    del snapshot["gpus"][0]["throttled"]
    assert set(SnapshotSchema().validate(snapshot)["gpus"][0]) == {"bogus", "throttled"}


def test_the_openapi_document_describes_the_snapshot(client) -> None:
    spec = client.get("/openapi.json").get_json()
    ok = spec["paths"]["/api/metrics"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/SnapshotSchema"}
    gpu = spec["components"]["schemas"]["LiveGpuSchema"]
    assert set(gpu["properties"]) == set(GPU_KEYS) | {"stale"}
    assert gpu["properties"]["throttleReasons"]["type"] == "array"
