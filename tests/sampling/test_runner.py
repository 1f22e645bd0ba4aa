import logging
import threading
import time

from metrics_app.sampling.runner import PeriodicThread, SourceState, next_deadline

from ..fakes import StaticSource


def test_schedule_is_anchored_to_start_so_it_never_drifts():
    assert next_deadline(100.0, 1.0, 100.0) == 101.0
    assert next_deadline(100.0, 1.0, 100.3) == 101.0
    # A read that took 0.3 s every time still ticks on whole multiples: after 1000 ticks, no drift.
    assert next_deadline(100.0, 1.0, 1100.3) == 1101.0


def test_an_overrunning_read_skips_missed_ticks_instead_of_bunching_them():
    assert next_deadline(0.0, 1.0, 3.7) == 4.0


def test_failing_source_logs_each_distinct_error_once_and_nulls_its_fields(caplog):
    source = StaticSource("host", {"cpu": {"utilization": 5.0}})
    state = SourceState(source)
    state.poll(lambda: 1.0)
    assert state.reading == {"cpu": {"utilization": 5.0}}

    source.error = OSError("sensor gone")
    with caplog.at_level(logging.WARNING):
        for t in range(2, 12):
            state.poll(lambda t=t: float(t))
    assert state.reading is None
    assert state.status(12.0)["status"] == "error"
    assert state.status(12.0)["last_error"] == "OSError: sensor gone"
    assert len([r for r in caplog.records if "sensor gone" in r.getMessage()]) == 1

    source.error = RuntimeError("other")
    with caplog.at_level(logging.WARNING):
        state.poll(lambda: 13.0)
    assert len([r for r in caplog.records if "other" in r.getMessage()]) == 1


def test_source_recovers_automatically():
    source = StaticSource("host", {"cpu": {"utilization": 5.0}})
    state = SourceState(source)
    source.error = OSError("flaky")
    state.poll(lambda: 1.0)
    source.error = None
    state.poll(lambda: 2.0)
    assert state.reading == {"cpu": {"utilization": 5.0}}
    assert state.status(2.0)["status"] == "ok"


def test_source_missing_two_reads_is_stale():
    state = SourceState(StaticSource("rocm", {"gpus": []}, interval_sec=5.0))
    state.poll(lambda: 0.0)
    assert not state.is_stale(9.0)
    assert state.is_stale(11.0)
    assert state.status(11.0)["status"] == "stale"


def test_periodic_thread_survives_an_exception_in_its_task():
    calls, done = [], threading.Event()

    def task():
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("boom")
        done.set()

    thread = PeriodicThread("t", 0.01, task)
    thread.start()
    try:
        assert done.wait(2.0)
    finally:
        thread.stop()


def test_a_woken_periodic_thread_runs_its_task_at_once_and_then_on_a_schedule_from_there():
    for native in (False, True):
        calls: list[float] = []
        thread = PeriodicThread("t", 60.0, lambda: calls.append(time.monotonic()), native=native)
        thread.start()
        try:
            deadline = time.monotonic() + 2
            while not calls and time.monotonic() < deadline:
                time.sleep(0.01)
            thread.wake()
            while len(calls) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(calls) == 2  # the second call came at the wake, not 60 s later
            time.sleep(0.2)
            assert len(calls) == 2  # one wake, one extra call
        finally:
            began = time.monotonic()
            thread.stop()
        assert not thread.is_alive() and time.monotonic() - began < 1
