"""Stands in for nvidia-ml-py inside a gunicorn server started by a test (PYTHONPATH=this folder):
one fake GPU whose utilization call blocks its OS thread for SLOW_NVML_SEC, the way NVML calls of
100-600 ms do in the field (NVIDIA/gpu-monitoring-tools#95, nvitop#76)."""
import os
import sys
from pathlib import Path

from gevent import monkey

_here = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.abspath(p) != _here]
del sys.modules["pynvml"]
import pynvml  # noqa: E402 - the real module, for its error classes and constants

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.sampling.fakes_nvml import FakeGpu, FakeNvml  # noqa: E402

_blocking_sleep = monkey.get_original("time", "sleep")  # blocks the OS thread, as a C call does
_delay = float(os.environ.get("SLOW_NVML_SEC", "0.5"))


class SlowNvml(FakeNvml):
    def nvmlDeviceGetUtilizationRates(self, h):
        _blocking_sleep(_delay)
        return super().nvmlDeviceGetUtilizationRates(h)


sys.modules["pynvml"] = SlowNvml([FakeGpu()])
