#!/usr/bin/env python3
"""CPU of a running, idle server: master + workers over N seconds, with each thread's share.

    venv/bin/python bench/idle.py --server-pid "$(pgrep -of 'gunicorn.*wsgi:app')" --duration 60

Sends nothing to the server: start it, leave it without clients, and run this. Prints the total in
% of one core and resident memory, then every process and, with ``--threads``, every thread that used
CPU in the window (native threads carry no name the kernel knows, so they are told apart by their id).
"""
from __future__ import annotations

import argparse
import time

import psutil


def snapshot(procs: list[psutil.Process]) -> dict[tuple[int, int], float]:
    """(pid, thread id) → CPU seconds, user + system."""
    seconds = {}
    for p in procs:
        try:
            for t in p.threads():
                seconds[(p.pid, t.id)] = t.user_time + t.system_time
        except psutil.NoSuchProcess:
            pass
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server-pid", type=int, required=True, help="the gunicorn master's pid")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--threads", action="store_true", help="also list each thread that used CPU")
    args = parser.parse_args()
    root = psutil.Process(args.server_pid)
    procs = [root, *root.children(recursive=True)]
    before, t0 = snapshot(procs), time.monotonic()
    time.sleep(args.duration)
    after, elapsed = snapshot(procs), time.monotonic() - t0
    used = {key: after[key] - before.get(key, 0.0) for key in after}

    def pct(seconds: float) -> str:
        return f"{100 * seconds / elapsed:.2f}%"

    rss = {p.pid: p.memory_info().rss / 2**20 for p in procs}
    print(f"server: {pct(sum(used.values()))} of one core over {elapsed:.0f} s, {sum(rss.values()):.0f} MB "
          f"({len(procs)} processes)")
    for p in procs:
        role = "master" if p.pid == root.pid else "worker"
        print(f"  {role} {p.pid}: {pct(sum(v for (pid, _), v in used.items() if pid == p.pid))}, {rss[p.pid]:.0f} MB")
        if args.threads:
            for (pid, tid), seconds in sorted(used.items(), key=lambda kv: -kv[1]):
                if pid == p.pid and seconds > 0:
                    print(f"    thread {tid}{' (main)' if tid == pid else ''}: {pct(seconds)}")


if __name__ == "__main__":
    main()
