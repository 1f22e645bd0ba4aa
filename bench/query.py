"""Query latency of the history read side on an existing database (make one with bench/generate.py).

    venv/bin/python bench/generate.py --records 10000000 --db sqlite:////tmp/metrics-10m.db
    venv/bin/python bench/query.py --db sqlite:////tmp/metrics-10m.db

Requests go through the Flask app in-process (routing, validation, SQL, JSON), without a network
hop, so the figures are what the service adds per request. Time windows are drawn at random inside
the stored range and never aligned to minutes, so the raw-row edges of every aggregate are exercised.
The 30-day and 1-year ranges end now and reach into the rollup tiers (generate them with
``bench/generate.py --history-days 365``); each line says the resolution that answered.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config import Config, environment_config  # noqa: E402

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _scenarios(gpu: dict, lo: int, hi: int, rng: random.Random, cursor: str) -> dict[str, Callable[[], str]]:
    one = f"hostname={gpu['hostname']}&gpuIndex={gpu['gpuIndex']}"
    month, year = f"start={_iso(hi - 30 * DAY_MS)}&end={_iso(hi)}", f"start={_iso(hi - 365 * DAY_MS)}&end={_iso(hi)}"

    def hour() -> str:
        start = rng.randrange(lo, max(lo + 1, hi - HOUR_MS))
        return f"start={_iso(start)}&end={_iso(start + HOUR_MS)}"

    return {
        "page 500, no filter": lambda: "/metrics?limit=500",
        "page 500, one GPU+metric": lambda: f"/metrics?{one}&metric=power&limit=500",
        "page 500, one GPU+metric, 1 h window": lambda: f"/metrics?{one}&metric=memory&{hour()}",
        "page 500, next page via cursor": lambda: f"/metrics?limit=500&cursor={cursor}",
        "page 500, desc, one metric (all GPUs)": lambda: "/metrics?metric=temperature&order=desc&limit=500",
        "aggregate avg, one GPU+metric, 1 h": lambda: f"/metrics?{one}&metric=power&aggregate=avg&field=watts&{hour()}",
        "aggregate max, one GPU+metric, whole range": lambda: f"/metrics?{one}&metric=power&aggregate=max&field=watts",
        "API example: avg gpuPercent, all GPUs, whole range": lambda: "/metrics?metric=utilization&aggregate=avg&field=gpuPercent",
        "API example: max watts, all GPUs, whole range": lambda: "/metrics?metric=power&aggregate=max&field=watts",
        "buckets 5m, one GPU+metric, 1 h": lambda: f"/metrics?{one}&metric=power&aggregate=avg&field=watts&bucket=5m&{hour()}",
        "buckets 1h, one GPU+metric, whole range": lambda: f"/metrics?{one}&metric=power&aggregate=avg&field=watts&bucket=1h",
        "aggregate avg, one GPU+metric, 30 days": lambda: f"/metrics?{one}&metric=power&aggregate=avg&field=watts&{month}",
        "buckets 1d, one GPU+metric, 30 days": lambda: f"/metrics?{one}&metric=power&aggregate=avg&field=watts&bucket=1d&{month}",
        "max watts, all GPUs, 30 days": lambda: f"/metrics?metric=power&aggregate=max&field=watts&{month}",
        "aggregate avg, one GPU+metric, 1 year": lambda: f"/metrics?{one}&metric=power&aggregate=avg&field=watts&{year}",
        "buckets 1d, one GPU+metric, 1 year": lambda: f"/metrics?{one}&metric=power&aggregate=avg&field=watts&bucket=1d&{year}",
        "max watts, all GPUs, 1 year": lambda: f"/metrics?metric=power&aggregate=max&field=watts&{year}",
        "/gpus": lambda: "/gpus",
        "/stats": lambda: "/stats",
        "/health": lambda: "/health",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("DATABASE_URL", Config.SQLALCHEMY_DATABASE_URI))
    parser.add_argument("--requests", type=int, default=200, help="timed requests per query type")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from generate import bytes_per_record

    from metrics_app import create_app
    from metrics_app.extensions import db

    settings = {"SQLALCHEMY_DATABASE_URI": args.db, "SAMPLERS_ENABLED": False, "BACKGROUND_JOBS_ENABLED": False}
    app = create_app(type("BenchConfig", (environment_config(),), settings))
    client = app.test_client()
    with app.app_context():
        used, records = bytes_per_record(db.engine)
    gpus = client.get("/gpus").get_json()["gpus"]
    health = client.get("/health").get_json()
    lo = min(int(datetime.fromisoformat(g["firstSeen"]).timestamp() * 1000) for g in gpus)
    hi = max(int(datetime.fromisoformat(g["lastSeen"]).timestamp() * 1000) for g in gpus)
    cursor = client.get("/metrics?limit=500").get_json()["next_cursor"]
    rng = random.Random(args.seed)
    print(f"{args.db}: {health['counts']['records']:,} records, {len(gpus)} GPUs, "
          f"{(hi - lo) / HOUR_MS:.1f} h of records; {used / max(records, 1):.1f} bytes per record (everything "
          f"included); {args.requests} requests per query type (after 5 warm-up)")
    print(f"{'query':48} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} resolution")
    for name, make_url in _scenarios(rng.choice(gpus), lo, hi, rng, cursor).items():
        timings, resolution = [], ""
        for i in range(args.requests + 5):
            url = make_url()
            began = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - began) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{url} -> {response.status_code}: {response.get_data(as_text=True)}")
            if i >= 5:
                timings.append(elapsed)
            resolution = response.get_json().get("resolution", "") if "aggregate=" in url else ""
        cuts = statistics.quantiles(timings, n=100, method="inclusive")
        print(f"{name:48} {cuts[49]:8.2f} {cuts[98]:8.2f} {max(timings):8.2f} {resolution}")


if __name__ == "__main__":
    main()
