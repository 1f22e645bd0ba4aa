"""NVIDIA reader fed with the values real GPUs reported (nvidia-smi XML captures in ../shared)."""
from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from metrics_app.sampling.gpu_fields import DEPTH_KEYS, GPU_KEYS
from metrics_app.sampling.nvidia import NvidiaSource

from .fakes_nvml import MIB, FakeGpu, FakeNvml
from .nvml_captures import gpus_from_xml

CAPTURES = (
    "a100-sxm4-v12_telegraf", "dual_a5000-v13_telegraf-pr", "gt-1030_telegraf-pr", "gtx-1070-ti_telegraf",
    "pro-6000-maxq-blackwell-v13_telegraf-pr", "quadro-p400_telegraf", "rtx-3060-v12_telegraf",
    "rtx-3080-v13_telegraf", "tesla-p4_telegraf-pr", "tesla-t4_telegraf",
)


def read_capture(shared_dir: Path, name: str) -> list[dict]:
    fake = FakeNvml(gpus_from_xml(shared_dir / "fixtures" / "nvidia-smi" / f"nvidia-smi_{name}.xml"))
    return NvidiaSource(interval_sec=1.0, nvml=fake, name_of_pid=lambda pid: None).read()["gpus"]


@pytest.mark.parametrize("name", CAPTURES)
def test_every_capture_gives_every_key_and_valid_json(shared_dir: Path, name: str) -> None:
    for gpu in read_capture(shared_dir, name):
        assert tuple(gpu) == GPU_KEYS and gpu["available"] is True
        orjson.dumps(gpu)  # no NaN, no bytes, no ctypes leftovers
        for key, reason in gpu["unsupported"].items():
            assert gpu[key] is None and reason in ("not_supported", "ecc_disabled")
        assert gpu["fieldErrors"] == {}


def core_unsupported(gpu: dict) -> dict:
    """The unsupported reasons of the fields every GPU monitor shows, apart from the depth fields."""
    return {k: v for k, v in gpu["unsupported"].items() if k not in DEPTH_KEYS}


def test_rtx_3080_values_match_nvidia_smi(shared_dir: Path) -> None:
    (gpu,) = read_capture(shared_dir, "rtx-3080-v13_telegraf")
    assert gpu["model"] == "NVIDIA GeForce RTX 3080" and gpu["uuid"] == "GPU-19d6d965-2acc-f646-00f8-4c76979aabb4"
    assert (gpu["memoryTotal"], gpu["memoryUsed"], gpu["memoryFree"]) == (10240 * MIB, 9184 * MIB, 660 * MIB)
    assert gpu["memoryPercent"] == 89.7
    assert (gpu["utilization"], gpu["memoryUtilization"], gpu["temperature"]) == (65, 9, 27)
    assert (gpu["powerDraw"], gpu["powerLimit"]) == (142.3, 320.0)
    assert (gpu["graphicsClock"], gpu["smClock"], gpu["memoryClock"], gpu["fanSpeed"]) == (1950, 1950, 9251, 0)
    assert core_unsupported(gpu) == {}


def test_tesla_t4_fan_not_supported_exporter_21(shared_dir: Path) -> None:
    """The T4 capture shows fan_speed N/A (passive cooling; nvidia_gpu_prometheus_exporter #21)."""
    (gpu,) = read_capture(shared_dir, "tesla-t4_telegraf")
    assert gpu["fanSpeed"] is None and core_unsupported(gpu) == {"fanSpeed": "not_supported"}
    assert (gpu["powerDraw"], gpu["powerLimit"], gpu["temperature"]) == (26.8, 70.0, 40)
    assert [p["pid"] for p in gpu["processes"]] == [675, 5762]
    assert gpu["processes"][1]["usedMemory"] == 1005 * MIB


def test_gt_1030_power_draw_not_supported_glances_1523(shared_dir: Path) -> None:
    (gpu,) = read_capture(shared_dir, "gt-1030_telegraf-pr")
    assert gpu["powerDraw"] is None and gpu["powerLimit"] == 30.0
    assert core_unsupported(gpu) == {"powerDraw": "not_supported"}
    assert len(gpu["processes"]) == len(set(p["pid"] for p in gpu["processes"])) > 3


def test_grid_p4_vgpu_guest_has_processes_without_memory(shared_dir: Path) -> None:
    """A vGPU guest reports process memory as N/A: usedMemory None, like WDDM."""
    (gpu,) = read_capture(shared_dir, "tesla-p4_telegraf-pr")
    assert gpu["model"] == "GRID P4-1Q"
    assert {"powerDraw", "powerLimit", "fanSpeed"} <= set(gpu["unsupported"])
    assert gpu["processes"][0] == {"pid": 1188, "name": None, "usedMemory": None, "smUtilization": 0,
                                   "memUtilization": 0}


def test_a100_mig_capture_lists_instances_under_the_parent_nvitop_5(shared_dir: Path) -> None:
    (gpu,) = read_capture(shared_dir, "a100-sxm4-v12_telegraf")
    assert gpu["utilization"] is None and gpu["unsupported"]["utilization"] == "not_supported"
    assert gpu["memoryTotal"] == 81920 * MIB and gpu["powerDraw"] == 67.0
    assert [m["memoryTotal"] for m in gpu["migDevices"]] == [19968 * MIB] * 4
    assert gpu["migDevices"][3]["memoryUsed"] == 12 * MIB


def test_eight_gpus_at_one_hertz_stay_cheap() -> None:
    """The cost target: 8 GPUs read every second. NVML calls are counted so a regression shows; the
    time of a read is measured by bench/gpu_tick.py (timings in unit tests are noise on a shared CPU)."""
    fake = FakeNvml([FakeGpu(uuid=f"GPU-{i}".encode()) for i in range(8)])
    src = NvidiaSource(interval_sec=1.0, nvml=fake, name_of_pid=lambda pid: None)
    src.read()
    fake.calls.clear()
    for _ in range(20):
        src.read()
    # count + 24 calls per GPU: 9 for the basic fields, 15 for the depth ones (one of them a batch of
    # 7 field values); the MIG mode and the maximum PCIe link are asked once, PCIe throughput never.
    assert len(fake.calls) / 20 <= 1 + 8 * 24
    assert "nvmlDeviceGetPcieThroughput" not in fake.calls
