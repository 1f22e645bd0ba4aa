"""rollups_1h (per-hour rollups outliving the per-minute ones), backfilled from rollups_1m

Written by hand. The hour tier is filled from the existing minutes (exact: an hour's count, sums,
minima and maxima combine from its minutes), so a database upgraded in place answers long ranges at
once. On SQLite the table is clustered on its primary key (WITHOUT ROWID), like rollups_1m.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-01 22:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0002'
branch_labels = None
depends_on = None

STATS = ('n', 'sum1', 'min1', 'max1', 'sum2', 'min2', 'max2', 'sum3', 'min3', 'max3')
HOUR_MS = 3_600_000


def _stat_columns():
    return [sa.Column('n', sa.BigInteger(), nullable=False)] + [
        sa.Column(f'{stat}{k}', sa.Float(), nullable=True) for k in (1, 2, 3) for stat in ('sum', 'min', 'max')]


def upgrade():
    op.create_table('rollups_1h',
    sa.Column('series_id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.SmallInteger(), nullable=False),
    sa.Column('hour_ms', sa.BigInteger(), nullable=False),
    *_stat_columns(),
    sa.PrimaryKeyConstraint('series_id', 'metric', 'hour_ms'),
    sqlite_with_rowid=False
    )
    # n and sums add up; mins and maxes take the extreme.
    aggregates = ', '.join(f"{ {'min': 'min', 'max': 'max'}.get(s[:3], 'sum') }({s})" for s in STATS)
    hour = f'minute_ms - minute_ms % {HOUR_MS}'
    op.execute(f'INSERT INTO rollups_1h (series_id, metric, hour_ms, {", ".join(STATS)}) '
               f'SELECT series_id, metric, {hour}, {aggregates} FROM rollups_1m GROUP BY series_id, metric, {hour}')


def downgrade():
    op.drop_table('rollups_1h')
