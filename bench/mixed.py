#!/usr/bin/env python3
"""Mixed load against a running service: live clients, an HTTP probe and ingest, all at once.

    ./start.sh &    # or any running service
    venv/bin/python bench/mixed.py --clients 2000 --ingest-connections 4 --batch 1000 --rate 50000 \
        --duration 30 --server-pid "$(cat /tmp/gunicorn.pid)"
    venv/bin/python bench/mixed.py --clients 0 --ingest-connections 16 --batch 1 --duration 20   # single-record POSTs

N WebSocket clients on /ws/metrics (bench/ws_clients.py's frame-counting client), a GET every 100 ms
on the HTTP probe URL, and M ingest connections POSTing batches of B unique records, optionally
paced to a total of ``--rate`` records/s. The window starts once every client has its first frame
and every ingest process has built its bodies, so neither connecting nor JSON encoding is measured.
Ingest runs in its own processes (one per 8 connections) so the live clients' timestamps are not
held up by the load generator's own HTTP work.

Prints per-client messages/s (min, median), gap p50/p99/max, HTTP p50/p99 and failures, ingest
records/s and request latency p50/p99, and, with ``--server-pid`` (the gunicorn master), the
server's CPU (% of one core, all processes) and resident memory.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import statistics
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import batches  # noqa: E402
from rawhttp import Connection, post_request  # noqa: E402
from ws_clients import HttpProbe, Stats, client, cpu_seconds, percentile, rss_mb, server_processes  # noqa: E402

CONNECTIONS_PER_PROCESS = 8


def post_loop(url: str, requests: list[bytes], size: int, interval: float, start: float, stop: float,
              latencies: list[float], failures: list[str], sent: list[int]) -> None:
    """One keep-alive connection: a body every ``interval`` seconds (0: back to back) until ``stop``."""
    conn = Connection(url)
    for n, request in enumerate(requests):
        due = start + n * interval
        now = time.monotonic()
        if now >= stop:
            break
        if due > now:
            time.sleep(due - now)
        began = time.perf_counter()
        try:
            status, payload = conn.send(request)
        except OSError as exc:
            failures.append(type(exc).__name__)
            conn.close()
            continue
        latencies.append(time.perf_counter() - began)
        if status != 201 or orjson.loads(payload).get("saved") != size:
            failures.append(f"{status} {payload[:120]!r}")
        else:
            sent[0] += size
    else:
        failures.append("ran out of prepared bodies before the window ended: figures are low")
    conn.close()


def ingest_process(url: str, connections: int, size: int, per_conn_rate: float, duration: float,
                   ready: mp.Event, go: mp.Value, results: mp.Queue) -> None:
    """Builds every body first, then posts from ``connections`` threads once ``go`` holds the start time."""
    # Unpaced, a connection gets enough bodies for a rate well above the targets; running out is reported.
    ceiling = per_conn_rate or (40_000 if size > 1 else 1_500)
    expected = int(ceiling * duration * 1.1 / size) + 2  # paced loops finish a little late: keep spares
    run = uuid.uuid4().hex[:8]
    start_at = datetime.now(timezone.utc).replace(microsecond=0)
    work = [[post_request(url, "/metrics", body) for body in batches(f"mixed-{run}-{c}", expected, size, start_at)]
            for c in range(connections)]
    ready.set()
    while go.value == 0:
        time.sleep(0.01)
    start = go.value
    latencies: list[float] = []
    failures: list[str] = []
    sent = [0]
    interval = size / per_conn_rate if per_conn_rate else 0.0
    threads = [threading.Thread(target=post_loop, args=(url, requests, size, interval, start, start + duration,
                                                        latencies, failures, sent)) for requests in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((sent[0], latencies, failures[:20], len(failures), sum(len(r) for r in work) * size))


async def run(args: argparse.Namespace) -> None:
    stats = Stats()
    stop_at = [float("inf")]
    sem = asyncio.Semaphore(100)
    t_connect = time.monotonic()
    tasks = [asyncio.create_task(client(args.url, stats, sem, stop_at)) for _ in range(args.clients)]

    ctx = mp.get_context("fork")
    go, results, procs, readies = ctx.Value("d", 0.0), ctx.Queue(), [], []
    remaining = args.ingest_connections
    per_conn_rate = args.rate / args.ingest_connections if args.rate and args.ingest_connections else 0.0
    while remaining > 0:
        n = min(CONNECTIONS_PER_PROCESS, remaining)
        ready = ctx.Event()
        proc = ctx.Process(target=ingest_process, daemon=True,
                           args=(args.ingest_url, n, args.batch, per_conn_rate, args.duration, ready, go, results))
        proc.start()
        procs.append(proc)
        readies.append(ready)
        remaining -= n
    while (stats.settled < args.clients or not all(r.is_set() for r in readies)) and \
            time.monotonic() - t_connect < 180:
        await asyncio.sleep(0.2)
    connect_time = time.monotonic() - t_connect

    server = server_processes(args.server_pid)
    cpu0, t0 = cpu_seconds(server), time.monotonic()
    stop_at[0] = t0 + args.duration
    go.value = t0
    probe = HttpProbe(args.http_probe)
    probe.start()
    await asyncio.gather(*tasks)
    while time.monotonic() < stop_at[0]:
        await asyncio.sleep(0.1)
    t1 = time.monotonic()
    cpu_pct = 100 * (cpu_seconds(server) - cpu0) / (t1 - t0) if server else None
    mem = rss_mb(server) if server else None
    http_latencies, http_failures = probe.stop()
    ingested, ingest_latencies, ingest_failures, failure_count = 0, [], [], 0
    for _ in procs:
        sent, latencies, failures, count, _built = results.get(timeout=120)
        ingested += sent
        ingest_latencies += latencies
        ingest_failures += failures
        failure_count += count
    for proc in procs:
        proc.join(10)

    rates, gaps = [], []
    for arrivals in stats.arrivals:
        rates.append(len([a for a in arrivals if t0 <= a < t1]) / (t1 - t0))
        gaps.extend(b - a for a, b in zip(arrivals, arrivals[1:]) if t0 <= b < t1)
    print(f"clients={args.clients} ingest={args.ingest_connections}x{args.batch} rate={args.rate or 'max'} "
          f"duration={t1 - t0:.0f}s connect={connect_time:.1f}s")
    if rates:
        print(f"live: messages/s per client min={min(rates):.3f} median={statistics.median(rates):.3f}; "
              f"gap ms p50={1000 * percentile(gaps, 0.5):.0f} p99={1000 * percentile(gaps, 0.99):.0f} "
              f"max={1000 * max(gaps, default=float('nan')):.0f}; errors {sum(stats.errors.values())} "
              f"{stats.errors or ''}")
    if args.http_probe:
        print(f"http: {len(http_latencies)} ok, {len(http_failures)} failed, ms "
              f"p50={1000 * percentile(http_latencies, 0.5):.1f} p99={1000 * percentile(http_latencies, 0.99):.1f}")
    if args.ingest_connections:
        print(f"ingest: {ingested / (t1 - t0):,.0f} records/s, {len(ingest_latencies) / (t1 - t0):,.0f} requests/s, "
              f"latency ms p50={1000 * percentile(ingest_latencies, 0.5):.1f} "
              f"p99={1000 * percentile(ingest_latencies, 0.99):.1f}; failures {failure_count} {ingest_failures[:3]}")
    if cpu_pct is not None:
        print(f"server: cpu={cpu_pct:.1f}% of one core, rss={mem:.0f} MB ({len(server)} processes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="ws://127.0.0.1:8000/ws/metrics", help="live stream URL")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--http-probe", default="http://127.0.0.1:8000/api/metrics", help="'' to disable")
    parser.add_argument("--ingest-url", default="http://127.0.0.1:8000")
    parser.add_argument("--ingest-connections", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000, help="records per POST (1: single-record mode)")
    parser.add_argument("--rate", type=float, default=0, help="total records/s to offer (0: as fast as answered)")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--server-pid", type=int, help="gunicorn master pid, for server CPU and memory")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
