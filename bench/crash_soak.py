"""Crash soak: the reliability suite's SIGKILL rounds (tests/reliability/crash.py), repeated.

Each ingest round runs sustained POST /metrics load into a real gunicorn server, SIGKILLs its whole
process group at a random moment, restarts it on the same database and checks every acknowledged
batch (present once), every unanswered one (all or nothing, then resent exactly once) and the
summary/rollup counts. Tail rounds append to a JSONL file non-stop through repeated kills and then
check every line is stored once. Any violation stops the run with an AssertionError.

    venv/bin/python bench/crash_soak.py --kills 20 --duration 300
    venv/bin/python bench/crash_soak.py --kills 20 --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

A PostgreSQL run works in a private schema that is dropped at the end.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.dbsetup import session_database  # noqa: E402
from tests.reliability.crash import CrashFigures, ingest_crash_round, tail_crash_rounds, tail_env  # noqa: E402
from tests.reliability.helpers import engine_for  # noqa: E402
from tests.server import GunicornServer  # noqa: E402

TAIL_KILLS_PER_CHECK = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs for ingest, and as many for the tailer")
    parser.add_argument("--duration", type=float, default=300, help="seconds per part at most")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    os.environ["TEST_DATABASE_URL"] = args.database_url
    workdir = Path(tempfile.mkdtemp(prefix="crash-soak-"))
    databases = session_database(workdir)
    url = next(databases)
    engine = engine_for(url)
    print(f"seed {seed}; database {url}; logs in {workdir}")
    try:
        ingest, began = CrashFigures(), time.monotonic()
        server = GunicornServer(workdir, DATABASE_URL=url, GUNICORN_WORKERS=str(args.workers),
                                SAMPLERS_ENABLED="false", RECORD_INTERVAL_SEC="0")
        while ingest.kills < args.kills and time.monotonic() - began < args.duration:
            ingest_crash_round(server, engine, rng, ingest, f"soak{ingest.kills}", args.batch, args.clients)
            print(f"ingest: {ingest}", flush=True)
        tail, began = CrashFigures(), time.monotonic()
        path = workdir / "ws_out.jsonl"
        server = GunicornServer(workdir, DATABASE_URL=url, GUNICORN_WORKERS=str(args.workers),
                                **tail_env(path, workdir / "jobs.lock"))
        while tail.kills < args.kills and time.monotonic() - began < args.duration:
            tail_crash_rounds(server, engine, path, rng, tail, min(TAIL_KILLS_PER_CHECK, args.kills - tail.kills))
            print(f"tail: {tail}", flush=True)
        print(f"done, seed {seed}: ingest {ingest}; tail {tail}")
    finally:
        engine.dispose()
        databases.close()


if __name__ == "__main__":
    main()
