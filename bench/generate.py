"""Fill a database with synthetic crawler records through the service's own write path.

    venv/bin/python bench/generate.py --records 10000000 --db sqlite:////tmp/metrics-10m.db

Records cover HOSTS x GPUS x the six kinds at 1 s spacing, ending now (so retention keeps them), with
realistic integral values (SQLite stores whole-number REALs compactly, as crawlers' values mostly
are). Rows go through ``storage.writer.store_rows`` (summaries and rollups included) in big
transactions; the schema is created with the Alembic migrations. Re-running is idempotent.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config import Config, environment_config  # noqa: E402
from metrics_app.storage.kinds import KINDS  # noqa: E402
from metrics_app.storage.writer import Row  # noqa: E402


def synthetic_rows(count: int, hosts: int, gpus: int, end_ms: int) -> Iterator[Row]:
    """``count`` rows, one per (second, host, GPU, kind), the last second at ``end_ms``."""
    per_second = hosts * gpus * len(KINDS)
    seconds = -(-count // per_second)
    start_ms = end_ms - (seconds - 1) * 1000
    produced = 0
    for s in range(seconds):
        ts = start_ms + s * 1000
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--db", default=os.environ.get("DATABASE_URL", Config.SQLALCHEMY_DATABASE_URI))
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--tx-rows", type=int, default=50_000, help="rows per transaction")
    parser.add_argument("--end-ms", type=int, default=int(time.time()) * 1000, help="timestamp of the last second")
    args = parser.parse_args()

    from flask_migrate import upgrade

    from metrics_app import create_app
    from metrics_app.extensions import db
    from metrics_app.storage.engine import write_tx
    from metrics_app.storage.writer import store_rows

    settings = {"SQLALCHEMY_DATABASE_URI": args.db, "SAMPLERS_ENABLED": False, "BACKGROUND_JOBS_ENABLED": False}
    app = create_app(type("GenerateConfig", (environment_config(),), settings))
    with app.app_context():
        upgrade()
        began, saved, batch = time.perf_counter(), 0, []
        for row in synthetic_rows(args.records, args.hosts, args.gpus, args.end_ms):
            batch.append(row)
            if len(batch) == args.tx_rows:
                with write_tx(db.engine) as conn:
                    saved += store_rows(conn, batch).saved
                batch = []
                print(f"\r{saved:,} rows, {saved / (time.perf_counter() - began):,.0f}/s", end="", flush=True)
        if batch:
            with write_tx(db.engine) as conn:
                saved += store_rows(conn, batch).saved
        elapsed = time.perf_counter() - began
    print(f"\nstored {saved:,} new rows of {args.records:,} in {elapsed:.1f} s ({saved / elapsed:,.0f}/s) into {args.db}")


if __name__ == "__main__":
    main()
