"""GPU identity without an index; process names; per-column counts in rollups_1m and series_totals

Written by hand. The C++ crawler sends no gpuIndex: a GPU is now identified on its host by
``gpu_series.gpu_key`` ("u:" + its UUID when known, else "i:" + its index, else "" for the host's
only GPU), and ``gpu_index`` becomes a nullable label. Stored series are keyed by the UUID they carry;
two series of one host with the same UUID (the GPU enumerated under another index after a reboot)
are merged: records move to the most recently seen series (a record at an instant the other already
holds is the same measurement and is dropped), and that series' rollups and totals are rebuilt from
its records, which retention keeps in step with the rollups (both cut at the same whole minute).

``records.name`` holds a process record's process name. ``n1..n3`` count the records that carry each
value column, since a clocks record may now carry any subset of its clocks; existing rows carried all
their kind's fields, so each count is ``n`` where the column has values.

Downgrade keeps every series apart: one without an index, or whose index another series of its host
also reports, gets the lowest index free on that host (the most recently seen keeps its own). Process
names and the per-column counts are dropped.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

STAT_TABLES = ('rollups_1m', 'series_totals')
#: Floor to the minute (SQL's % truncates toward zero, so a timestamp before 1970 needs the second %).
MINUTE = '(ts_ms - ((ts_ms % 60000) + 60000) % 60000)'


def _add_counts():
    for table in STAT_TABLES:
        for k in (1, 2, 3):
            op.add_column(table, sa.Column(f'n{k}', sa.BigInteger(), nullable=False, server_default='0'))
        op.execute(f'UPDATE {table} SET ' + ', '.join(
            f'n{k} = CASE WHEN sum{k} IS NULL THEN 0 ELSE n END' for k in (1, 2, 3)))


def _rebuild_stats(bind, series_id):
    """This series' rollups from its records, then its totals from those rollups."""
    stats = ', '.join(f'count(v{k}), sum(v{k}), min(v{k}), max(v{k})' for k in (1, 2, 3))
    columns = ', '.join(f'n{k}, sum{k}, min{k}, max{k}' for k in (1, 2, 3))
    params = {'sid': series_id}
    for table in STAT_TABLES:
        bind.execute(sa.text(f'DELETE FROM {table} WHERE series_id = :sid'), params)
    bind.execute(sa.text(
        f'INSERT INTO rollups_1m (series_id, metric, minute_ms, n, {columns}) '
        f'SELECT series_id, metric, {MINUTE}, count(*), {stats} FROM records WHERE series_id = :sid '
        f'GROUP BY series_id, metric, {MINUTE}'), params)
    combined = ', '.join(f'sum(n{k}), sum(sum{k}), min(min{k}), max(max{k})' for k in (1, 2, 3))
    bind.execute(sa.text(
        f'INSERT INTO series_totals (series_id, metric, n, {columns}) '
        f'SELECT series_id, metric, sum(n), {combined} FROM rollups_1m WHERE series_id = :sid '
        'GROUP BY series_id, metric'), params)


def _merge_series(bind):
    """Series that now share (hostname, gpu_key) become the one seen last."""
    rows = bind.execute(sa.text(
        'SELECT id, hostname, gpu_key, first_ts_ms, last_ts_ms, record_count FROM gpu_series '
        'ORDER BY hostname, gpu_key, last_ts_ms DESC, id')).all()
    groups = {}
    for row in rows:
        groups.setdefault((row.hostname, row.gpu_key), []).append(row)
    for keeper, *losers in groups.values():
        if not losers:
            continue
        for loser in losers:
            params = {'keeper': keeper.id, 'loser': loser.id}
            bind.execute(sa.text(
                'DELETE FROM records WHERE series_id = :loser AND EXISTS (SELECT 1 FROM records k '
                'WHERE k.series_id = :keeper AND k.metric = records.metric AND k.ts_ms = records.ts_ms '
                'AND k.pid = records.pid)'), params)
            bind.execute(sa.text('UPDATE records SET series_id = :keeper WHERE series_id = :loser'), params)
            for table in STAT_TABLES:
                bind.execute(sa.text(f'DELETE FROM {table} WHERE series_id = :loser'), params)
            bind.execute(sa.text('DELETE FROM gpu_series WHERE id = :loser'), params)
        _rebuild_stats(bind, keeper.id)
        bind.execute(sa.text(
            'UPDATE gpu_series SET first_ts_ms = :first, last_ts_ms = :last, '
            'record_count = (SELECT count(*) FROM records WHERE series_id = :keeper) WHERE id = :keeper'),
            {'keeper': keeper.id, 'first': min(r.first_ts_ms for r in (keeper, *losers)),
             'last': max(r.last_ts_ms for r in (keeper, *losers))})


def upgrade():
    op.add_column('records', sa.Column('name', sa.String(length=1024), nullable=True))
    _add_counts()
    op.add_column('gpu_series', sa.Column('gpu_key', sa.String(length=130), nullable=False, server_default=''))
    op.execute("UPDATE gpu_series SET gpu_key = CASE WHEN gpu_uuid IS NOT NULL AND gpu_uuid <> '' "
               "THEN 'u:' || gpu_uuid ELSE 'i:' || CAST(gpu_index AS VARCHAR(11)) END")
    with op.batch_alter_table('gpu_series') as batch_op:
        batch_op.drop_constraint('uq_gpu_series_host_index', type_='unique')
    _merge_series(op.get_bind())
    with op.batch_alter_table('gpu_series') as batch_op:
        batch_op.alter_column('gpu_key', server_default=None)
        batch_op.alter_column('gpu_index', existing_type=sa.Integer(), nullable=True)
        batch_op.create_unique_constraint('uq_gpu_series_host_key', ['hostname', 'gpu_key'])


def _free_indexes(bind):
    """Every series an index of its own on its host, the most recently seen first to keep theirs."""
    rows = bind.execute(sa.text(
        'SELECT id, hostname, gpu_index FROM gpu_series ORDER BY hostname, last_ts_ms DESC, id')).all()
    taken, pending = {}, []
    for row in rows:
        used = taken.setdefault(row.hostname, set())
        if row.gpu_index is not None and row.gpu_index not in used:
            used.add(row.gpu_index)
        else:
            pending.append(row)
    for row in pending:
        used = taken[row.hostname]
        index = next(i for i in range(len(used) + 1) if i not in used)
        used.add(index)
        bind.execute(sa.text('UPDATE gpu_series SET gpu_index = :index WHERE id = :id'),
                     {'index': index, 'id': row.id})


def downgrade():
    _free_indexes(op.get_bind())
    with op.batch_alter_table('gpu_series') as batch_op:
        batch_op.drop_constraint('uq_gpu_series_host_key', type_='unique')
        batch_op.drop_column('gpu_key')
        batch_op.alter_column('gpu_index', existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint('uq_gpu_series_host_index', ['hostname', 'gpu_index'])
    # ALTER TABLE .. DROP COLUMN (SQLite 3.35+) keeps rollups_1m WITHOUT ROWID, which a batch rebuild
    # would only do if told.
    for table in STAT_TABLES:
        for k in (1, 2, 3):
            op.execute(f'ALTER TABLE {table} DROP COLUMN n{k}')
    op.execute('ALTER TABLE records DROP COLUMN name')
