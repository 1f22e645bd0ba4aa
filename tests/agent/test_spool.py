"""The spool: batches come back in order, acknowledged ones never again, a torn line never spoils it."""
from __future__ import annotations

import pytest

from metrics_app.agent.spool import Spool, SpoolBusy


def batch(n: int) -> list[dict]:
    return [{"n": n}]


def test_batches_replay_in_order_and_leave_once_committed(tmp_path):
    spool = Spool(str(tmp_path / "s.jsonl"))
    for n in range(3):
        spool.append(batch(n))
    pending = list(spool.pending())
    assert [b for _, b in pending] == [batch(0), batch(1), batch(2)]
    spool.commit(pending[0][0])
    spool.append(batch(3))
    assert [b for _, b in spool.pending()] == [batch(1), batch(2), batch(3)]
    for offset, _ in spool.pending():
        spool.commit(offset)
    assert spool.batches() == 0 and (tmp_path / "s.jsonl").stat().st_size == 0
    spool.close()


def test_progress_survives_a_restart_of_the_agent(tmp_path):
    path = str(tmp_path / "s.jsonl")
    first = Spool(path)
    first.append(batch(0))
    first.append(batch(1))
    first.commit(next(first.pending())[0])
    first.close()
    second = Spool(path)
    assert [b for _, b in second.pending()] == [batch(1)]
    second.close()


def test_a_line_torn_by_a_crash_is_dropped_before_new_appends(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'[{"n":0}]\n[{"n":1')
    spool = Spool(str(path))
    spool.append(batch(2))
    assert [b for _, b in spool.pending()] == [batch(0), batch(2)]
    spool.close()


def test_two_agents_cannot_share_a_spool(tmp_path):
    first = Spool(str(tmp_path / "s.jsonl"))
    with pytest.raises(SpoolBusy):
        Spool(str(tmp_path / "s.jsonl"))
    first.close()
    Spool(str(tmp_path / "s.jsonl")).close()
