from __future__ import annotations

import threading
import time

from metrics_app.once import start_once


class Owner:
    def __init__(self) -> None:
        self._threads: list[str] = []
        self._start_lock = threading.Lock()
        self.starts = 0

    @start_once
    def start(self) -> None:
        self.starts += 1
        time.sleep(0.05)  # long enough for the other callers to arrive while it runs
        self._threads = ["started"]


def test_callers_arriving_together_start_the_threads_once():
    owner = Owner()
    callers = [threading.Thread(target=owner.start) for _ in range(8)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert owner.starts == 1 and owner._threads == ["started"]


def test_a_stopped_owner_starts_again():
    owner = Owner()
    owner.start()
    owner._threads = []  # what stop() leaves
    owner.start()
    assert owner.starts == 2
