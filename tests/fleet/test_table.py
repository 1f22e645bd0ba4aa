"""The per-process fleet table: newest record per key, shared frames, coalescing for slow readers."""
from __future__ import annotations

import threading

from metrics_app.fleet.bus import decode, encode
from metrics_app.fleet.table import FleetTable, merged, spans_of
from metrics_app.storage.writer import Row


def row(ts_ms: int, host: str = "h", gpu: int = 0, metric: int = 2, pid: int = -1, value: float = 1.0) -> Row:
    return Row(host, gpu, f"GPU-{gpu}", "H100", metric, ts_ms, pid, value, None, None)


def publish(table: FleetTable, rows: list[Row]):
    table.apply(rows)
    return table.flush()


def test_newer_record_replaces_older_and_older_is_ignored():
    table = FleetTable()
    publish(table, [row(2000, value=5.0)])
    assert table.apply([row(1000, value=9.0)]) == 0  # a replayed old batch changes nothing
    assert table.flush() is None
    _seq, entries = table.snapshot(lambda e: True)
    assert [e.record["gpuPercent"] for e in entries] == [5.0]
    assert entries[0].record["timestamp"] == "1970-01-01T00:00:02.000Z"


def test_one_flush_is_one_frame_holding_the_newest_per_key_of_every_batch_since():
    table = FleetTable()
    table.apply([row(1000, value=1.0), row(3000, value=3.0), row(2000, value=2.0)])
    table.apply([row(1000, gpu=1)])
    table.apply([row(4000, value=4.0)])
    assert table.has_pending.is_set()
    frame = table.flush()
    assert frame.seq == 1 and len(frame.entries) == 2 and not table.has_pending.is_set()
    assert '"gpuPercent":4.0' in frame.text and frame.text.startswith('{"type":"update","records":[')
    assert table.flush() is None


def test_processes_are_kept_per_pid():
    table = FleetTable()
    publish(table, [row(1000, metric=6, pid=1), row(1000, metric=6, pid=2)])
    _seq, entries = table.snapshot(lambda e: True)
    assert sorted(e.record["pid"] for e in entries) == [1, 2]


def test_reader_gets_every_missed_frame_or_none_once_the_ring_moved_on():
    table = FleetTable(ring_frames=3)
    for ts in (1000, 2000, 3000):
        publish(table, [row(ts)])
    assert [f.seq for f in table.wait_after(1, 0.0)] == [2, 3]
    publish(table, [row(4000)])
    assert table.wait_after(0, 0.0) is None  # frame 1 has left the ring: resend from the table
    assert table.wait_after(4, 0.05) == []


def test_a_waiting_reader_is_woken_by_a_batch_from_another_thread():
    table = FleetTable()
    timer = threading.Timer(0.1, publish, args=(table, [row(1000)]))
    timer.start()
    frames = table.wait_after(0, 5.0)
    timer.join()
    assert [f.seq for f in frames] == [1]


def test_host_interval_is_learned_from_repeated_keys():
    table = FleetTable()
    for ts in (0, 1000, 2000, 3000):
        publish(table, [row(ts), row(ts, metric=3)])
    assert table.host_intervals() == {"h": 1000.0}


def test_ended_processes_are_forgotten_other_metrics_are_kept():
    table = FleetTable(forget_processes_ms=60_000)
    publish(table, [row(1_000, metric=6, pid=1), row(100_000, metric=6, pid=2), row(1_000)])
    assert table.forget_ended_processes(now_ms=120_000) == 1
    _seq, entries = table.snapshot(lambda e: True)
    assert sorted(e.key[2:] for e in entries) == [(2, -1), (6, 2)]


def test_clients_asking_alike_share_one_text_holding_only_what_they_follow():
    from metrics_app.fleet.filters import FleetFilter

    table = FleetTable()
    frame = publish(table, [row(1000, host="a", value=1.0), row(1000, host="b", value=2.0),
                            row(1000, host="a", metric=3, value=40.0)])
    follows_a = FleetFilter(hostnames=frozenset({"a"}))
    text = frame.text_for(follows_a)
    assert '"hostname":"a"' in text and '"hostname":"b"' not in text and text.count('"metric"') == 2
    assert frame.text_for(FleetFilter(hostnames=frozenset({"a"}))) is text  # made once, sent to each
    power_of_a = FleetFilter(hostnames=frozenset({"a"}), metric_codes=frozenset({3}))
    assert frame.text_for(power_of_a).count('"metric"') == 1
    assert frame.text_for(FleetFilter(hostnames=frozenset({"c"}))) is None  # nothing to send
    assert frame.text_for(FleetFilter(gpu_ids=frozenset({"GPU-0"}))).count('"metric"') == 3
    assert frame.text_for(FleetFilter()) is frame.text


def test_a_slow_reader_gets_the_newest_per_key_of_the_frames_it_missed_and_only_its_filter():
    from metrics_app.fleet.filters import FleetFilter
    from metrics_app.fleet.views import _coalesced

    table = FleetTable()
    publish(table, [row(1000, value=1.0), row(1000, host="other")])
    publish(table, [row(2000, value=2.0)])
    frames = table.wait_after(0, 0.0)
    entries = _coalesced(frames, FleetFilter(hostnames=frozenset({"h"})))
    assert [(e.key[0], e.record["gpuPercent"]) for e in entries] == [("h", 2.0)]


def test_the_ring_holds_a_bounded_number_of_entries_and_a_reader_beyond_it_gets_the_table():
    """A fleet posting many keys must not keep every entry of the last 512 flushes in memory."""
    table = FleetTable(ring_entries=10)
    for ts in (1000, 2000, 3000):
        publish(table, [row(ts, gpu=gpu) for gpu in range(4)])  # 4 entries a frame
    assert [f.seq for f in table.wait_after(1, 0.0)] == [2, 3]  # frame 1 left: 12 > 10 entries
    assert table.wait_after(0, 0.0) is None
    publish(table, [row(9000, gpu=gpu) for gpu in range(25)])  # one frame over the bound stays, alone
    assert [f.seq for f in table.wait_after(3, 0.0)] == [4]
    assert table.wait_after(2, 0.0) is None


def test_a_sibling_fed_the_published_spans_holds_what_the_committer_holds():
    """A bus sends a batch as its spans (newest row, count, oldest time per key), gathered from
    several commits into one message: the receiving table must end up with the same entries and learn
    the same host interval as the table the rows were committed to."""
    batches = [[row(ts, gpu=gpu, value=ts / 1000) for ts in range(1000, 11_000, 1000) for gpu in range(4)],
               [row(11_000, gpu=gpu) for gpu in range(4)] + [row(5000, host="late")]]
    here, sibling = FleetTable(), FleetTable()
    for batch in batches:
        here.apply(batch)
    message = encode("worker-1", [span for batch in batches for span in spans_of(batch).values()])
    assert len(message) < 1_500  # 45 rows of 5 keys travel as 9 spans
    _source, received = decode(message)
    sibling.apply_spans(merged(received))
    def held(table: FleetTable) -> list:
        return [(entry.key, entry.row) for entry in table.snapshot(lambda e: True)[1]]

    assert held(sibling) == held(here) and len(held(here)) == 5
    assert sibling.host_intervals() == here.host_intervals() == {"h": 1000.0, "late": None}
