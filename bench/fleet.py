#!/usr/bin/env python3
"""Fleet stream under load: N ``/ws/fleet`` clients while H simulated hosts ingest R records/s.

    venv/bin/python bench/fleet.py --url http://127.0.0.1:8000 --clients 1000 --hosts 100 --rate 20000 \
        --duration 30 [--ws-url ws://127.0.0.1:8001/ws/fleet]

It starts nothing itself: point it at a running service (``--ws-url`` at another instance measures
the trip through Redis). Two phases of ``--duration`` seconds each: ingest alone, then ingest with
the clients connected, so the ingest rate with and without readers can be compared. Every host
POSTs a batch (``--gpus`` GPUs x four kinds, stamped with the send time) every ``--gpus * 4 * hosts
/ rate`` seconds on a keep-alive connection of its own, as a crawler does (``--connections N``: the
hosts share N connections instead; a shared connection sends its hosts' batches one after another,
so the server's latency, not its capacity, then bounds the rate).

Delivery lag is measured by ``--sample`` of the clients, which parse every message: the arrival time
minus the record's timestamp, i.e. from the moment the batch was sent (an upper bound on commit to
client, since the POST itself is included). The other clients are ``bench/ws_clients.py``'s frame
counters, which parse frame headers only, to keep the load generator's own cost small (it shares the
machine with the server).
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import statistics
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import orjson
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rawhttp import Connection, post_request  # noqa: E402
from ws_clients import Stats, client as counting_client  # noqa: E402

KINDS = (("utilization", {"gpuPercent": 55.0, "memoryPercent": 12.0}), ("temperature", {"celsius": 65.0}),
         ("power", {"watts": 215.0}), ("memory", {"totalMiB": 81559.0, "usedMiB": 2048.0, "freeMiB": 79511.0}))


def iso_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def body(host: str, gpus: int) -> bytes:
    stamp = iso_now()
    return orjson.dumps([{"timestamp": stamp, "hostname": host, "gpuIndex": g, "gpuId": f"GPU-{host}-{g}",
                          "metric": kind, **fields} for g in range(gpus) for kind, fields in KINDS])


class Ingest:
    """Hosts spread over ``connections`` threads; each thread keeps its hosts' schedule."""

    def __init__(self, url: str, hosts: int, gpus: int, rate: float, connections: int) -> None:
        self.url = url
        run = uuid.uuid4().hex[:6]
        self.hosts = [f"bench-{run}-{n:03d}" for n in range(hosts)]
        self.gpus, self.connections = gpus, connections
        self.period = gpus * len(KINDS) * hosts / rate  # seconds between two batches of one host
        self.saved = 0
        self.errors = 0
        self.latencies: list[float] = []
        self._lock = threading.Lock()

    def _run(self, hosts: list[str], stop: threading.Event) -> None:
        conn = Connection(self.url, timeout=30)
        offset = self.period / max(len(hosts), 1)
        due = [time.monotonic() + i * offset for i in range(len(hosts))]
        while not stop.is_set():
            i = min(range(len(hosts)), key=due.__getitem__)
            wait = due[i] - time.monotonic()
            if wait > 0:
                stop.wait(wait)
                continue
            due[i] += self.period
            try:
                began = time.perf_counter()
                status, answer = conn.send(post_request(self.url, "/metrics", body(hosts[i], self.gpus)))
                self.latencies.append(time.perf_counter() - began)
                with self._lock:
                    self.saved += orjson.loads(answer).get("saved", 0) if status == 201 else 0
                    self.errors += status != 201
            except OSError:
                with self._lock:
                    self.errors += 1
                conn.close()

    def measure_apart(self, seconds: float) -> tuple[float, str]:
        """``measure`` in a process of its own, so the readers' work in this one does not slow the
        senders (with 1,000 clients reading, the load generator's GIL, not the server, set the rate);
        with the POSTs' latency p50/p99."""
        ctx = mp.get_context("fork")
        results = ctx.Queue()

        def measured() -> None:
            rate, took = self.measure(seconds), self.latencies
            latency = (f"POST latency p50 {percentile(took, .5) * 1000:.1f} ms, "
                       f"p99 {percentile(took, .99) * 1000:.1f} ms" if took else "no POST answered")
            results.put((rate, self.errors, latency))

        process = ctx.Process(target=measured, daemon=True)
        process.start()
        rate, self.errors, latency = results.get(timeout=seconds + 60)
        process.join(10)
        return rate, latency

    def measure(self, seconds: float) -> float:
        """Records stored per second over ``seconds``."""
        stop = threading.Event()
        threads = [threading.Thread(target=self._run, args=(self.hosts[n::self.connections], stop), daemon=True)
                   for n in range(self.connections)]
        before = self.saved
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join(30)
        return (self.saved - before) / seconds


