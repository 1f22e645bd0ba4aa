"""NVIDIA reader against the failures real GPUs produced; each test cites the report it reproduces."""
from __future__ import annotations

import sys

import pynvml as real
import pytest

from metrics_app.sampling.gpu_fields import DEPTH_KEYS
from metrics_app.sampling.nvidia import NvidiaSource

from .fakes_nvml import MIB, FakeGpu, FakeMig, FakeNvml


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def core_unsupported(gpu: dict) -> dict:
    """Unsupported reasons apart from the depth fields (tests of those are in test_nvidia_depth)."""
    return {k: v for k, v in gpu["unsupported"].items() if k not in DEPTH_KEYS}


def source(fake: FakeNvml, clock: Clock | None = None) -> NvidiaSource:
    return NvidiaSource(interval_sec=1.0, process_interval_sec=5.0, init_retry_sec=60.0, nvml=fake,
                        clock=clock or Clock(), name_of_pid={5762: "python"}.get)


def test_fan_speed_not_supported_on_passive_t4_gpustat_138() -> None:
    """Passively cooled T4/V100/H100 answer NotSupported for the fan (gpustat #138, #161; exporter #21)."""
    fake = FakeNvml([FakeGpu(name=b"Tesla T4", fan=0, errors={"nvmlDeviceGetFanSpeed": real.NVML_ERROR_NOT_SUPPORTED})])
    src = source(fake)
    gpu = src.read()["gpus"][0]
    assert gpu["fanSpeed"] is None and core_unsupported(gpu) == {"fanSpeed": "not_supported"}
    assert gpu["available"] is True and gpu["temperature"] == 27
    src.read()
    assert fake.calls.count("nvmlDeviceGetFanSpeed") == 1  # asked once: a T4 does not grow a fan


def test_power_not_supported_on_geforce_940mx_codecarbon_295() -> None:
    """Power draw NotSupported on consumer GPUs (codecarbon #295) is null, never 0 W, beside a GPU that has it."""
    geforce = FakeGpu(name=b"GeForce 940MX", errors={"nvmlDeviceGetPowerUsage": real.NVML_ERROR_NOT_SUPPORTED})
    gpus = source(FakeNvml([geforce, FakeGpu()])).read()["gpus"]
    assert gpus[0]["powerDraw"] is None and core_unsupported(gpus[0]) == {"powerDraw": "not_supported"}
    assert gpus[0]["powerLimit"] == 320.0
    assert gpus[1]["powerDraw"] == 142.3 and core_unsupported(gpus[1]) == {}


def test_power_limit_falls_back_to_management_limit_nvidia_oc_22() -> None:
    """The enforced and management limits are supported on different GPUs (nvidia_oc PR #22)."""
    gpu = FakeGpu(errors={"nvmlDeviceGetEnforcedPowerLimit": real.NVML_ERROR_NOT_SUPPORTED}, power_limit_mw=175000)
    assert source(FakeNvml([gpu])).read()["gpus"][0]["powerLimit"] == 175.0


def test_no_permission_is_a_reason_not_a_failure() -> None:
    gpu = FakeGpu(errors={"nvmlDeviceGetTemperature": real.NVML_ERROR_NO_PERMISSION})
    entry = source(FakeNvml([gpu])).read()["gpus"][0]
    assert entry["temperature"] is None and core_unsupported(entry) == {"temperature": "no_permission"}


def test_gpu_lost_mid_run_and_back() -> None:
    """GpuIsLost (an "Unable to determine the device handle ... GPU is lost" in nvidia-smi) fails one GPU only."""
    lost = FakeGpu(uuid=b"GPU-lost", name=b"NVIDIA A100-SXM4-80GB")
    src = source(FakeNvml([FakeGpu(), lost]))
    assert all(g["available"] for g in src.read()["gpus"])
    lost.lost = True
    healthy, gone = src.read()["gpus"]
    assert healthy["available"] is True and healthy["utilization"] == 65
    assert gone["available"] is False and gone["error"] == "NVML: GPU is lost"
    assert gone["uuid"] == "GPU-lost" and gone["model"] == "NVIDIA A100-SXM4-80GB"  # still identifiable
    assert gone["memoryUsed"] is None and gone["temperature"] is None
    assert src.read()["gpus"][1]["uuid"] == "GPU-lost"  # still named while it stays lost
    lost.lost = False
    back = src.read()["gpus"][1]
    assert back["available"] is True and back["error"] is None and back["temperature"] == 27


