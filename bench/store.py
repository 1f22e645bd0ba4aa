"""The writer's time per group inside the write lock, in-process: no HTTP, no validation in the clock.

    venv/bin/python bench/store.py                                   # fresh SQLite file in a temp dir
    venv/bin/python bench/store.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test --reps 100
    venv/bin/python bench/store.py --groups "" --profile             # cProfile of the 1,000-record case

Each sample is what the writer thread (storage/write_queue.py) does for one group, with the queue's
own steps: prepare the rows (reported on its own), then inside the write lock BEGIN, store one
request or N single-record requests together in a savepoint, COMMIT. The lock is what SQLite's
writers, one per worker, take turns at; its time caps ingest. Records come from bench/ingest.py's
``batches()`` (6 kinds, 8 GPUs, one host, time walking forward), validated before the clock starts;
every record is new. Prints min, median and mean per group (the machine may be shared: compare A
and B in alternating runs, not across hours). On PostgreSQL the run creates and drops a private
schema.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # dbsetup: migrated SQLite files and PostgreSQL schemas
sys.path.insert(0, str(Path(__file__).resolve().parent))  # ingest.py's batches()
sys.path.insert(0, str(ROOT))

from config import Config  # noqa: E402
from dbsetup import blank_postgres_schema, migrate  # noqa: E402
from ingest import batches  # noqa: E402


@contextmanager
def database(url: str | None) -> Iterator[str]:
    """A migrated database of the run's own: a temp SQLite file, or a schema on ``url``'s server."""
    if url is None:
        with tempfile.TemporaryDirectory(prefix="bench-store-") as folder:
            url = f"sqlite:///{folder}/m.db"
            migrate(url)
            yield url
        return
    with blank_postgres_schema(url) as schema_url:
        migrate(schema_url)
        yield schema_url


def groups(count: int, requests: int, size: int) -> list[list[list[Any]]]:
    """``count`` groups of ``requests`` validated requests of ``size`` records, all distinct."""
    from metrics_app.ingest.batches import parse_json
    from metrics_app.ingest.validation import load_batch

    start = datetime.now(timezone.utc).replace(microsecond=0)
    bodies = batches(f"bench-{uuid.uuid4().hex[:8]}", count * requests, size, start)
    rows = [load_batch(parse_json(body), 10_000) for body in bodies]
    return [rows[i:i + requests] for i in range(0, len(rows), requests)]


def timed(engine: Any, work: list[list[list[Any]]], warmup: int) -> list[tuple[float, ...]]:
    """Per group, as the writer thread spends it (see the module docstring), in seconds: inside the
    write lock before COMMIT (the storage code's own), inside it in all (with the fsync), the
    thread's CPU inside it (what stays comparable on a busy machine), and preparing before it."""
    from metrics_app.storage.engine import WRITE_OPTION
    from metrics_app.storage.state import state_of
    from metrics_app.storage.write_queue import WriteQueue, _Request

    state, queue = state_of(engine), WriteQueue(engine)  # never started: its group steps run here
    samples = []
    with engine.execution_options(**{WRITE_OPTION: True}).connect() as conn:
        for n, group in enumerate(work):
            requests = [_Request(None, rows, None) for rows in group]
            began = time.perf_counter()
            runs = queue._prepare(requests)
            locked, cpu = time.perf_counter(), time.thread_time()
            with state.exclusive(), conn.begin():
                queue._write(conn, runs)
                stored = time.perf_counter()
            done, cpu = time.perf_counter(), time.thread_time() - cpu
            assert all(r.result.saved == len(r.rows) for r in requests), "a record was not stored"
            if n >= warmup:
                samples.append((stored - locked, done - locked, cpu, locked - began))
    return samples


def report(label: str, samples: list[tuple[float, ...]], records: int) -> None:
    stored, total, cpu, prepared = ([s[i] * 1000 for s in samples] for i in range(4))
    mid = statistics.median(total)
    print(f"{label:>28}: before commit min {min(stored):6.3f} median {statistics.median(stored):6.3f} ms; "
          f"with commit min {min(total):6.3f} median {mid:6.3f} mean {statistics.mean(total):6.3f} ms "
          f"({records / mid * 1000:,.0f} records/s at the median); CPU median {statistics.median(cpu):6.3f} ms; "
          f"prepared before the lock: median {statistics.median(prepared):6.3f} ms", flush=True)


def run(engine: Any, args: argparse.Namespace, measure: Callable[..., list[tuple[float, ...]]]) -> None:
    for n in args.groups:
        work = groups(args.reps * 10 + args.warmup, n, 1)
        report(f"group of {n} single records", measure(engine, work, args.warmup), n)
    work = groups(args.reps + args.warmup, 1, args.batch)
    report(f"{args.batch}-record batch", measure(engine, work, args.warmup), args.batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a PostgreSQL server URL (default: a temp SQLite file)")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=200, help="1,000-record groups timed (10x as many small groups)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--groups", type=lambda s: [int(n) for n in s.split(",") if n], default=[1, 3, 16],
                        help="sizes of the single-record groups (comma-separated; empty for none)")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions instead of timings")
    args = parser.parse_args()

    from metrics_app import create_app
    from metrics_app.extensions import db

    with database(args.db) as url:
        settings = {"SQLALCHEMY_DATABASE_URI": url, "SAMPLERS_ENABLED": False, "BACKGROUND_JOBS_ENABLED": False}
        app = create_app(type("BenchConfig", (Config,), settings))
        with app.app_context():
            if args.profile:
                profile = cProfile.Profile()
                run(db.engine, args, lambda *a: profile.runcall(timed, *a))
                pstats.Stats(profile).sort_stats("tottime").print_stats(30)
            else:
                run(db.engine, args, timed)
            db.engine.dispose()


if __name__ == "__main__":
    main()
