#!/usr/bin/env python3
"""Live-stream load test: N concurrent WebSocket clients for T seconds against a running server.

    venv/bin/python bench/ws_clients.py --url ws://127.0.0.1:8000/ws/metrics --clients 2000 \
        --duration 30 --server-pid "$(pgrep -of 'gunicorn.*wsgi:app')"

Prints messages/s per client (min/median), p50/p99/max gap between consecutive messages, errors,
and, given the gunicorn master's pid, the server's CPU (% of one core, master + workers) and
resident memory (an idle server, thread by thread: ``bench/idle.py``).

Isolation : ``--stall N`` adds N clients that complete the handshake with a tiny receive
buffer and then never read; ``--drop N`` adds N clients that vanish abruptly (TCP reset, no close
frame) halfway through the window. The figures printed are those of the ordinary clients only, so
a run with and without them shows whether misbehaving clients delay the others.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import resource
import socket
import statistics
import time
import urllib.request

import psutil
import websockets
from urllib.parse import urlsplit


class Stats:
    def __init__(self) -> None:
        self.arrivals: list[list[float]] = []
        self.errors: dict[str, int] = {}
        self.settled = 0  # clients that got their first message or failed


    def error(self, exc: BaseException, had_first: bool) -> None:
        self.settled += 0 if had_first else 1
        key = type(exc).__name__
        self.errors[key] = self.errors.get(key, 0) + 1


def handshake_request(url: str) -> bytes:
    parts = urlsplit(url)
    key = base64.b64encode(os.urandom(16)).decode()
    target = f"{parts.path}?{parts.query}" if parts.query else parts.path
    return (f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


class FrameCounter(asyncio.Protocol):
    """A minimal WebSocket client that only parses frame headers and answers pings.

    2,000 clients share these 2 cores with the server: a full client library per message would add
    its own scheduling jitter to the gaps we are measuring, so this one stamps each text frame's
    arrival and does nothing else with it.
    """

    def __init__(self, arrivals: list[float], stats: Stats) -> None:
        self.arrivals, self.stats = arrivals, stats
        self.buffer = bytearray()
        self.upgraded = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if not self.upgraded.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.upgraded.set_exception(ConnectionError(bytes(buf[:40]).decode(errors="replace")))
                return
            del buf[:end + 4]
            self.upgraded.set_result(None)
        now = time.monotonic()
        while len(buf) >= 2:
            opcode, length, offset = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if length == 126:
                length, offset = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                length, offset = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < offset + length:
                return
            del buf[:offset + length]
            if opcode == 0x1:
                self.arrivals.append(now)
                self.stats.settled += len(self.arrivals) == 1
            elif opcode == 0x9:  # ping: answer with an empty, masked pong
                self.transport.write(b"\x8a\x80" + os.urandom(4))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)


async def client(url: str, stats: Stats, connected: asyncio.Semaphore, stop_at: list[float]) -> None:
    arrivals: list[float] = []
    stats.arrivals.append(arrivals)
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    try:
        async with connected:  # bound concurrent handshakes so the listen backlog never overflows
            transport, proto = await loop.create_connection(
                lambda: FrameCounter(arrivals, stats), parts.hostname, parts.port or 80)
            transport.write(handshake_request(url))
            await asyncio.wait_for(proto.upgraded, 60)
        while time.monotonic() < stop_at[0] and not proto.closed.done():
            await asyncio.wait([proto.closed], timeout=min(1.0, max(0.0, stop_at[0] - time.monotonic())))
        if proto.closed.done() and time.monotonic() < stop_at[0]:
            raise ConnectionError(f"server closed the stream: {proto.closed.result()!r}")
        transport.close()
    except Exception as exc:  # noqa: BLE001 - every failure is counted, none stops the run
        stats.error(exc, bool(arrivals))


async def stalled_client(url: str, stop_at: list[float], stats: Stats) -> None:
    """Handshake, then never read: the server's sends to it back up once the buffers fill."""
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port or 80))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(handshake_request(url))
        await reader.readuntil(b"\r\n\r\n")
        while time.monotonic() < stop_at[0]:
            await asyncio.sleep(0.5)
        writer.transport.abort()
    except Exception as exc:  # noqa: BLE001 - counted and reported
        stats.error(exc, True)


