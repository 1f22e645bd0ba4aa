"""series_totals (per-GPU, per-metric all-time stats for /stats); rollups_1m WITHOUT ROWID on SQLite

Written by hand. /stats summed ~167K rollup rows at 10M records (p99 above its 100 ms target); the
totals table answers it from one row per GPU and metric, backfilled here from rollups_1m so existing
data upgrades in place. On SQLite both tables are clustered on their primary key (WITHOUT ROWID),
which SQLite can only do by rebuilding the table; PostgreSQL has no such option and keeps rollups_1m.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 13:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

STATS = ('n', 'sum1', 'min1', 'max1', 'sum2', 'min2', 'max2', 'sum3', 'min3', 'max3')


def _stat_columns():
    return [sa.Column('n', sa.BigInteger(), nullable=False)] + [
        sa.Column(f'{stat}{k}', sa.Float(), nullable=True) for k in (1, 2, 3) for stat in ('sum', 'min', 'max')]


def _rebuild_rollups(with_rowid):
    if op.get_bind().dialect.name == 'sqlite':
        with op.batch_alter_table('rollups_1m', recreate='always',
                                  table_kwargs={'sqlite_with_rowid': with_rowid}):
            pass


def upgrade():
    op.create_table('series_totals',
    sa.Column('series_id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.SmallInteger(), nullable=False),
    *_stat_columns(),
    sa.PrimaryKeyConstraint('series_id', 'metric'),
    sqlite_with_rowid=False
    )
    # n and sums add up; mins and maxes take the extreme.
    aggregates = ', '.join(f"{ {'min': 'min', 'max': 'max'}.get(s[:3], 'sum') }({s})" for s in STATS)
    op.execute(f'INSERT INTO series_totals (series_id, metric, {", ".join(STATS)}) '
               f'SELECT series_id, metric, {aggregates} FROM rollups_1m GROUP BY series_id, metric')
    _rebuild_rollups(with_rowid=False)


def downgrade():
    _rebuild_rollups(with_rowid=True)
    op.drop_table('series_totals')
