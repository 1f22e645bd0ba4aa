"""GET /metrics?aggregate=…: exact values against hand computation, rollups + raw-edge combination."""
from __future__ import annotations

import pytest
from sqlalchemy import update

from metrics_app.extensions import db
from metrics_app.storage.timefmt import iso_utc
from metrics_app.storage.models import Rollup

from .conftest import T0, row

#: power samples every 20 s over six minutes, watts = 100 + i (exact in binary floating point).
SAMPLES = [(T0 + i * 20_000, 100.0 + i) for i in range(18)]


@pytest.fixture
def power(store):
    store([row("power", ts, watts) for ts, watts in SAMPLES] + [row("power", T0, 999.0, host="h2")])


def _hand(lo: int, hi: int, host_h2: bool = False) -> list[float]:
    values = [w for ts, w in SAMPLES if lo <= ts <= hi]
    return values + ([999.0] if host_h2 and lo <= T0 <= hi else [])


def test_documented_examples(client, populated):
    avg = client.get("/metrics?metric=utilization&aggregate=avg&field=gpuPercent").get_json()
    assert avg == {"aggregate": "avg", "field": "gpuPercent", "value": (55 + 56 + 55) / 3, "count": 180,
                   "resolution": "raw"}
    top = client.get("/metrics?metric=power&aggregate=max&field=watts").get_json()
    assert top == {"aggregate": "max", "field": "watts", "value": 159, "count": 180, "resolution": "raw"}


@pytest.mark.parametrize(("start", "end"), [
    ("00:00:30", "00:04:10"),   # partial minute at both ends, three whole minutes between
    ("00:00:00", "00:05:40"),   # aligned start, partial end
    ("00:01:00", "00:04:59.999"),  # whole minutes only (end inclusive)
    ("00:02:10", "00:02:50"),   # inside one minute: raw rows only
    ("00:00:40", "00:01:20"),   # crosses one boundary, no whole minute
])
@pytest.mark.parametrize("aggregate", ["avg", "min", "max", "sum", "count"])
def test_aggregates_match_hand_computation(client, power, start, end, aggregate):
    lo = T0 + int(float(start.split(":")[1]) * 60_000 + float(start.split(":")[2]) * 1000)
    hi = T0 + int(float(end.split(":")[1]) * 60_000 + float(end.split(":")[2]) * 1000)
    values = _hand(lo, hi)
    expected = {"avg": sum(values) / len(values), "min": min(values), "max": max(values),
                "sum": sum(values), "count": len(values)}[aggregate]
    body = client.get(f"/metrics?hostname=h1&metric=power&aggregate={aggregate}&field=watts"
                      f"&start=2025-01-01T{start}Z&end=2025-01-01T{end}Z").get_json()
    assert body == {"aggregate": aggregate, "field": "watts", "value": expected, "count": len(values),
                    "resolution": "raw"}


def test_whole_minutes_come_from_rollups_and_edges_from_raw_rows(app, client, power):
    """Tamper with the rollup of 00:02: only a range covering that whole minute may see it."""
    with app.app_context():
        db.session.execute(update(Rollup).where(Rollup.minute_ms == T0 + 120_000).values(max1=5000.0))
        db.session.commit()
    covering = client.get("/metrics?hostname=h1&metric=power&aggregate=max&field=watts"
                          "&start=2025-01-01T00:01:30Z&end=2025-01-01T00:03:10Z").get_json()
    inside = client.get("/metrics?hostname=h1&metric=power&aggregate=max&field=watts"
                        "&start=2025-01-01T00:02:00Z&end=2025-01-01T00:02:59Z").get_json()
    assert covering["value"] == 5000.0
    assert inside["value"] == max(_hand(T0 + 120_000, T0 + 179_000))


def test_no_matching_rows_give_null_never_nan(client, power):
    body = client.get("/metrics?metric=temperature&aggregate=avg&field=celsius").get_json()
    assert body == {"aggregate": "avg", "field": "celsius", "value": None, "count": 0,
                    "resolution": "raw"}
    assert client.get("/metrics?metric=power&aggregate=sum&field=watts&hostname=zz").get_json()["value"] is None
    assert client.get("/metrics?metric=power&aggregate=count&hostname=zz").get_json()["value"] == 0


def test_all_gpus_combined_without_label_filters(client, power):
    body = client.get("/metrics?metric=power&aggregate=max&field=watts").get_json()
    assert body == {"aggregate": "max", "field": "watts", "value": 999.0, "count": 19,
                    "resolution": "raw"}


@pytest.mark.parametrize("bucket", ["60s", "1m", "2m", "30s", "45s"])
def test_buckets_match_hand_computation(client, power, bucket):
    size = {"60s": 60_000, "1m": 60_000, "2m": 120_000, "30s": 30_000, "45s": 45_000}[bucket]
    lo, hi = T0 + 30_000, T0 + 290_000
    expected: dict[int, list[float]] = {}
    for ts, watts in SAMPLES:
        if lo <= ts <= hi:
            expected.setdefault(ts // size * size, []).append(watts)
    body = client.get(f"/metrics?hostname=h1&metric=power&aggregate=avg&field=watts&bucket={bucket}"
                      "&start=2025-01-01T00:00:30Z&end=2025-01-01T00:04:50Z").get_json()
    assert body["bucket"] == bucket and body["count"] == sum(len(v) for v in expected.values())
    got = [(b["start"], b["value"], b["count"]) for b in body["buckets"]]
    assert got == [(iso_utc(start), sum(v) / len(v), len(v)) for start, v in sorted(expected.items())]


def test_buckets_follow_order(client, power):
    body = client.get("/metrics?metric=power&aggregate=count&bucket=1m&order=desc").get_json()
    starts = [b["start"] for b in body["buckets"]]
    assert starts == sorted(starts, reverse=True) and len(starts) == 6


def test_too_many_buckets_is_a_400(client, power):
    response = client.get("/metrics?metric=power&aggregate=count&bucket=1s"
                          "&start=2025-01-01T00:00:00Z&end=2025-01-02T00:00:00Z")
    assert response.status_code == 400 and "bucket" in response.get_json()["details"]
