"""job_runs: each job's latest success and latest failure, and its failures in a row

Written by hand. One ``finished_ms`` could not tell "last succeeded at" from "last failed at", so
/health could not say how long a job had been failing. The retention-only ``deleted`` count goes
(the retention log line keeps it). Existing rows keep their latest run as a success or a failure.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('job_runs') as batch:
        batch.add_column(sa.Column('last_success_ms', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('last_failure_ms', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('failures', sa.Integer(), nullable=False, server_default='0'))
    op.execute("UPDATE job_runs SET last_success_ms = finished_ms WHERE error IS NULL")
    op.execute("UPDATE job_runs SET last_failure_ms = finished_ms, failures = 1 WHERE error IS NOT NULL")
    with op.batch_alter_table('job_runs') as batch:
        batch.drop_column('finished_ms')
        batch.drop_column('deleted')


def downgrade():
    with op.batch_alter_table('job_runs') as batch:
        batch.add_column(sa.Column('finished_ms', sa.BigInteger(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('deleted', sa.BigInteger(), nullable=False, server_default='0'))
    op.execute("UPDATE job_runs SET finished_ms = CASE WHEN last_failure_ms > COALESCE(last_success_ms, 0) "
               "THEN last_failure_ms ELSE COALESCE(last_success_ms, 0) END")
    with op.batch_alter_table('job_runs') as batch:
        batch.drop_column('failures')
        batch.drop_column('last_failure_ms')
        batch.drop_column('last_success_ms')
