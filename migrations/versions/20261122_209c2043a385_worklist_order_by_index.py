"""worklist order by index: open tasks carry their case's risk rank; indexes for each tab's order

Revision ID: 209c2043a385
Revises: 92df8a512c93
Create Date: 2026-11-22 11:20:33.745854

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '209c2043a385'
down_revision = '92df8a512c93'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('open_task', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.add_column(sa.Column('risk_rank', sa.Integer(), nullable=False, server_default='0'))
        batch_op.drop_index(batch_op.f('ix_open_task_agency_due'))
        batch_op.drop_index(batch_op.f('ix_open_task_assignee_due'))
        batch_op.create_index('ix_open_task_agency_order', ['agency_id', 'risk_rank', 'due_at'], unique=False)
        batch_op.create_index('ix_open_task_agency_step', ['agency_id', 'element_id'], unique=False)
        batch_op.create_index('ix_open_task_assignee_order', ['assignee_id', 'risk_rank', 'due_at'], unique=False)
        batch_op.create_index('ix_open_task_queue', ['agency_id', 'assignee_id', 'visible_from', 'due_at'], unique=False)
    _fill_risk_rank()



def _fill_risk_rank() -> None:
    """Rank the open tasks of existing cases (the order of engine.models.case.RISK_LEVELS when written)."""
    op.execute(
        "UPDATE open_task SET risk_rank = COALESCE((SELECT CASE case_file.risk_level "
        "WHEN 'no_apreciado' THEN 1 WHEN 'bajo' THEN 2 WHEN 'medio' THEN 3 WHEN 'alto' THEN 4 "
        "WHEN 'extremo' THEN 5 ELSE 0 END FROM case_file WHERE case_file.id = open_task.case_id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table('open_task', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_index('ix_open_task_queue')
        batch_op.drop_index('ix_open_task_assignee_order')
        batch_op.drop_index('ix_open_task_agency_step')
        batch_op.drop_index('ix_open_task_agency_order')
        batch_op.create_index(batch_op.f('ix_open_task_assignee_due'), ['assignee_id', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_open_task_agency_due'), ['agency_id', 'assignee_id', 'due_at'], unique=False)
        batch_op.drop_column('risk_rank')