async def dropping_client(url: str, stop_at: list[float], stats: Stats) -> None:
    """Connect, read normally, then disappear mid-window with a TCP reset and no close frame."""
    try:
        ws = await websockets.connect(url, compression=None, open_timeout=60, ping_interval=None)
        while stop_at[0] == float("inf"):
            await ws.recv()
        deadline = stop_at[0] - (stop_at[0] - time.monotonic()) / 2
        while time.monotonic() < deadline:
            await asyncio.wait_for(ws.recv(), timeout=max(0.01, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        pass
    except Exception as exc:  # noqa: BLE001 - counted and reported
        stats.error(exc, True)
        return
    ws.transport.abort()


def _probe(url: str, stop: "mp.synchronize.Event", results: "mp.Queue") -> None:
    latencies, failures = [], []
    while not stop.wait(0.1):
        t = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                response.read()
            latencies.append(time.monotonic() - t)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            failures.append(type(exc).__name__)
    results.put((latencies, failures))


class HttpProbe:
    """A GET every 100 ms during the window: live clients must never starve plain requests.

    It runs in a process of its own: as a thread beside thousands of asyncio clients it waited for
    the load generator's GIL, and its latencies were the client's, not the server's."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        ctx = mp.get_context("fork")
        self._stop, self._results = ctx.Event(), ctx.Queue()
        self._process = ctx.Process(target=_probe, args=(url, self._stop, self._results), daemon=True)

    def start(self) -> None:
        if self.url:
            self._process.start()

    def stop(self) -> tuple[list[float], list[str]]:
        """(latencies in seconds, failure names)."""
        if not self.url:
            return [], []
        self._stop.set()
        latencies, failures = self._results.get(timeout=30)
        self._process.join(10)
        return latencies, failures


def server_processes(pid: int | None) -> list[psutil.Process]:
    if not pid:
        return []
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def rss_mb(procs: list[psutil.Process]) -> float:
    return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="ws://127.0.0.1:8000/ws/metrics")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds, after all connect")
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--server-pid", type=int, help="gunicorn master pid, to measure server CPU and memory")
    parser.add_argument("--http-probe", help="URL fetched every 100 ms during the window, e.g. "
                                             "http://127.0.0.1:8000/api/metrics")
    parser.add_argument("--stall", type=int, default=0, help="extra clients that never read")
    parser.add_argument("--drop", type=int, default=0, help="extra clients that vanish mid-window")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    stats = Stats()
    stop_at = [float("inf")]
    sem = asyncio.Semaphore(args.connect_concurrency)
    t_connect = time.monotonic()
    tasks = [asyncio.create_task(client(args.url, stats, sem, stop_at)) for _ in range(args.clients)]
    misbehaving = Stats()
    tasks += [asyncio.create_task(stalled_client(args.url, stop_at, misbehaving)) for _ in range(args.stall)]
    tasks += [asyncio.create_task(dropping_client(args.url, stop_at, misbehaving)) for _ in range(args.drop)]
    # Wait until every client got its first message (or failed), then measure a clean window.
    while stats.settled < args.clients and time.monotonic() - t_connect < 120:
        await asyncio.sleep(0.2)
    connect_time = time.monotonic() - t_connect
    procs = server_processes(args.server_pid)
    cpu0, t0 = cpu_seconds(procs), time.monotonic()
    stop_at[0] = t0 + args.duration
    probe = HttpProbe(args.http_probe)
    probe.start()
    await asyncio.gather(*tasks)
    while time.monotonic() < stop_at[0]:  # the whole window, even when no client is left in it
        await asyncio.sleep(0.1)
    t1 = time.monotonic()
    latencies, failures = probe.stop()
    cpu_pct = 100 * (cpu_seconds(procs) - cpu0) / (t1 - t0) if procs else None
    mem = rss_mb(procs) if procs else None

    rates, gaps = [], []
    for arrivals in stats.arrivals:
        window = [a for a in arrivals if a >= t0]
        rates.append(len(window) / args.duration)
        gaps.extend(b - a for a, b in zip(arrivals, arrivals[1:]) if b >= t0)
    print(f"clients={args.clients} duration={args.duration:.0f}s connect={connect_time:.1f}s")
    if rates:
        print(f"messages/s per client: min={min(rates):.3f} median={statistics.median(rates):.3f}")
        print(f"gap ms: p50={1000 * percentile(gaps, 0.5):.0f} p99={1000 * percentile(gaps, 0.99):.0f} "
              f"max={1000 * max(gaps, default=float('nan')):.0f}")
    print(f"errors: {sum(stats.errors.values())} {stats.errors or ''}")
    if args.stall or args.drop:
        print(f"misbehaving clients: {args.stall} stalled, {args.drop} dropped; their own errors: "
              f"{misbehaving.errors or 'none'}")
    if args.http_probe:
        print(f"http probe: {len(latencies)} ok, {len(failures)} failed, latency ms "
              f"p50={1000 * percentile(latencies, 0.5):.1f} p99={1000 * percentile(latencies, 0.99):.1f}")
    if cpu_pct is not None:
        print(f"server: cpu={cpu_pct:.1f}% of one core, rss={mem:.0f} MB ({len(procs)} processes)")


if __name__ == "__main__":
    asyncio.run(main())
