"""History older than raw retention: answered from the per-minute tier (to 90 days) and the per-hour
tier (to 730 days), with the resolution said; buckets finer than the tier refused; listings empty
there; the exact retention edges on ingest. The clock is fixed so every edge is exact."""
from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from metrics_app import create_app
from metrics_app.extensions import db
from metrics_app.storage import tiers
from metrics_app.storage.models import HourRollup, Rollup
from metrics_app.storage.retention import run_retention
from metrics_app.storage.tiers import Retention
from metrics_app.storage.timefmt import iso_utc

from ..dbsetup import config_for, dispose, empty_tables

NOW_MS = int(datetime(2026, 6, 15, 12, tzinfo=timezone.utc).timestamp() * 1000)
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
DEFAULT = Retention(168, 90, 730)


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(tiers, "time", SimpleNamespace(time=lambda: NOW_MS / 1000))


@pytest.fixture
def tiered(database_url):
    """The service with the default tiers: 168 h of records, 90 days of minutes, 730 days of hours."""
    settings = {"METRICS_RETENTION_HOURS": 168, "ROLLUP_1M_RETENTION_DAYS": 90, "ROLLUP_1H_RETENTION_DAYS": 730}
    app = create_app(type("TieredConfig", (config_for(database_url),), settings))
    yield app
    empty_tables(app)
    dispose(app)


def power(samples: list[tuple[int, float]], host: str = "h1") -> list[dict]:
    return [{"timestamp": iso_utc(ts), "gpuIndex": 0, "metric": "power", "watts": w, "hostname": host}
            for ts, w in samples]


def every(start_ms: int, step_ms: int, n: int) -> list[tuple[int, float]]:
    """``n`` power samples ``step_ms`` apart, watts 100, 101, ... (exact in binary floating point)."""
    return [(start_ms + i * step_ms, 100.0 + i) for i in range(n)]