def test_unknown_error_on_one_call_is_that_fields_error_and_retried() -> None:
    """A failure of one call nulls that field for this read (with the error), not the GPU."""
    gpu = FakeGpu(errors={"nvmlDeviceGetTemperature": real.NVML_ERROR_UNKNOWN})
    fake = FakeNvml([gpu, FakeGpu()])
    src = source(fake)
    entry = src.read()["gpus"]
    assert entry[0]["available"] is True and entry[0]["error"] is None
    assert entry[0]["temperature"] is None and entry[0]["fieldErrors"] == {"temperature": "NVML: Unknown Error"}
    assert "temperature" not in entry[0]["unsupported"] and entry[0]["powerDraw"] == 142.3
    assert entry[1]["fieldErrors"] == {}
    del gpu.errors["nvmlDeviceGetTemperature"]
    again = src.read()["gpus"][0]
    assert again["temperature"] == 27 and again["fieldErrors"] == {}


def test_gpu_answering_no_identity_call_is_failed() -> None:
    unknown = real.NVML_ERROR_UNKNOWN
    broken = FakeGpu(errors={"nvmlDeviceGetUUID": unknown, "nvmlDeviceGetName": unknown})
    failed, fine = source(FakeNvml([broken, FakeGpu()])).read()["gpus"]
    assert failed["available"] is False and failed["error"] == "NVML: Unknown Error"
    assert failed["temperature"] is None and fine["available"] is True


@pytest.mark.parametrize("code, message", [
    (real.NVML_ERROR_LIBRARY_NOT_FOUND, "NVML Shared Library Not Found"),  # gpustat #90, nvdashboard #31
    (real.NVML_ERROR_DRIVER_NOT_LOADED, "Driver Not Loaded"),  # gpustat #110, BentoML #4940
])
def test_init_failure_leaves_service_running_and_retries_gpustat_90_110(code: int, message: str) -> None:
    """No driver, or a driver not loaded after a kernel upgrade: no GPUs, a reason, and a retry later."""
    fake, clock = FakeNvml([FakeGpu()], init_error=code), Clock()
    src = source(fake, clock)
    assert src.read() == {"gpus": []}
    assert src.available is False and src.unavailable_reason == f"NVML init failed: {message}"
    clock.now += 30
    src.read()
    assert fake.inits == 1  # not retried on every tick
    fake.init_error = None
    clock.now += 31
    assert src.read()["gpus"][0]["model"] == "NVIDIA GeForce RTX 3080"
    assert src.available is True and src.unavailable_reason is None


def test_driver_unloaded_mid_run_is_picked_up_again() -> None:
    fake, clock = FakeNvml([FakeGpu()]), Clock()
    src = source(fake, clock)
    src.read()
    fake.count_error = real.NVML_ERROR_DRIVER_NOT_LOADED
    assert src.read() == {"gpus": []} and src.available is False
    assert src.unavailable_reason == "NVML stopped answering: Driver Not Loaded"
    fake.count_error = None
    clock.now += 61
    assert len(src.read()["gpus"]) == 1 and src.available is True


def test_pynvml_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    src = NvidiaSource(interval_sec=1.0)
    assert src.read() == {"gpus": []}
    assert src.available is False and "nvidia-ml-py" in src.unavailable_reason


def test_v3_process_call_missing_falls_back_to_v2_pynvml_43() -> None:
    """13.x calls ``_v3`` unconditionally; on a 470 driver that symbol is missing (pynvml #43, gpustat #105)."""
    gpu = FakeGpu(processes=[(5762, 1005 * MIB)])
    fake = FakeNvml([gpu], missing={"nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetGraphicsRunningProcesses_v3"})
    entry = source(fake).read()["gpus"][0]
    assert entry["processes"] == [{"pid": 5762, "name": "python", "usedMemory": 1005 * MIB, "smUtilization": 0,
                                   "memUtilization": 0}]
    assert "processes" not in entry["unsupported"]


