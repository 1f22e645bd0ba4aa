#!/usr/bin/env python3
"""Memory kept per WebSocket connection: connect N clients, let them receive, disconnect, repeat.

    venv/bin/python bench/ws_cycles.py --clients 5000 --cycles 10 --server-pid "$(cat gunicorn.pid)"

After each cycle (and a short settle) it prints every server process's resident memory, so the
growth from the first cycle's end to the last one's is what the server keeps per connection.
"""
from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ws_clients import Stats, client, server_processes  # noqa: E402


async def cycle(url: str, clients: int, hold: float) -> Stats:
    stats = Stats()
    stop_at = [float("inf")]
    sem = asyncio.Semaphore(100)
    tasks = [asyncio.create_task(client(url, stats, sem, stop_at)) for _ in range(clients)]
    began = time.monotonic()
    while stats.settled < clients and time.monotonic() - began < 120:
        await asyncio.sleep(0.2)
    stop_at[0] = time.monotonic() + hold
    await asyncio.gather(*tasks)
    return stats


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="ws://127.0.0.1:8000/ws/metrics")
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--hold", type=float, default=3.0, help="seconds connected once all have a frame")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after disconnecting before measuring")
    parser.add_argument("--server-pid", type=int, required=True, help="gunicorn master pid")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def rss() -> list[float]:
        return [round(p.memory_info().rss / 2**20, 1) for p in server_processes(args.server_pid)[1:]]

    print(f"before: worker RSS MB {rss()}")
    first = None
    for n in range(1, args.cycles + 1):
        stats = await cycle(args.url, args.clients, args.hold)
        await asyncio.sleep(args.settle)
        now = rss()
        first = first or now
        print(f"cycle {n}: worker RSS MB {now} (errors {sum(stats.errors.values())})", flush=True)
    growth = [round(b - a, 1) for a, b in zip(first, rss())]
    print(f"growth after the first cycle: {growth} MB over {args.cycles - 1} cycles")


if __name__ == "__main__":
    asyncio.run(main())
