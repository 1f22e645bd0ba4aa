"""Ingest throughput: batches of crawler-ingest API records POSTed from N concurrent keep-alive connections.

    GUNICORN_WORKERS=2 PORT=8000 DATABASE_URL=sqlite:////tmp/bench.db venv/bin/gunicorn -c gunicorn.conf.py wsgi:app
    venv/bin/python bench/ingest.py --url http://127.0.0.1:8000 --connections 4 --records 200000
    venv/bin/python bench/ingest.py --crawler --batch 1 --connections 8 --records 20000   # one C++ crawler record a POST

It starts nothing itself: point it at a running service (run ``flask db upgrade`` on the database
first, as ./start.sh does). Every record is new: each run picks a fresh hostname per connection and
the six kinds walk forward one second at a time, so idempotency never turns a request into a no-op;
the script fails if any response saved fewer records than it sent. Bodies are serialized before the
clock starts, so the figure measures the service, not the load generator's JSON encoding.
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import orjson

from rawhttp import Connection, post_request

KINDS = (
    ("memory", {"totalMiB": 81559, "usedMiB": 2048, "freeMiB": 79511}),
    ("utilization", {"gpuPercent": 55, "memoryPercent": 12}),
    ("temperature", {"celsius": 65}),
    ("power", {"watts": 115.2}),
    ("clocks", {"graphicsMHz": 1800, "memoryMHz": 7000}),
    ("process", {"pid": 1234, "usedMiB": 512}),
)


#: The C++ crawler's ``gpu`` record (``--crawler``): no gpuIndex, five stored records in one.
CRAWLER_GPU = {"metricType": "gpu", "gpuName": "NVIDIA GeForce RTX 4090", "totalMemoryMiB": 24564,
               "usedTotalMemoryMiB": 1820, "freeMemoryMiB": 22744, "gpuUtilPercent": 7, "memUtilPercent": 3,
               "temperatureCelsius": 41, "powerMilliwatts": 28450, "graphicsClockMHz": 210, "smClockMHz": 210,
               "memClockMHz": 405}
CRAWLER_ROWS = 5


def crawler_batches(host: str, count: int, size: int, start: datetime, gpus: int = 8) -> list[bytes]:
    """Like ``batches``, in the C++ crawler's records: (second, GPU) never repeats."""
    bodies, n = [], 0
    for _ in range(count):
        records = []
        for _ in range(size):
            second, gpu = divmod(n, gpus)
            records.append({"timestamp": (start + timedelta(seconds=second)).isoformat(), "hostname": host,
                            "gpuId": f"GPU-{host}-{gpu}", **CRAWLER_GPU})
            n += 1
        bodies.append(orjson.dumps(records[0] if size == 1 else records))
    return bodies


def batches(host: str, count: int, size: int, start: datetime, gpus: int = 8) -> list[bytes]:
    """``count`` bodies of ``size`` distinct records for ``host``: (second, GPU, kind) never repeats."""
    bodies, n = [], 0
    for _ in range(count):
        records = []
        for _ in range(size):
            second, rest = divmod(n, gpus * len(KINDS))
            gpu, kind = divmod(rest, len(KINDS))
            name, fields = KINDS[kind]
            records.append({"timestamp": (start + timedelta(seconds=second)).isoformat(), "gpuIndex": gpu,
                            "metric": name, "hostname": host, "gpuId": f"GPU-{gpu}", "gpuName": "H100",
                            **fields})
            n += 1
        bodies.append(orjson.dumps(records))
    return bodies


def sender(url: str, bodies: list[bytes], size: int, latencies: list[float], failures: list[str]) -> None:
    conn = Connection(url)
    for request in [post_request(url, "/metrics", body) for body in bodies]:
        began = time.perf_counter()
        status, payload = conn.send(request)
        latencies.append(time.perf_counter() - began)
        if status != 201 or orjson.loads(payload).get("saved") != size:
            failures.append(f"{status} {payload[:200]!r}")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--records", type=int, default=200_000, help="total records to send")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--crawler", action="store_true",
                        help="send the C++ crawler's gpu records (each stored as five) instead of the crawler-ingest API's records")
    parser.add_argument("--start", type=datetime.fromisoformat, default=None,
                        help="first record time (default now: like live crawlers, rows append at the end of "
                             "the time index; runs repeated on one database within minutes overlap in time)")
    args = parser.parse_args()
    start = args.start or datetime.now(timezone.utc).replace(microsecond=0)

    per_conn = max(1, args.records // (args.batch * args.connections))
    run = uuid.uuid4().hex[:8]
    make = crawler_batches if args.crawler else batches
    work = [make(f"bench-{run}-{c}", per_conn, args.batch, start) for c in range(args.connections)]
    rows = args.batch * (CRAWLER_ROWS if args.crawler else 1)
    latencies: list[float] = []
    failures: list[str] = []
    threads = [threading.Thread(target=sender, args=(args.url, bodies, rows, latencies, failures))
               for bodies in work]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began

    total = per_conn * args.batch * args.connections
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    kind = f"crawler gpu records ({total * CRAWLER_ROWS:,} stored)" if args.crawler else "records"
    print(f"{total:,} {kind} in {len(latencies)} batches of {args.batch} from {args.connections} connections: "
          f"{elapsed:.2f} s, {len(latencies) / elapsed:,.0f} requests/s, {total / elapsed:,.0f} records/s, "
          "batch latency p50 "
          f"{statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    if failures:
        raise SystemExit(f"{len(failures)} batches did not store every record, e.g. {failures[0]}")


if __name__ == "__main__":
    main()
