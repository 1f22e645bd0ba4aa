"""Which sources this machine gets, decided once from the configuration."""
from __future__ import annotations

import importlib.util
from typing import Any, Mapping

from .amdsmi_reader import AmdSmiSource
from .host import HostSource
from .nvidia import NvidiaSource
from .rocm import RocmSmiSource
from .source import GpuSource, Source


def amdsmi_importable() -> bool:
    """Looks for the package without importing it: importing amdsmi loads the ROCm library."""
    return importlib.util.find_spec("amdsmi") is not None


def gpu_sources(config: Mapping[str, Any]) -> list[GpuSource]:
    """NVIDIA, then AMD. Built even without the hardware: each says why it is unavailable."""
    sources: list[GpuSource] = []
    if config.get("ENABLE_NVIDIA", True):
        sources.append(NvidiaSource(
            interval_sec=config["SAMPLE_INTERVAL_SEC"],
            process_interval_sec=config["GPU_PROCESS_INTERVAL_SEC"],
            init_retry_sec=config.get("GPU_INIT_RETRY_SEC", 60.0),
            pcie_interval_sec=config.get("GPU_PCIE_INTERVAL_SEC", 5.0),
        ))
    if config.get("ENABLE_AMD", True) and amdsmi_importable():
        sources.append(AmdSmiSource(interval_sec=config["SAMPLE_INTERVAL_SEC"],
                                    process_interval_sec=config["GPU_PROCESS_INTERVAL_SEC"],
                                    init_retry_sec=config.get("GPU_INIT_RETRY_SEC", 60.0)))
    elif config.get("ENABLE_AMD", True):
        # rocm-smi is slow (0.1-3 s a call): its own interval and timeout, never the 1 s tick.
        sources.append(RocmSmiSource(interval_sec=config["ROCM_SMI_INTERVAL_SEC"],
                                     timeout_sec=config["ROCM_SMI_TIMEOUT_SEC"],
                                     executable=config["ROCM_SMI_PATH"]))
    return sources


def build_sources(config: Mapping[str, Any]) -> list[Source]:
    """Host first: its keys fill the snapshot's cpu/memory/battery; GPU sources follow in vendor order."""
    return [HostSource(interval_sec=config["SAMPLE_INTERVAL_SEC"]), *gpu_sources(config)]
