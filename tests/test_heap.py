"""The heap is trimmed after a wave of WebSocket clients leaves (a couple of times), never per connection."""
from __future__ import annotations

from metrics_app.heap import MIN_CLOSED, HeapTrimmer, _malloc_trim


def run_wave(heap: HeapTrimmer, clients: int, stay: int = 0) -> None:
    for open_now in range(1, clients + 1):
        heap.opened(open_now)
    for open_now in range(clients - 1, stay - 1, -1):
        heap.closed_one(open_now)


def test_one_trim_per_wave_of_departures():
    trims = []
    heap = HeapTrimmer(trim=lambda: trims.append(1))
    run_wave(heap, 5_000)
    first_wave = len(trims)
    assert 1 <= first_wave <= 3  # each time the clients halve, once MIN_CLOSED more have gone
    run_wave(heap, 5_000)
    assert len(trims) == 2 * first_wave


def test_no_trim_while_most_clients_stay_or_few_leave():
    trims = []
    heap = HeapTrimmer(trim=lambda: trims.append(1))
    run_wave(heap, 5_000, stay=3_000)  # 2,000 left but 3,000 of 5,000 are still there
    run_wave(HeapTrimmer(trim=lambda: trims.append(1)), MIN_CLOSED - 1)
    assert trims == []


def test_glibc_trim_is_found_here():
    assert _malloc_trim() is not None  # this project's machines run glibc
