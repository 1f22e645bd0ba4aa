"""store_rows directly (the path bench/generate.py and the tailers use)."""
from __future__ import annotations

from sqlalchemy import select

from metrics_app.extensions import db
from metrics_app.storage.engine import write_tx
from metrics_app.storage.models import Record
from metrics_app.storage.writer import Row


def test_mixed_int_and_float_values_and_in_batch_duplicates(app):
    from metrics_app.storage.writer import store_rows

    rows = [Row("h", 0, None, None, 4, 1000, -1, 100, None, None),
            Row("h", 0, None, None, 4, 2000, -1, 100.5, None, None),
            Row("h", 0, None, None, 4, 2000, -1, 100.5, None, None)]
    with app.app_context():
        with write_tx(db.engine) as conn:
            result = store_rows(conn, rows)
        assert (result.saved, result.duplicates) == (2, 1)
        assert sorted(db.session.scalars(select(Record.v1))) == [100.0, 100.5]


def _series(app):
    from metrics_app.storage.models import GpuSeries

    with app.app_context():
        return db.session.scalars(select(GpuSeries)).one()


def _stored_counts(app) -> tuple[int, int, int]:
    """(records, their count in rollups_1m, in rollups_1h): the rollups count each new record once."""
    with app.app_context(), db.engine.connect() as conn:
        return tuple(conn.exec_driver_sql(f"SELECT coalesce(sum({column}), 0) FROM {table}").scalar()
                     for table, column in (("records", "1"), ("rollups_1m", "n"), ("rollups_1h", "n")))


def test_a_batch_of_several_statements_counts_new_rows_in_each(app):
    """Over 2,000 rows SQLite gets one statement per 2,000: here one of old rows only, one of new
    rows only and one of both, each answered by its own insert path."""
    from metrics_app.storage.writer import store_rows

    rows = [Row("h", 0, None, None, 2, 1_000 * i, -1, float(i % 101), 5, None) for i in range(6_000)]
    with app.app_context():
        with write_tx(db.engine) as conn:
            assert store_rows(conn, rows[:2_000] + rows[4_500:4_600]).saved == 2_100
        with write_tx(db.engine) as conn:
            result = store_rows(conn, rows)
    assert (result.saved, result.duplicates) == (3_900, 2_100)
    assert _stored_counts(app) == (6_000, 6_000, 6_000)
    assert _series(app).record_count == 6_000


def test_labels_come_from_the_latest_rows_by_time_not_by_position(app):
    from metrics_app.storage.writer import store_rows

    rows = [Row("h", index, "GPU-x", name, 3, ts, -1, 40.0, None, None)
            for ts, index, name in ((2_000, 0, "B"), (1_000, 1, "A"), (2_000, None, "C"), (3_000, None, None),
                                    (1_500, 5, "D"))]
    with app.app_context(), write_tx(db.engine) as conn:
        store_rows(conn, rows)
    series = _series(app)
    assert (series.first_ts_ms, series.last_ts_ms, series.gpu_index, series.gpu_name) == (1_000, 3_000, 0, "C")


def test_requests_stored_together_count_a_record_once_within_and_across_them(app):
    from metrics_app.storage.writer import store_batches

    a, b = (Row("h", 0, None, None, 4, ts, -1, 100.0, None, None) for ts in (1_000, 2_000))
    with app.app_context(), write_tx(db.engine) as conn:
        results = store_batches(conn, [[a, a], [], [a, b], [b]])
    assert [(r.saved, r.duplicates) for r in results] == [(1, 1), (0, 0), (1, 1), (0, 1)]
    assert _stored_counts(app) == (2, 2, 2)
