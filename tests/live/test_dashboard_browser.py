"""The dashboard in a real headless Chromium (Debian's), driven by Playwright."""
from __future__ import annotations

import json
import re
import shutil
import urllib.request
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil
import pytest

from ..server import GunicornServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="chromium absent (Debian package 'chromium'; .ci/run installs it)")
#: A fake nvidia-ml-py for the server (PYTHONPATH): three GPUs, with processes, with none, unable to list them.
FAKE_NVML = Path(__file__).resolve().parent / "fake_nvml"


def post_history(server: GunicornServer) -> None:
    """Thirty minutes of utilization from a crawler, so the history chart has buckets to draw."""
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    records = [{"timestamp": (now - timedelta(minutes=m)).isoformat(), "gpuIndex": 0, "metric": "utilization",
                "gpuPercent": 40 + m % 20, "memoryPercent": 10, "hostname": "crawler-1", "gpuName": "Tesla T4"}
               for m in range(30)]
    request = urllib.request.Request(server.url("/metrics"), data=json.dumps(records).encode(),
                                     headers={"Content-Type": "application/json"})
    assert urllib.request.urlopen(request).status == 201


@contextmanager
def dashboard(server: GunicornServer, path: str = "/"):
    """Headless Chromium on the dashboard; yields the page and the console errors it collects."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.goto(server.url(path))
            yield page, problems
        finally:
            browser.close()


@pytest.mark.slow
@needs_chromium
def test_dashboard_streams_live_and_draws_history(tmp_path, screenshot_dir, app):
    """``app`` empties the tables afterwards: on PostgreSQL this server shares the session's schema."""
    with GunicornServer(tmp_path) as server:
        post_history(server)
        with dashboard(server) as (page, problems):

            page.wait_for_function("window.dashboard && window.dashboard.liveUpdates >= 3", timeout=15000)
            assert int(page.get_attribute("#cpu", "data-updates")) >= 3
            assert page.get_attribute("#connection", "data-status") == "live"

            page.wait_for_function("document.querySelector('#h-host').options.length > 0", timeout=10000)
            page.select_option("#h-host", "crawler-1")
            page.select_option("#h-metric", "utilization")
            page.select_option("#h-field", "gpuPercent")
            page.click("#history-form button[type=submit]")
            page.wait_for_function("Number(document.querySelector('#history').dataset.points) > 0", timeout=10000)
            assert int(page.get_attribute("#history", "data-points")) == 30

            page.screenshot(path=str(screenshot_dir / "dashboard.png"), full_page=True)
            assert problems == []


@pytest.mark.slow
@needs_chromium
def test_dashboard_shows_the_current_values_and_each_gpus_processes(tmp_path, screenshot_dir):
    """Served with three fake NVML GPUs: every chart's current value within 2 s of the page opening,
    and each GPU's process table as NVML listed it, unknowns shown as unknown rather than 0."""
    from playwright.sync_api import expect

    me = psutil.Process()
    with GunicornServer(tmp_path, PYTHONPATH=str(FAKE_NVML), FAKE_NVML_PID=str(me.pid), ENABLE_NVIDIA="true",
                        ENABLE_AMD="false") as server:
        with dashboard(server) as (page, problems):
            expect(page.locator("h3:has(#cpu-now)")).to_have_text(re.compile(r"CPU utilization \d+\.\d %"),
                                                                   timeout=2000)
            expect(page.locator("h3:has(#memory-now)")).to_have_text(
                re.compile(r"Memory used \d+\.\d GiB of \d+\.\d GiB"), timeout=2000)
            cards = page.locator("#gpus section.gpu")
            expect(cards).to_have_count(3, timeout=2000)
            expect(cards.nth(0).locator(".grid h3")).to_have_text(
                ["Utilization 65 %", "Memory 9.0 GiB of 10.0 GiB", "Temperature 27 °C", "Power 142 W of 320 W"])
            rows = cards.nth(0).locator("table.processes tbody tr")
            expect(rows).to_have_count(2)
            assert [rows.nth(i).locator("td").all_inner_texts() for i in range(2)] == [
                [str(me.pid), me.name(), "1536 MiB"], ["4000000", "—", "—"]]
            expect(cards.nth(1).locator("div.processes")).to_have_text("no processes")
            expect(cards.nth(2).locator("div.processes")).to_have_text("not reported (not_supported)")
            expect(cards.nth(2).locator(".grid h3").last).to_have_text("Power —")

            page.screenshot(path=str(screenshot_dir / "dashboard-values-and-processes.png"), full_page=True)
            assert problems == []


@pytest.mark.slow
@needs_chromium
def test_dashboard_with_read_token_from_the_url_fragment(tmp_path):
    """With READ_TOKEN set, /#token=… sends it as a Bearer header and on the WebSocket handshake."""
    with GunicornServer(tmp_path, READ_TOKEN="s3cret") as server:
        with dashboard(server, "/#token=s3cret") as (page, problems):
            page.wait_for_function("window.dashboard && window.dashboard.liveUpdates >= 2", timeout=15000)
            page.wait_for_function("document.querySelector('#cpu').dataset.points > 2", timeout=10000)
            assert problems == []


def test_json_clients_still_get_the_service_info(client):
    assert client.get("/", headers={"Accept": "application/json"}).get_json()["status"] == "running"
    assert client.get("/").get_json()["status"] == "running"  # curl's */*
    html = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert html.mimetype == "text/html" and b"dashboard.js" in html.data
