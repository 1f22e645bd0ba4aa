"""The rocm-smi source running a fake rocm-smi found on PATH: normal, warning, garbage, hung."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from metrics_app.sampling.rocm import RocmSmiError, RocmSmiSource
from metrics_app.sampling.runner import SourceState

BIN = Path(__file__).parent / "bin"


@pytest.fixture
def fake_rocm_smi(monkeypatch: pytest.MonkeyPatch, shared_dir: Path):
    """Puts tests/sampling/bin (its ``rocm-smi``) first on PATH; returns a function choosing its mode."""
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    fixture = shared_dir / "fixtures" / "rocm-smi" / "rocm-smi_mi100_rocm602_telegraf.json"
    monkeypatch.setenv("FAKE_ROCM_SMI_OUTPUT", str(fixture))

    def mode(name: str) -> None:
        monkeypatch.setenv("FAKE_ROCM_SMI_MODE", name)
    return mode


def test_reads_all_cards_through_path(fake_rocm_smi) -> None:
    fake_rocm_smi("print")
    src = RocmSmiSource(interval_sec=5.0, timeout_sec=10.0)
    gpus = src.read()["gpus"]
    assert [g["uuid"] for g in gpus] == ["0x79ccd55167a2124a", "0x4edfb117a17a07d",
                                         "0xd4a9ec48d03d261d", "0x1b9dd972253c3736"]
    assert src.available is True and src.unavailable_reason is None


def test_warning_line_before_json(fake_rocm_smi) -> None:
    fake_rocm_smi("warning")
    assert len(RocmSmiSource(interval_sec=5.0, timeout_sec=10.0).read()["gpus"]) == 4


@pytest.mark.parametrize("exit_code, message", [
    ("0", "rocm-smi printed no JSON object: 'ERROR: GPU\\[0\\]"),
    ("1", "rocm-smi exited with 1: ERROR: GPU\\[0\\].*Permission denied"),
])
def test_garbage_fails_the_source_with_a_clear_error(fake_rocm_smi, monkeypatch: pytest.MonkeyPatch,
                                                     exit_code: str, message: str) -> None:
    fake_rocm_smi("garbage")
    monkeypatch.setenv("FAKE_ROCM_SMI_EXIT", exit_code)
    with pytest.raises(RocmSmiError, match=message):
        RocmSmiSource(interval_sec=5.0, timeout_sec=10.0).read()


@pytest.mark.slow  # waits out a 1 s timeout and a process tree's death
def test_hung_rocm_smi_is_killed_with_its_children_and_marked_failed(fake_rocm_smi, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pids_file = tmp_path / "pids"
    monkeypatch.setenv("FAKE_ROCM_SMI_PIDS", str(pids_file))
    fake_rocm_smi("print")
    state = SourceState(RocmSmiSource(interval_sec=0.2, timeout_sec=1.0))
    state.poll(time.monotonic)
    assert state.reading is not None and len(state.reading["gpus"]) == 4

    fake_rocm_smi("hang")
    started = time.monotonic()
    state.poll(time.monotonic)
    assert time.monotonic() - started < 3.0
    assert state.failing and state.reading is None  # its GPUs drop out instead of showing old numbers
    assert "did not answer within 1 s and was killed" in state.last_error
    assert state.status(time.monotonic())["status"] == "error"
    for pid in map(int, pids_file.read_text().split()):  # rocm-smi and the child it started
        deadline = time.monotonic() + 2
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed grandchild lingers as a zombie of init until reaped; that is dead for us.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


def test_missing_rocm_smi_is_unavailable_with_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    src = RocmSmiSource(interval_sec=5.0, timeout_sec=1.0)
    assert src.read() == {"gpus": []}
    assert src.available is False and "rocm-smi not found on PATH" in src.unavailable_reason


def test_an_old_rocm_smi_refusing_the_newer_flags_is_read_without_them(fake_rocm_smi, monkeypatch, tmp_path) -> None:
    fake_rocm_smi("old")
    log = tmp_path / "runs"
    monkeypatch.setenv("FAKE_ROCM_SMI_LOG", str(log))
    src = RocmSmiSource(interval_sec=5.0, timeout_sec=10.0)
    assert len(src.read()["gpus"]) == 4 and src.available is True
    assert len(src.read()["gpus"]) == 4
    runs = log.read_text().splitlines()
    # refused once with the energy/replay flags, then read twice without them
    assert ["--showenergycounter" in run for run in runs] == [True, False, False]
