"""The dashboard in a real headless Chromium (Debian's), driven by Playwright."""
from __future__ import annotations

import json
import shutil
import urllib.request
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest

from ..server import GunicornServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="chromium absent (Debian package 'chromium'; .ci/run installs it)")


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
