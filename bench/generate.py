"""Fill a database with synthetic crawler records through the service's own write path.

    venv/bin/python bench/generate.py --records 10000000 --db sqlite:////tmp/metrics-10m.db
    venv/bin/python bench/generate.py --records 2000000 --history-days 365 --db sqlite:////tmp/metrics-tiers.db

Records cover HOSTS x GPUS x the six kinds at 1 s spacing, ending now (so retention keeps them), with
realistic integral values (SQLite stores whole-number REALs compactly, as crawlers' values mostly
are). ``--history-days`` adds older samples every ``--history-step`` seconds before them: older than
raw retention, they reach only the per-minute and per-hour tiers (as a backfill would). Rows go
through ``storage.writer.store_rows`` (summaries and rollups included) in big transactions; the
schema is created with the Alembic migrations. Re-running is idempotent for the raw records. The
database's bytes per raw record (every table and index counted) are printed at the end.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config import Config, environment_config  # noqa: E402
from metrics_app.storage.kinds import KINDS  # noqa: E402
from metrics_app.storage.writer import Row  # noqa: E402


def synthetic_rows(count: int, hosts: int, gpus: int, end_ms: int, step_ms: int = 1000) -> Iterator[Row]:
    """``count`` rows, one per (step, host, GPU, kind), the last step at ``end_ms``."""
    per_second = hosts * gpus * len(KINDS)
    seconds = -(-count // per_second)
    start_ms = end_ms - (seconds - 1) * step_ms
    produced = 0
    for s in range(seconds):
        ts = start_ms + s * step_ms
        for h in range(hosts):
            host = f"node-{h:02d}"
            for g in range(gpus):
                wave = (s + 7 * g + 13 * h) % 100
                for kind in KINDS.values():
                    if produced == count:
                        return
                    produced += 1
                    yield Row(host, g, f"GPU-{h:04d}-{g:04d}", "NVIDIA H100 80GB HBM3", kind.code, ts,
                              *_values(kind.name, g, wave))


def _values(kind: str, gpu: int, wave: int) -> tuple[int, float | None, float | None, float | None]:
    if kind == "memory":
        used = 1024 + wave * 700
        return -1, 81559.0, float(used), float(81559 - used)
    if kind == "utilization":
        return -1, float(wave), float(wave // 2), None
    if kind == "temperature":
        return -1, float(35 + wave // 3), None, None
    if kind == "power":
        return -1, 70.0 + wave * 5.5, None, None
    if kind == "clocks":
        return -1, float(1410 + wave * 3), 2619.0, None
    return 10_000 + gpu, float(512 + wave * 10), None, None


def bytes_per_record(engine: Any) -> tuple[int, int]:
    """(bytes the database uses, raw records): SQLite's used pages (free pages excluded), or
    PostgreSQL's total relation sizes (tables, indexes and TOAST) of the service's tables."""
    from sqlalchemy import text

    from metrics_app.extensions import db

    with engine.connect() as conn:
        records = conn.execute(text("SELECT coalesce(sum(record_count), 0) FROM gpu_series")).scalar()
        if engine.dialect.name == "sqlite":
            pages = [conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("page_count", "freelist_count", "page_size")]
            return (pages[0] - pages[1]) * pages[2], int(records)
        sizes = [conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": t}).scalar() for t in db.metadata.tables]
    return sum(size or 0 for size in sizes), int(records)


def _store(rows: Iterator[Row], tx_rows: int, label: str) -> tuple[int, int, float]:
    """(new raw records, rows kept only as rollups, seconds)."""
    from metrics_app.extensions import db
    from metrics_app.storage.engine import write_tx
    from metrics_app.storage.writer import store_rows

    began, saved, rollup_only, batch = time.perf_counter(), 0, 0, []
    for row in rows:
        batch.append(row)
        if len(batch) == tx_rows:
            with write_tx(db.engine) as conn:
                result = store_rows(conn, batch)
            saved, rollup_only, batch = saved + result.saved, rollup_only + result.rollup_only, []
            print(f"\r{label}: {saved + rollup_only:,} rows, {(saved + rollup_only) / (time.perf_counter() - began):,.0f}/s",
                  end="", flush=True)
    if batch:
        with write_tx(db.engine) as conn:
            result = store_rows(conn, batch)
        saved, rollup_only = saved + result.saved, rollup_only + result.rollup_only
    return saved, rollup_only, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--db", default=os.environ.get("DATABASE_URL", Config.SQLALCHEMY_DATABASE_URI))
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--tx-rows", type=int, default=50_000, help="rows per transaction")
    parser.add_argument("--end-ms", type=int, default=int(time.time()) * 1000, help="timestamp of the last second")
    parser.add_argument("--history-days", type=float, default=0, help="older samples this many days back")
    parser.add_argument("--history-step", type=int, default=900, help="seconds between older samples")
    args = parser.parse_args()

    from flask_migrate import upgrade

    from metrics_app import create_app
    from metrics_app.extensions import db

    settings = {"SQLALCHEMY_DATABASE_URI": args.db, "SAMPLERS_ENABLED": False, "BACKGROUND_JOBS_ENABLED": False}
    app = create_app(type("GenerateConfig", (environment_config(),), settings))
    with app.app_context():
        upgrade()
        saved, _, elapsed = _store(synthetic_rows(args.records, args.hosts, args.gpus, args.end_ms), args.tx_rows, "records")
        print(f"\nstored {saved:,} new rows of {args.records:,} in {elapsed:.1f} s ({saved / elapsed:,.0f}/s) into {args.db}")
        if args.history_days:
            per_step = args.hosts * args.gpus * len(KINDS)
            steps = int(args.history_days * 86_400 // args.history_step)
            raw_span_ms = -(-args.records // per_step) * 1000
            rows = synthetic_rows(steps * per_step, args.hosts, args.gpus, args.end_ms - raw_span_ms,
                                  args.history_step * 1000)
            _, rollup_only, elapsed = _store(rows, args.tx_rows, "history")
            print(f"\nhistory: {rollup_only:,} older rows kept as rollups in {elapsed:.1f} s "
                  f"({rollup_only / elapsed:,.0f}/s), {args.history_days:g} days every {args.history_step} s")
        used, records = bytes_per_record(db.engine)
    print(f"{used:,} bytes for {records:,} records: {used / max(records, 1):.1f} bytes per record (everything included)")

if __name__ == "__main__":
    main()
