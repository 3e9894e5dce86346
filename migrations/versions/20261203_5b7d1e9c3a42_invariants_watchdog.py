"""invariants watchdog: open violations, and indexes to find cases missing a step without reading history

Revision ID: 5b7d1e9c3a42
Revises: a1c5e9d2f470
Create Date: 2026-12-03 16:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5b7d1e9c3a42'
down_revision = 'a1c5e9d2f470'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('open_violation',
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('invariant_id', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['case_file.id'], name=op.f('fk_open_violation_case_id_case_file'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('case_id', 'invariant_id', 'kind', name=op.f('pk_open_violation'))
    )
    op.create_index('ix_open_task_element_case_due', 'open_task', ['element_id', 'case_id', 'due_at'], unique=False)
    op.create_index('ix_task_event_action_element_case', 'task_event', ['action', 'element_id', 'case_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_task_event_action_element_case', table_name='task_event')
    op.drop_index('ix_open_task_element_case_due', table_name='open_task')
    op.drop_table('open_violation')