def test_no_process_call_at_all_marks_processes_unsupported_nvitop_181() -> None:
    """FunctionNotFound for every process call (nvitop #181 log): processes null with the reason."""
    missing = {f"nvmlDeviceGet{k}RunningProcesses{v}" for k in ("Compute", "Graphics") for v in ("_v2", "_v3")}
    entry = source(FakeNvml([FakeGpu(processes=[(1, 2)])], missing=missing)).read()["gpus"][0]
    assert entry["processes"] is None and core_unsupported(entry) == {"processes": "function_not_found"}
    assert entry["available"] is True and entry["memoryUsed"] == 9184 * MIB


def test_used_gpu_memory_none_on_windows_wddm() -> None:
    """nvidia-ml-py sets usedGpuMemory to None for NVML_VALUE_NOT_AVAILABLE (always on WDDM)."""
    entry = source(FakeNvml([FakeGpu(processes=[(5762, None)])])).read()["gpus"][0]
    assert entry["processes"] == [{"pid": 5762, "name": "python", "usedMemory": None,
                                                               "smUtilization": 0, "memUtilization": 0}]


def test_garbage_from_r535_struct_change_is_dropped_pynvml_50() -> None:
    """A shifted ``_v3`` struct gives impossible pids and swapped memory (pynvml #50, nvitop PR #79)."""
    gpu = FakeGpu(processes=[(2**32 - 7, 4096), (5762, 2**62)])
    assert source(FakeNvml([gpu])).read()["gpus"][0]["processes"] == [
        {"pid": 5762, "name": "python", "usedMemory": None, "smUtilization": 0, "memUtilization": 0}]


def test_processes_refresh_on_the_slower_interval() -> None:
    fake, clock = FakeNvml([FakeGpu(processes=[(5762, MIB)])]), Clock()
    src = source(fake, clock)
    for _ in range(5):
        assert src.read()["gpus"][0]["processes"][0]["pid"] == 5762
        clock.now += 1
    assert fake.calls.count("nvmlDeviceGetComputeRunningProcesses_v3") == 1
    clock.now += 1
    src.read()
    assert fake.calls.count("nvmlDeviceGetComputeRunningProcesses_v3") == 2


@pytest.mark.parametrize("decodes", [True, False], ids=["str-nvidia-ml-py", "bytes-pynvml-11.4.1"])
def test_names_as_str_or_bytes_atop_236_optimum_benchmark_240(decodes: bool) -> None:
    """Old pynvml returns bytes, nvidia-ml-py str; both must give the same model (atop PR #236, optimum PR #240)."""
    entry = source(FakeNvml([FakeGpu(name=b"NVIDIA A100-SXM4-80GB")], decodes_names=decodes)).read()["gpus"][0]
    assert entry["model"] == "NVIDIA A100-SXM4-80GB"
    assert entry["uuid"] == "GPU-19d6d965-2acc-f646-00f8-4c76979aabb4"


def test_undecodable_name_on_wsl_keeps_the_gpu_pynvml_53() -> None:
    """convertStrBytes raises UnicodeDecodeError on WSL garbage names (pynvml #53); the GPU stays readable."""
    entry = source(FakeNvml([FakeGpu(name=b"NVIDIA \xf8\xff GPU")])).read()["gpus"][0]
    assert entry["model"] == "NVIDIA \ufffd\ufffd GPU" and entry["available"] is True


