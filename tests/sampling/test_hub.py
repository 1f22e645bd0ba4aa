from metrics_app.sampling.hub import HubState
from metrics_app.sampling.snapshot import SINGLE_GPU_FIELDS

from ..fakes import HOST_FRAGMENT, StaticGpuSource, StaticSource, gpu_entry


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_hub(*sources, clock=None) -> HubState:
    return HubState(list(sources), interval_sec=1.0, history_seconds=10, clock=clock or Clock())


def poll_all(hub: HubState) -> None:
    for state in hub.states:
        state.poll(hub.clock)


def test_snapshot_keeps_the_live_metrics_format_and_adds_the_gpu_list():
    nvidia = StaticGpuSource("nvidia", "NVIDIA", [gpu_entry(0), gpu_entry(1, utilization=10.0)])
    hub = make_hub(StaticSource("host", HOST_FRAGMENT), nvidia)
    poll_all(hub)
    snapshot = hub.tick().snapshot
    assert list(snapshot) == ["timestamp", "cpu", "memory", "gpu", "battery", "gpus"]
    assert snapshot["timestamp"].endswith("+00:00")
    assert snapshot["cpu"] == HOST_FRAGMENT["cpu"]
    assert snapshot["gpu"] == {key: gpu_entry(0)[key] for key in SINGLE_GPU_FIELDS}
    assert [g["index"] for g in snapshot["gpus"]] == [0, 1]
    assert all(g["stale"] is False for g in snapshot["gpus"])


def test_failed_host_source_gives_null_sections_while_gpus_keep_flowing():
    host = StaticSource("host", HOST_FRAGMENT)
    host.error = PermissionError("denied")
    hub = make_hub(host, StaticGpuSource("nvidia", "NVIDIA", [gpu_entry(0)]))
    poll_all(hub)
    snapshot = hub.tick().snapshot
    assert snapshot["cpu"] is None and snapshot["memory"] is None and snapshot["battery"] is None
    assert snapshot["gpus"][0]["utilization"] == 75.0
    health = hub.health()
    assert health["status"] == "degraded"
    assert health["sampler"]["sources"]["host"]["last_error"] == "PermissionError: denied"


def test_gpus_of_a_source_that_stopped_answering_are_marked_stale():
    clock = Clock()
    hub = make_hub(StaticGpuSource("amd", "AMD", [gpu_entry(0, vendor="AMD")], interval_sec=5.0), clock=clock)
    poll_all(hub)
    clock.now += 11.0
    assert hub.tick().snapshot["gpus"][0]["stale"] is True
    assert hub.health()["status"] == "degraded"


def test_health_names_the_gpu_stack_like_the_live_metrics_api():
    hub = make_hub(StaticGpuSource("nvidia", "NVIDIA", [], available=False, unavailable_reason="LibraryNotFound"),
                   StaticGpuSource("amd", "AMD", [gpu_entry(0, vendor="AMD")]))
    poll_all(hub)
    hub.tick()
    health = hub.health()
    assert (health["nvidia_available"], health["rocm_available"], health["gpu_support"]) == (False, True, "AMD/ROCm")
    assert health["sampler"]["sources"]["nvidia"]["reason"] == "LibraryNotFound"
    assert health["gpus"][0]["vendor"] == "AMD"


def test_no_gpu_stack_at_all():
    hub = make_hub(StaticSource("host", HOST_FRAGMENT))
    poll_all(hub)
    hub.tick()
    health = hub.health()
    assert (health["status"], health["gpu_support"], health["gpus"]) == ("healthy", "None", [])


def test_history_returns_the_last_n_seconds_oldest_first():
    clock = Clock()
    hub = make_hub(StaticSource("host", HOST_FRAGMENT), clock=clock)
    seqs = []
    for _ in range(5):
        seqs.append(hub.tick().seq)
        clock.now += 1.0
    assert [f.seq for f in hub.history(2.5)] == seqs[-2:]
    assert [f.seq for f in hub.history(100)] == seqs


def test_ring_buffer_forgets_beyond_history_seconds():
    hub = make_hub(StaticSource("host", HOST_FRAGMENT))
    for _ in range(25):
        hub.tick()
    assert len(hub.history(1e9)) == 10


def test_a_waiting_reader_gets_only_the_newest_frame():
    hub = make_hub(StaticSource("host", HOST_FRAGMENT))
    first = hub.tick()
    hub.tick()
    newest = hub.tick()
    assert hub.buffer.wait_newer(first.seq, timeout=0.01) is newest
    assert hub.buffer.wait_newer(newest.seq, timeout=0.01) is None


def test_start_publishes_a_first_frame_immediately_and_keeps_ticking():
    hub = HubState([StaticSource("host", HOST_FRAGMENT, interval_sec=0.05)], interval_sec=0.05, history_seconds=5)
    hub.start()
    try:
        first = hub.latest()
        assert first is not None and first.snapshot["cpu"] == HOST_FRAGMENT["cpu"]
        assert hub.buffer.wait_newer(first.seq, timeout=1.0) is not None
        assert hub.health()["sampler"]["running"] is True
    finally:
        hub.stop()


def test_readers_wait_two_intervals_for_a_frame_but_never_under_a_second():
    assert HubState([], interval_sec=3.0, history_seconds=10).frame_wait_sec == 6.0
    assert HubState([], interval_sec=0.1, history_seconds=10).frame_wait_sec == 1.0


def test_first_frame_does_not_wait_on_a_sampler_that_never_started():
    hub = make_hub(StaticSource("host", HOST_FRAGMENT))
    assert hub.first_frame() is None  # returns at once: nothing will tick
    hub.tick()
    assert hub.first_frame() is not None
