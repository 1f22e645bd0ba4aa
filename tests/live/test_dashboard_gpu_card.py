"""The dashboard's GPU card in headless Chromium: throttling, ECC / remapped-row / XID health, PCIe link,
and what a failed GPU shows in place of its values."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ..fakes import gpu_entry
from ..server import GunicornServer
from .test_dashboard_browser import CHROMIUM, dashboard

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium absent (Debian package 'chromium')")]

TROUBLED = gpu_entry(0, model="NVIDIA H100 80GB HBM3", throttleReasons=["gpu_idle", "hw_thermal_slowdown"],
                     throttled=True, eccEnabled=True, eccCorrectedVolatile=3, eccUncorrectedVolatile=1,
                     remappedRowsCorrectable=0, remappedRowsUncorrectable=1, remappedRowsPending=True,
                     remappedRowsFailure=False, pcieLinkGen=4, pcieLinkGenMax=5, pcieLinkWidth=8, pcieLinkWidthMax=16,
                     xidErrors={"count": 2, "last": 79, "lastAt": "2026-12-01T22:00:00.000+00:00"}, fieldErrors={})
RECENT_XID = {"count": 1, "last": 48, "lastAt": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
QUIET = gpu_entry(1, throttleReasons=["gpu_idle"], throttled=False, eccEnabled=False,
                  xidErrors={"count": 0, "last": None, "lastAt": None},
                  pcieLinkGen=1, pcieLinkGenMax=4, pcieLinkWidth=16, pcieLinkWidthMax=16)
FAILED = gpu_entry(2, available=False, error="NVML: GPU is lost", utilization=None, xidErrors=RECENT_XID)


def badges(page, index: int) -> list[tuple[str, str]]:
    return page.evaluate(f"""[...document.querySelectorAll('#gpus section')][{index}]
        .querySelectorAll('.health .badge').values().map(b => [b.textContent, b.className]).toArray()""")


def test_gpu_card_shows_throttling_memory_errors_xids_and_pcie(tmp_path, screenshot_dir):
    snapshot = {"timestamp": "2026-12-01T22:00:01.000+00:00", "cpu": None, "memory": None, "gpu": None,
                "battery": None, "gpus": [TROUBLED, QUIET, FAILED, gpu_entry(3, xidErrors=RECENT_XID)]}
    from playwright.sync_api import expect

    with GunicornServer(tmp_path) as server:
        with dashboard(server) as (page, problems):
            page.wait_for_function("window.dashboard && window.dashboard.liveUpdates >= 1", timeout=15000)
            page.evaluate("(s) => window.dashboard.addSnapshot(s)", snapshot)
            troubled = dict(badges(page, 0))
            assert troubled["throttled: hw_thermal_slowdown"] == "badge warn"
            assert troubled["ECC 3 corrected · 1 uncorrected"] == "badge bad"
            assert troubled["row remap pending (reset)"] == "badge warn"
            # an XID older than 5 minutes is a warning, as /api/health stops being degraded by then
            assert any(text.startswith("XID 79 ×2") and level == "badge warn" for text, level in troubled.items())
            assert troubled["PCIe Gen 4 x8 of Gen 5 x16"] == "badge warn"  # fewer lanes than the slot
            assert dict(badges(page, 1)) == {"clocks: idle": "badge ok", "ECC off": "badge ok", "no XID": "badge ok",
                                              "PCIe Gen 1 x16 of Gen 4 x16": "badge ok"}
            assert badges(page, 2) == [["NVML: GPU is lost", "badge bad"]]
            assert [level for text, level in badges(page, 3) if text.startswith("XID 48 ×1")] == ["badge bad"]
            failed = page.locator("#gpus section.gpu").nth(2)  # its entry still holds memory and power numbers
            expect(failed.locator(".grid h3 .now")).to_have_text(["—"] * 4)
            expect(failed.locator("div.processes")).to_have_text("—")
            page.locator("#gpus").screenshot(path=str(screenshot_dir / "dashboard-gpu-card.png"))
            assert problems == []