def test_mig_parent_utilization_not_supported_with_notfound_gaps_nvitop_5_go_nvml_60() -> None:
    """MIG parent: utilization NotSupported (nvitop #5); instances only at some of the max slots (go-nvml #60)."""
    migs = {i: FakeMig(f"MIG-{i}", 19968 * MIB, 12 * MIB, 19955 * MIB) for i in (0, 2, 5)}
    parent = FakeGpu(name=b"NVIDIA A100-SXM4-80GB", mig_mode=1, migs=migs,
                     errors={"nvmlDeviceGetUtilizationRates": real.NVML_ERROR_NOT_SUPPORTED})
    entry = source(FakeNvml([parent])).read()["gpus"][0]
    assert entry["utilization"] is None and entry["memoryUtilization"] is None
    assert core_unsupported(entry) == {"utilization": "not_supported", "memoryUtilization": "not_supported"}
    assert [m["index"] for m in entry["migDevices"]] == [0, 2, 5]
    assert entry["migDevices"][1] == {"index": 2, "uuid": "MIG-2", "memoryTotal": 19968 * MIB,
                                      "memoryUsed": 12 * MIB, "memoryFree": 19955 * MIB, "memoryPercent": 0.1}


def test_mig_mode_asked_once_on_gpus_without_mig() -> None:
    fake = FakeNvml([FakeGpu()])
    src = source(fake)
    src.read()
    src.read()
    assert fake.calls.count("nvmlDeviceGetMigMode") == 1
    assert src.read()["gpus"][0]["migDevices"] == []


@pytest.mark.parametrize("v2_fails", [True, False])
def test_unified_memory_gb10_memory_not_supported_dra_driver_1073(v2_fails: bool) -> None:
    """GB10 answers NotSupported to memory v1 and, per nvitop PR #208, sometimes v2 (cosmos #180: v2 works)."""
    errors = {"nvmlDeviceGetMemoryInfo": real.NVML_ERROR_NOT_SUPPORTED}
    if v2_fails:
        errors["nvmlDeviceGetMemoryInfo_v2"] = real.NVML_ERROR_NOT_SUPPORTED
    entry = source(FakeNvml([FakeGpu(name=b"NVIDIA GB10", errors=errors)])).read()["gpus"][0]
    if v2_fails:
        assert entry["memoryTotal"] is None and entry["memoryPercent"] is None
        assert set(core_unsupported(entry)) == {"memoryTotal", "memoryUsed", "memoryFree", "memoryPercent"}
    else:
        assert entry["memoryTotal"] == 10240 * MIB and core_unsupported(entry) == {}


def test_mig_mode_h100_max_mig_device_count_not_supported_keeps_the_gpu() -> None:
    """Measured on a host with an H100 in MIG mode: nvmlDeviceGetMaxMigDeviceCount answered NotSupported
    and the whole GPU came out failed with every field null, though NVML answered 53 °C and 433.78 W."""
    h100 = FakeGpu(name=b"NVIDIA H100 80GB HBM3", uuid=b"GPU-h100-mig", mig_mode=1, temperature=53, power_mw=433780,
                   errors={"nvmlDeviceGetMaxMigDeviceCount": real.NVML_ERROR_NOT_SUPPORTED,
                           "nvmlDeviceGetUtilizationRates": real.NVML_ERROR_NOT_SUPPORTED})
    src = source(FakeNvml([FakeGpu(), h100]))
    for _ in range(2):
        _, gpu = src.read()["gpus"]
        assert gpu["available"] is True and gpu["error"] is None
        assert (gpu["temperature"], gpu["powerDraw"]) == (53, 433.8)
        assert gpu["migDevices"] is None and gpu["unsupported"]["migDevices"] == "not_supported"
        assert gpu["fieldErrors"] == {}


def test_failure_of_an_optional_call_nulls_only_that_field() -> None:
    """A process list or MIG query that fails (not "unsupported") is that field's error, shown in health."""
    gpu = FakeGpu(mig_mode=1, errors={"nvmlDeviceGetMaxMigDeviceCount": real.NVML_ERROR_UNKNOWN,
                                      "nvmlDeviceGetComputeRunningProcesses_v3": real.NVML_ERROR_UNKNOWN,
                                      "nvmlDeviceGetGraphicsRunningProcesses_v3": real.NVML_ERROR_UNKNOWN})
    entry = source(FakeNvml([gpu])).read()["gpus"][0]
    assert entry["available"] is True and entry["temperature"] == 27
    assert entry["processes"] is None and entry["migDevices"] is None
    assert entry["fieldErrors"] == {"migDevices": "NVML: Unknown Error", "processes": "NVML: Unknown Error"}
    assert "processes" not in entry["unsupported"]
