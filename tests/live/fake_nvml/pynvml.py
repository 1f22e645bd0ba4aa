"""Stands in for nvidia-ml-py inside the dashboard test's server (PYTHONPATH=this folder): three fake
GPUs. GPU 0 runs two processes: FAKE_NVML_PID (1536 MiB) and a pid no process has, whose name and
memory are unknown; GPU 1 runs none; GPU 2 can neither list processes nor read its power draw."""
import os
import sys
from pathlib import Path

_folder = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _folder]
del sys.modules["pynvml"]
import pynvml  # noqa: E402 - the real module: tests.sampling.fakes_nvml takes its errors and structs

sys.path.insert(0, str(_folder.parents[2]))
from tests.sampling.fakes_nvml import MIB, FakeGpu, FakeNvml  # noqa: E402

#: A pid no process has: under the kernel's limit (4,194,304), far above the pids a test machine hands out.
UNKNOWN_PID = 4_000_000
_CANNOT_LIST = {f"nvmlDevice{call}": pynvml.NVML_ERROR_NOT_SUPPORTED for call in (
    "GetComputeRunningProcesses_v3", "GetComputeRunningProcesses_v2",
    "GetGraphicsRunningProcesses_v3", "GetGraphicsRunningProcesses_v2")}

sys.modules["pynvml"] = FakeNvml([
    FakeGpu(uuid=b"GPU-00000000-0000-0000-0000-000000000000",
            processes=[(int(os.environ["FAKE_NVML_PID"]), 1536 * MIB), (UNKNOWN_PID, None)]),
    FakeGpu(uuid=b"GPU-11111111-1111-1111-1111-111111111111"),
    FakeGpu(uuid=b"GPU-22222222-2222-2222-2222-222222222222",
            errors={**_CANNOT_LIST, "nvmlDeviceGetPowerUsage": pynvml.NVML_ERROR_NOT_SUPPORTED}),
])
