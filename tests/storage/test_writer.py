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