async def sampling_client(url: str, lags: list[float], stop: asyncio.Event) -> None:
    """Parses every message and keeps each record's lag."""
    async with websockets.connect(url, max_size=None, compression=None, open_timeout=60) as ws:
        await ws.recv()  # the snapshot
        while not stop.is_set():
            try:
                text = await asyncio.wait_for(ws.recv(), 1.0)
            except asyncio.TimeoutError:
                continue
            now = time.time()
            for record in orjson.loads(text)["records"]:
                sent = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
                lags.append(now - sent)


async def readers(url: str, clients: int, sample: int, seconds: float, ingest: Ingest,
                  per_host: bool) -> tuple[tuple[float, str], list, int, int]:
    """Ingest rate with the clients reading; the lags, failed clients and frames the others counted."""
    stop, lags, stats, stop_at = asyncio.Event(), [], Stats(), [float("inf")]
    connecting = asyncio.Semaphore(100)
    urls = [f"{url}?hostname={ingest.hosts[n % len(ingest.hosts)]}" if per_host else url for n in range(clients)]
    tasks = [asyncio.create_task(sampling_client(u, lags, stop) if n < sample
                                 else counting_client(u, stats, connecting, stop_at)) for n, u in enumerate(urls)]
    await asyncio.sleep(min(10.0, 1 + clients / 200))  # let the handshakes finish
    rate = await asyncio.to_thread(ingest.measure_apart, seconds)
    stop.set()
    stop_at[0] = time.monotonic()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = sum(isinstance(r, BaseException) for r in results) + sum(stats.errors.values())
    return rate, lags, failed, sum(map(len, stats.arrivals))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="service that ingests")
    parser.add_argument("--ws-url", help="fleet stream to read (default: the --url service's /ws/fleet)")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=20, help="clients that parse messages and time lags")
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--rate", type=float, default=20_000, help="records/s offered, all hosts together")
    parser.add_argument("--connections", type=int, default=0,
                        help="concurrent ingest connections (0: one per host)")
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--per-host", action="store_true",
                        help="each client follows one host (?hostname=), as a per-host dashboard does; "
                             "by default every client takes the whole fleet")
    args = parser.parse_args()
    ws_url = args.ws_url or args.url.replace("http", "ws", 1).rstrip("/") + "/ws/fleet"

    ingest = Ingest(args.url, args.hosts, args.gpus, args.rate, args.connections or args.hosts)
    alone, latency = ingest.measure_apart(args.duration)
    print(f"ingest alone:        {alone:9.0f} records/s (offered {args.rate:.0f}; errors {ingest.errors}; {latency})")
    (rate, latency), lags, failed, frames = asyncio.run(
        readers(ws_url, args.clients, min(args.sample, args.clients), args.duration, ingest, args.per_host))
    change = 100 * (rate - alone) / alone if alone else float("nan")
    print(f"ingest with clients: {rate:9.0f} records/s ({change:+.1f} %; errors {ingest.errors}; {latency})")
    print(f"clients: {args.clients} ({failed} failed), frames counted: {frames}, lag samples: {len(lags)}")
    if lags:
        print(f"delivery lag (send -> client): p50 {percentile(lags, .5) * 1000:.0f} ms, "
              f"p99 {percentile(lags, .99) * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms, "
              f"mean {statistics.fmean(lags) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