def get(client, query: str) -> dict:
    response = client.get(f"/metrics?hostname=h1&metric=power&{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def expected(values: list[float]) -> dict[str, float | int]:
    return {"avg": sum(values) / len(values), "min": min(values), "max": max(values), "sum": sum(values),
            "count": len(values)}


def span(lo: int, hi: int) -> str:
    return f"start={iso_utc(lo)}&end={iso_utc(hi)}"


TWENTY_DAYS = NOW_MS - 20 * DAY
#: Six minutes of samples every 20 s, twenty days ago.
RECENT_MINUTES = every(TWENTY_DAYS, 20_000, 18)


def assert_minute_answers(client) -> None:
    whole = span(TWENTY_DAYS, TWENTY_DAYS + 6 * MINUTE - 1)
    for name, value in expected([w for _, w in RECENT_MINUTES]).items():
        body = get(client, f"aggregate={name}&field=watts&{whole}")
        assert (body["value"], body["count"], body["resolution"]) == (value, 18, "1m"), name
    # Inside a rollup tier a minute counts when it starts in the range: 00:30..04:50 holds minutes 1-4.
    inner = get(client, f"aggregate=avg&field=watts&{span(TWENTY_DAYS + 30_000, TWENTY_DAYS + 290_000)}")
    assert (inner["value"], inner["count"]) == (expected([100.0 + i for i in range(3, 15)])["avg"], 12)
    buckets = get(client, f"aggregate=max&field=watts&bucket=2m&{whole}")
    assert buckets["resolution"] == "1m"
    assert [(b["start"], b["value"], b["count"]) for b in buckets["buckets"]] == [
        (iso_utc(TWENTY_DAYS + k * 2 * MINUTE), 105.0 + 6 * k, 6) for k in range(3)]
    too_fine = client.get(f"/metrics?metric=power&aggregate=avg&field=watts&bucket=30s&{whole}")
    assert too_fine.status_code == 400
    assert too_fine.get_json()["details"] == {"bucket": ["finest available for this range: 1m"]}
    assert get(client, whole)["items"] == []


def test_records_twenty_days_old_are_kept_as_minutes_and_answer_from_them(tiered):
    client = tiered.test_client()
    answer = client.post("/metrics", json=power(RECENT_MINUTES)).get_json()
    assert answer == {"saved": 0, "duplicates": 0, "received": 18, "rollupOnly": 18}
    assert_minute_answers(client)


def test_minutes_answer_after_retention_removed_the_records(app, tiered):
    """Stored as records while retention was long (the ``app`` fixture keeps a century), then trimmed."""
    assert app.test_client().post("/metrics", json=power(RECENT_MINUTES)).get_json()["saved"] == 18
    with tiered.app_context():
        result = run_retention(db.engine, DEFAULT, chunk_rows=5, now_ms=NOW_MS)
    assert (result.records, result.minutes, result.hours) == (18, 0, 0)
    assert_minute_answers(tiered.test_client())


TWO_YEARS = NOW_MS - 700 * DAY
#: Three hours of samples every 10 minutes, 700 days ago.
OLD_HOURS = every(TWO_YEARS, 10 * MINUTE, 18)


def test_records_two_years_old_answer_from_hours(tiered):
    client = tiered.test_client()
    assert client.post("/metrics", json=power(OLD_HOURS)).get_json()["rollupOnly"] == 18
    whole = span(TWO_YEARS, TWO_YEARS + 3 * HOUR - 1)
    for name, value in expected([w for _, w in OLD_HOURS]).items():
        body = get(client, f"aggregate={name}&field=watts&{whole}")
        assert (body["value"], body["count"], body["resolution"]) == (value, 18, "1h"), name
    hours = get(client, f"aggregate=sum&field=watts&bucket=1h&{whole}")
    assert [(b["value"], b["count"]) for b in hours["buckets"]] == [
        (sum(100.0 + 6 * k + i for i in range(6)), 6) for k in range(3)]
    # An hour counts when it starts in the range: from 00:30, the second and third hour.
    assert get(client, f"aggregate=count&{span(TWO_YEARS + 30 * MINUTE, TWO_YEARS + 3 * HOUR)}")["value"] == 12
    too_fine = client.get(f"/metrics?metric=power&aggregate=avg&field=watts&bucket=1m&{whole}")
    assert too_fine.status_code == 400 and "1h" in too_fine.get_json()["details"]["bucket"][0]
    with tiered.app_context():
        assert db.session.scalar(select(Rollup.minute_ms).limit(1)) is None  # older than 90 days: hours only


def test_a_range_straddling_tiers_adds_their_parts(tiered):
    """Minutes from 20 days ago, records from an hour ago: answered at the coarser resolution."""
    client = tiered.test_client()
    recent = every(NOW_MS - HOUR + 10_000, 1_000, 5)
    assert client.post("/metrics", json=power(RECENT_MINUTES + recent)).get_json()["rollupOnly"] == 18
    body = get(client, f"aggregate=max&field=watts&{span(TWENTY_DAYS, NOW_MS)}")
    assert (body["value"], body["count"], body["resolution"]) == (117.0, 23, "1m")
    assert get(client, f"aggregate=count&{span(NOW_MS - 2 * HOUR, NOW_MS)}")["resolution"] == "raw"
    # No start: the range begins with the oldest data there is, here the minutes.
    assert get(client, "aggregate=count")["resolution"] == "1m"
    listing = get(client, f"{span(TWENTY_DAYS, NOW_MS)}")
    assert [item["payload"]["watts"] for item in listing["items"]] == [w for _, w in recent]


def test_without_old_data_an_open_range_is_raw_and_takes_fine_buckets(tiered):
    client = tiered.test_client()
    assert get(client, "aggregate=count")["resolution"] == "raw"
    client.post("/metrics", json=power(every(NOW_MS - HOUR, 1_000, 90)))
    body = get(client, "aggregate=count&bucket=30s")
    assert body["resolution"] == "raw" and [b["count"] for b in body["buckets"]] == [30, 30, 30]


def test_exact_retention_edges_on_ingest(tiered):
    cuts = DEFAULT.cutoffs(NOW_MS)
    assert (cuts.raw, cuts.minute, cuts.hour) == (NOW_MS - 168 * HOUR, NOW_MS - 90 * DAY, NOW_MS - 730 * DAY)
    client = tiered.test_client()
    edges = [cuts.raw, cuts.raw - 1, cuts.minute, cuts.minute - 1, cuts.hour, cuts.hour - 1]
    answer = client.post("/metrics", json=power([(ts, 100.0) for ts in edges])).get_json()
    assert answer == {"saved": 1, "duplicates": 0, "received": 6, "rollupOnly": 4, "expired": 1}
    assert [item["timestamp"] for item in get(client, "order=asc")["items"]] == [iso_utc(cuts.raw)]
    with tiered.app_context():
        minutes = sorted(db.session.scalars(select(Rollup.minute_ms)))
        hours = sorted(db.session.scalars(select(HourRollup.hour_ms)))
    assert minutes == [cuts.minute, cuts.raw - MINUTE, cuts.raw]  # cuts.minute - 1 went to its hour only
    assert hours == [cuts.hour, cuts.minute - HOUR, cuts.minute, cuts.raw - HOUR, cuts.raw]
    # Retention at the same instant deletes nothing: each edge is kept by its tier.
    with tiered.app_context():
        result = run_retention(db.engine, DEFAULT, chunk_rows=100, now_ms=NOW_MS)
    assert (result.records, result.minutes, result.hours) == (0, 0, 0)


def test_importing_an_old_file_reports_what_only_the_rollups_kept(tiered, tmp_path):
    import orjson

    path = tmp_path / "old.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in power(RECENT_MINUTES + [(NOW_MS - 800 * DAY, 1.0)])))
    result = tiered.test_cli_runner().invoke(args=["metrics", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert ("19 lines, 0 records loaded, 0 duplicates, 0 lines skipped, 18 older than raw retention kept only "
            "as rollups, 1 older than every tier dropped") in result.output
    assert_minute_answers(tiered.test_client())


@pytest.mark.parametrize("days, resolution", [(20, "1m"), (400, "1h")])
def test_optional_clocks_count_per_field_in_each_rollup_tier(tiered, days, resolution):
    """A clocks record may carry any of its clocks: each rollup tier counts a field's own values."""
    at = NOW_MS - days * DAY
    body = [{"timestamp": iso_utc(at), "gpuIndex": 0, "hostname": "h1", "metric": "clocks",
             "graphicsMHz": 1000, "memoryMHz": 2000},
            {"timestamp": iso_utc(at + 20_000), "gpuIndex": 0, "hostname": "h1", "metric": "clocks",
             "graphicsMHz": 1100, "smMHz": 1500}]
    client = tiered.test_client()
    assert client.post("/metrics", json=body).get_json()["rollupOnly"] == 2
    whole = f"metric=clocks&{span(at - HOUR, at + HOUR)}"
    answers = {(agg, field): client.get(f"/metrics?hostname=h1&{whole}&aggregate={agg}"
                                        + (f"&field={field}" if field else "")).get_json()
               for agg, field in (("count", None), ("avg", "graphicsMHz"), ("avg", "memoryMHz"),
                                  ("max", "smMHz"))}
    assert {key: (a["value"], a["count"], a["resolution"]) for key, a in answers.items()} == {
        ("count", None): (2, 2, resolution), ("avg", "graphicsMHz"): (1050.0, 2, resolution),
        ("avg", "memoryMHz"): (2000.0, 1, resolution), ("max", "smMHz"): (1500.0, 1, resolution)}


def test_zero_raw_hours_keeps_every_tier_forever(database_url):
    """METRICS_RETENTION_HOURS=0 keeps records forever: a two-year-old one stays a raw record."""
    settings = {"METRICS_RETENTION_HOURS": 0, "ROLLUP_1M_RETENTION_DAYS": 90, "ROLLUP_1H_RETENTION_DAYS": 730}
    app = create_app(type("ForeverConfig", (config_for(database_url),), settings))
    try:
        client = app.test_client()
        old = every(NOW_MS - 800 * DAY, 20_000, 3)
        assert client.post("/metrics", json=power(old)).get_json() == {"saved": 3, "duplicates": 0, "received": 3}
        assert get(client, "aggregate=max&field=watts")["resolution"] == "raw"
        assert [item["payload"]["watts"] for item in get(client, "limit=10")["items"]] == [100.0, 101.0, 102.0]
        with app.app_context():
            assert run_retention(db.engine, Retention.from_config(app.config), 1000).records == 0
    finally:
        empty_tables(app)
        dispose(app)
