"""``rollup_stats`` against the plainest fold: every row merged into its minute one at a time, in row
order, and the minutes into their hours and totals; sums, minima and maxima compared exactly (an
int stays an int, -0.0 stays -0.0, a float sum is added up in the same order)."""
from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from metrics_app.storage.rollups import HOURS, ROLLUPS, TOTALS, rollup_stats
from metrics_app.storage.tiers import HOUR_MS, MINUTE_MS, Cutoffs

CUTS = Cutoffs(raw=2 * HOUR_MS + 2 * MINUTE_MS, minute=HOUR_MS, hour=0)
VALUES = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from([-0.0, 0.1, 0.2, 1e300, 2.5]),
                   st.floats(-1e6, 1e6, allow_nan=False))
ROWS = st.lists(st.tuples(st.integers(1, 2), st.integers(1, 2),
                          st.sampled_from([0, 1, 2]).map(lambda h: h * HOUR_MS) | st.just(0),
                          st.integers(0, 4 * MINUTE_MS - 1), VALUES, VALUES, VALUES), max_size=60)


def _fold(into: dict[Any, list[Any]], key: Any, count: int, values: list[tuple[int, Any, Any, Any]]) -> None:
    stats = into.setdefault(key, [0] + [0, None, None, None] * 3)
    stats[0] += count
    for at, (n, total, low, high) in zip((1, 5, 9), values):
        if not n:
            continue
        if not stats[at]:
            stats[at:at + 4] = n, total, low, high
            continue
        stats[at] += n
        stats[at + 1] += total
        stats[at + 2] = low if low < stats[at + 2] else stats[at + 2]
        stats[at + 3] = high if high > stats[at + 3] else stats[at + 3]


def _expected(rows: list[tuple]) -> tuple[dict[int, int], dict[Any, list[list[Any]]]]:
    minutes: dict[Any, list[Any]] = {}
    for series_id, metric, ts_ms, _pid, *values in rows:
        _fold(minutes, (series_id, metric, ts_ms - ts_ms % MINUTE_MS), 1,
              [(0, None, None, None) if v is None else (1, v, v, v) for v in values])
    hours: dict[Any, list[Any]] = {}
    totals: dict[Any, list[Any]] = {}
    per_series: dict[int, int] = {}
    for (series_id, metric, minute), stats in minutes.items():
        split = [tuple(stats[at:at + 4]) for at in (1, 5, 9)]
        _fold(hours, (series_id, metric, minute - minute % HOUR_MS), stats[0], split)
        if minute >= CUTS.raw:
            _fold(totals, (series_id, metric), stats[0], split)
            per_series[series_id] = per_series.get(series_id, 0) + stats[0]
    kept = {k: s for k, s in minutes.items() if k[2] >= CUTS.minute}
    return per_series, {table: [[*k, *s] for k, s in sorted(stats.items())]
                        for table, stats in ((ROLLUPS, kept), (HOURS, hours), (TOTALS, totals))}


@settings(max_examples=300, deadline=None)
@given(ROWS)
def test_rollup_stats_equal_a_row_by_row_fold(drawn):
    rows = [(series_id, metric, hour + ms, -1, v1, v2, v3) for series_id, metric, hour, ms, v1, v2, v3 in drawn]
    columns = [tuple(column) for column in zip(*rows)] or [()] * 7
    per_series, merges = rollup_stats([*columns, (None,) * len(rows)], CUTS)
    expected_per_series, expected = _expected(rows)
    assert per_series == expected_per_series
    assert repr(merges) == repr(expected)
