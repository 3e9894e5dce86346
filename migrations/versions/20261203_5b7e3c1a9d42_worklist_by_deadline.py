"""worklist by deadline: the tabs' order indexes lead with the due date, the level breaks ties

Revision ID: 5b7e3c1a9d42
Revises: e2a7c5d91f3b
Create Date: 2026-12-03 20:55:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '5b7e3c1a9d42'
down_revision = 'e2a7c5d91f3b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('open_task', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_index('ix_open_task_agency_order')
        batch_op.drop_index('ix_open_task_assignee_order')
        batch_op.create_index('ix_open_task_agency_deadline', ['agency_id', 'due_at', 'risk_rank'], unique=False)
        batch_op.create_index('ix_open_task_assignee_deadline', ['assignee_id', 'due_at', 'risk_rank'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('open_task', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_index('ix_open_task_assignee_deadline')
        batch_op.drop_index('ix_open_task_agency_deadline')
        batch_op.create_index('ix_open_task_assignee_order', ['assignee_id', 'risk_rank', 'due_at'], unique=False)
        batch_op.create_index('ix_open_task_agency_order', ['agency_id', 'risk_rank', 'due_at'], unique=False)
