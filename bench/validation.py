"""CPU cost of validating ingest bodies (``load_batch``), without HTTP or a database.

    venv/bin/python bench/validation.py                        # this checkout
    git worktree add /tmp/base HEAD~1                          # any commit to compare with
    venv/bin/python bench/validation.py --against /tmp/base    # both, alternated; ratio = base / this

Cases: bench/ingest.py's bodies of 1,000 crawler-ingest API records (6 kinds, 8 GPUs, 48 records a
second) and of 1,000 C++ crawler ``gpu`` records (five rows each), and one record of each kind of
body as a single-record POST sends it. Each repetition's timestamps are new, as a live crawler's
are, so a cache of them is measured as it works in service, never all warm. Bodies are parsed
before the clock starts; the figure is the min over repetitions of ``time.process_time`` around
``load_batch``: CPU time, so others' work on a shared machine shows less, and the min because
interference only adds.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import orjson

from ingest import batches, crawler_batches

HERE = Path(__file__).resolve().parents[1]
#: Case -> (body maker, records a body, bodies a repetition).
CASES: dict[str, tuple[Callable[..., list[bytes]], int, int]] = {
    "ingest batch of 1,000 (ms)": (batches, 1000, 5),
    "crawler gpu batch of 1,000 (ms)": (crawler_batches, 1000, 5),
    "ingest single record (µs)": (batches, 1, 500),
    "crawler gpu single record (µs)": (crawler_batches, 1, 500),
}


def measure(reps: int) -> dict[str, float]:
    """Each case's least CPU seconds per body over ``reps`` repetitions."""
    from metrics_app.ingest.validation import load_batch

    best = dict.fromkeys(CASES, float("inf"))
    for rep in range(reps):
        start = datetime(2025, 1, 1, tzinfo=timezone.utc) + timedelta(days=rep)
        for case, (make, size, count) in CASES.items():
            bodies = make("bench-host", count, size, start)
            if size == 1:  # one record per POST, the body a JSON object: parse all, time the loop
                payloads: list[Any] = [orjson.loads(body) for body in bodies]
                payloads = [p[0] if isinstance(p, list) else p for p in payloads]
                began = time.process_time()
                for payload in payloads:
                    load_batch(payload, 10_000)
                spent = time.process_time() - began
            else:
                spent = 0.0
                for body in bodies:
                    payload = orjson.loads(body)
                    began = time.process_time()
                    load_batch(payload, 10_000)
                    spent += time.process_time() - began
            best[case] = min(best[case], spent / count)
    return best


def report(columns: dict[str, dict[str, float]]) -> None:
    names = list(columns)
    print(f"{'':34}" + "".join(f"{name[-24:]:>26}" for name in names) + ("     ratio" if len(names) == 2 else ""))
    for case in CASES:
        scale = 1e3 if case.endswith("(ms)") else 1e6
        cells = [columns[name][case] for name in names]
        ratio = f"{cells[0] / cells[1]:9.2f}x" if len(cells) == 2 else ""
        print(f"{case:34}" + "".join(f"{cell * scale:26.2f}" for cell in cells) + ratio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--root", type=Path, default=HERE, help="checkout whose metrics_app to measure")
    parser.add_argument("--against", type=Path, help="another checkout: both measured, alternated")
    parser.add_argument("--rounds", type=int, default=3, help="with --against: alternations")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.against is None:
        sys.path.insert(0, str(args.root))
        figures = measure(args.reps)
        if args.json:
            print(json.dumps(figures))
        else:
            report({str(args.root): figures})
        return
    columns: dict[str, dict[str, float]] = {str(args.against): {}, str(args.root): {}}
    for _ in range(args.rounds):
        for root, best in columns.items():
            out = subprocess.run([sys.executable, __file__, "--root", root, "--reps", str(args.reps), "--json"],
                                 check=True, capture_output=True, text=True).stdout
            for case, seconds in json.loads(out).items():
                best[case] = min(best.get(case, seconds), seconds)
    report(columns)


if __name__ == "__main__":
    main()
