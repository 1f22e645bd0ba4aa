"""The dashboard's Fleet view in headless Chromium, fed by records this test posts."""
from __future__ import annotations

import time

import pytest

from ..live.test_dashboard_browser import CHROMIUM, dashboard
from ..server import GunicornServer
from .conftest import post_records
from .records import record

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("emptied_after"),
              pytest.mark.skipif(CHROMIUM is None, reason="chromium absent (Debian package 'chromium')")]


def row_selector(host: str, gpu: int = 0) -> str:
    return f"#fleet-rows tr[data-host='{host}'][data-gpu='{gpu}']"


def test_fleet_view_fills_at_once_then_shows_each_posted_record_within_two_seconds(tmp_path, screenshot_dir):
    with GunicornServer(tmp_path, SAMPLERS_ENABLED="false", RECORD_INTERVAL_SEC="0") as server:
        base = server.url("").rstrip("/")
        # node-a reports every 2 s: utilization history for its sparkline, every kind once, a process.
        post_records(base, [record(host="node-a", gpuPercent=float(p), ago=2 * (10 - i)) for i, p in
                            enumerate(range(10, 100, 9))])
        post_records(base, [record(host="node-a", metric=m) for m in ("memory", "temperature", "power", "process")])
        post_records(base, [record(host="node-b", gpu=g, metric="temperature", celsius=70.0 + g) for g in range(2)])
        with dashboard(server, "/#view=fleet") as (page, problems):
            page.wait_for_selector(row_selector("node-a"), timeout=10000)
            assert page.is_hidden("#local-view") and page.is_visible("#fleet-view")
            assert page.get_attribute("#f-connection", "data-status") == "live"
            row = page.inner_text(row_selector("node-a"))
            assert "91 %" in row and "61 °C" in row and "211 W" in row and "4242 (512 MiB)" in row
            assert page.inner_text("#f-count") == "2 hosts · 3 GPUs"

            sent = time.monotonic()
            post_records(base, [record(host="node-c", gpu=5, metric="utilization", gpuPercent=42.0)])
            page.wait_for_selector(row_selector("node-c", 5), timeout=2000)
            assert time.monotonic() - sent < 2.0
            assert "42 %" in page.inner_text(row_selector("node-c", 5))
            for percent in (30.0, 60.0):  # the sparkline grows with the stream
                post_records(base, [record(host="node-a", gpuPercent=percent)])
                time.sleep(0.05)
            spark = row_selector("node-a") + " canvas[data-metric=utilization]"
            page.wait_for_function(f"Number(document.querySelector(\"{spark}\").dataset.points) >= 2", timeout=2000)
            assert "60 %" in page.inner_text(row_selector("node-a"))

            page.fill("#f-host", "node-b")
            page.wait_for_function("document.querySelectorAll('#fleet-rows tr').length === 2", timeout=2000)
            page.fill("#f-host", "")
            page.select_option("#f-sort", "temperature")
            page.wait_for_function("document.querySelector('#fleet-rows tr').dataset.host === 'node-b'", timeout=2000)

            page.screenshot(path=str(screenshot_dir / "fleet.png"), full_page=True)
            page.click("[data-view=local]")
            assert page.is_visible("#local-view") and page.is_hidden("#fleet-view")
            assert problems == []
