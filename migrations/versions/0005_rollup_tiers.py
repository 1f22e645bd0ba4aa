"""rollups_1h (per-hour rollups outliving the per-minute ones); records keyed by their natural key

Written by hand, two changes:
- rollups_1h is filled from the existing minutes (exact: an hour's counts, sums, minima and maxima
  combine from its minutes, the per-column counts ``n1..n3`` included), so a database upgraded in
  place answers long ranges at once.
- records loses its surrogate ``id`` and the time index only retention used: the natural key
  (series_id, metric, ts_ms, pid) becomes the primary key. SQLite stores the table in that key's
  B-tree (WITHOUT ROWID, ~69 -> ~31 bytes a record), which it can only do by copying the table, in
  key order so the pages come out full; the freed pages stay in the file for new records until a
  ``VACUUM``. PostgreSQL swaps the constraints in place (its heap keeps the dropped column's bytes
  in existing rows until they are rewritten).
Downgrade restores the surrogate ids (in time order on SQLite, in heap order on PostgreSQL) and
both indexes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

STATS = ('n', 'n1', 'sum1', 'min1', 'max1', 'n2', 'sum2', 'min2', 'max2', 'n3', 'sum3', 'min3', 'max3')
#: Floor to the hour (SQL's % truncates toward zero, so a minute before 1970 needs the second %).
HOUR = '(minute_ms - ((minute_ms % 3600000) + 3600000) % 3600000)'


def _stat_columns():
    columns = [sa.Column('n', sa.BigInteger(), nullable=False)]
    for k in (1, 2, 3):
        columns.append(sa.Column(f'n{k}', sa.BigInteger(), nullable=False, server_default='0'))
        columns += [sa.Column(f'{stat}{k}', sa.Float(), nullable=True) for stat in ('sum', 'min', 'max')]
    return columns


def _record_columns():
    return [sa.Column('series_id', sa.Integer(), nullable=False),
            sa.Column('metric', sa.SmallInteger(), nullable=False),
            sa.Column('ts_ms', sa.BigInteger(), nullable=False),
            sa.Column('pid', sa.Integer(), nullable=False),
            sa.Column('v1', sa.Float(), nullable=True),
            sa.Column('v2', sa.Float(), nullable=True),
            sa.Column('v3', sa.Float(), nullable=True),
            sa.Column('name', sa.String(length=1024), nullable=True)]


KEY = 'series_id, metric, ts_ms, pid'
VALUES = f'{KEY}, v1, v2, v3, name'


def _copy_records(*constraints, order, **table_kwargs):
    """SQLite: rebuild ``records`` with other keys, copying every row in ``order``."""
    op.create_table('records_copy', *_record_columns(), *constraints, **table_kwargs)
    op.execute(f'INSERT INTO records_copy ({VALUES}) SELECT {VALUES} FROM records ORDER BY {order}')
    op.drop_table('records')
    op.rename_table('records_copy', 'records')


def _cluster_records():
    if op.get_bind().dialect.name == 'sqlite':
        _copy_records(sa.PrimaryKeyConstraint('series_id', 'metric', 'ts_ms', 'pid'), order=KEY,
                      sqlite_with_rowid=False)
        return
    op.drop_constraint('records_pkey', 'records', type_='primary')
    op.drop_column('records', 'id')
    op.drop_index('ix_records_ts_ms', table_name='records')
    op.drop_constraint('uq_records_natural_key', 'records', type_='unique')
    op.create_primary_key('records_pkey', 'records', ['series_id', 'metric', 'ts_ms', 'pid'])


def _uncluster_records():
    if op.get_bind().dialect.name == 'sqlite':
        _copy_records(sa.Column('id', sa.Integer(), nullable=False), sa.PrimaryKeyConstraint('id'),
                      sa.UniqueConstraint('series_id', 'metric', 'ts_ms', 'pid', name='uq_records_natural_key'),
                      order=f'ts_ms, {KEY}')
    else:
        op.drop_constraint('records_pkey', 'records', type_='primary')
        op.execute('ALTER TABLE records ADD COLUMN id BIGSERIAL')
        op.create_primary_key('records_pkey', 'records', ['id'])
        op.create_unique_constraint('uq_records_natural_key', 'records', ['series_id', 'metric', 'ts_ms', 'pid'])
    op.create_index('ix_records_ts_ms', 'records', ['ts_ms'], unique=False)


def upgrade():
    op.create_table('rollups_1h',
    sa.Column('series_id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.SmallInteger(), nullable=False),
    sa.Column('hour_ms', sa.BigInteger(), nullable=False),
    *_stat_columns(),
    sa.PrimaryKeyConstraint('series_id', 'metric', 'hour_ms'),
    sqlite_with_rowid=False
    )
    # Counts and sums add up (sum() skips a column's NULLs); mins and maxes take the extreme.
    aggregates = ', '.join(f"{ {'min': 'min', 'max': 'max'}.get(s[:3], 'sum') }({s})" for s in STATS)
    op.execute(f'INSERT INTO rollups_1h (series_id, metric, hour_ms, {", ".join(STATS)}) '
               f'SELECT series_id, metric, {HOUR}, {aggregates} FROM rollups_1m GROUP BY series_id, metric, {HOUR}')
    _cluster_records()


def downgrade():
    _uncluster_records()
    op.drop_table('rollups_1h')
