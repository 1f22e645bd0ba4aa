"""GPU tick cost: how long one NVIDIA read of every GPU takes, the depth fields included.

By default 8 fake GPUs (tests/sampling/fakes_nvml.py, real nvidia-ml-py structs and errors) are read
while the PCIe-throughput and XID threads run beside them, the fake throughput call blocking 20 ms
as the real one does: the figure shows that those blocking calls stay out of the tick. With
``--real`` it reads this machine's GPUs through the installed NVML instead.

    venv/bin/python bench/gpu_tick.py                  # 8 fake GPUs, 500 reads
    venv/bin/python bench/gpu_tick.py --gpus 8 --reads 2000 --captures ../shared/fixtures/nvidia-smi
    venv/bin/python bench/gpu_tick.py --real            # on a GPU machine

It prints the median, p99 and maximum of one read, and the NVML calls per read.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from metrics_app.sampling.nvidia import NvidiaSource  # noqa: E402
from tests.sampling.fakes_nvml import FakeGpu, FakeNvml  # noqa: E402
from tests.sampling.nvml_captures import gpus_from_xml  # noqa: E402


def fake_nvml(count: int, captures: Path | None, pcie_block_ms: float) -> FakeNvml:
    """``count`` GPUs, cycling through the captures' GPUs when given (their N/A fields stay NotSupported)."""
    pool = [g for p in sorted(captures.glob("*.xml")) for g in gpus_from_xml(p)] if captures else [FakeGpu()]
    gpus = []
    for i in range(count):
        template = pool[i % len(pool)]
        gpus.append(FakeGpu(**{**vars(template), "uuid": f"GPU-bench-{i}".encode(), "errors": dict(template.errors)}))
    fake = FakeNvml(gpus)
    throughput = fake.nvmlDeviceGetPcieThroughput

    def blocking_throughput(handle, counter):  # the real call measures over a 20 ms window
        time.sleep(pcie_block_ms / 1000.0)
        return throughput(handle, counter)

    fake.nvmlDeviceGetPcieThroughput = blocking_throughput
    return fake


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--captures", type=Path, default=None, help="folder of nvidia-smi XML captures to imitate")
    parser.add_argument("--pcie-block-ms", type=float, default=20.0)
    parser.add_argument("--no-helpers", action="store_true", help="do not run the PCIe and XID threads")
    parser.add_argument("--real", action="store_true", help="read this machine's GPUs through pynvml")
    args = parser.parse_args()

    fake = None if args.real else fake_nvml(args.gpus, args.captures, args.pcie_block_ms)
    source = NvidiaSource(interval_sec=1.0, nvml=fake, name_of_pid=lambda pid: None)
    gpus = source.read()["gpus"]  # init, handles, the once-only calls
    if not gpus:
        sys.exit(f"no GPU: {source.unavailable_reason}")
    helpers = [] if args.no_helpers else source.helper_threads()
    for thread in helpers:
        thread.start()
    try:
        times = []
        calls_before = len(fake.calls) if fake else 0
        for _ in range(args.reads):
            started = time.perf_counter()
            source.read()
            times.append((time.perf_counter() - started) * 1000.0)
        calls = (len(fake.calls) - calls_before) / args.reads if fake else None
    finally:
        for thread in helpers:
            thread.stop()
    times.sort()
    print(json.dumps({
        "gpus": len(gpus), "reads": args.reads, "helpers_running": bool(helpers),
        "read_ms_median": round(statistics.median(times), 3),
        "read_ms_p99": round(times[int(0.99 * (len(times) - 1))], 3), "read_ms_max": round(times[-1], 3),
        "nvml_calls_per_read": calls,
        "pcie_rx_bytes_per_sec_gpu0": source.read()["gpus"][0]["pcieRxBytesPerSec"],
    }))


if __name__ == "__main__":
    main()
