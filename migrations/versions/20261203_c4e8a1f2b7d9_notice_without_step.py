"""notice without a step: a broken invariant no open step shows is told to the Mesa's coordination

Revision ID: c4e8a1f2b7d9
Revises: 5b7d1e9c3a42
Create Date: 2026-12-03 19:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4e8a1f2b7d9'
down_revision = '5b7d1e9c3a42'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notification') as batch_op:
        batch_op.alter_column('task_id', existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM notification WHERE task_id IS NULL")
    with op.batch_alter_table('notification') as batch_op:
        batch_op.alter_column('task_id', existing_type=sa.Integer(), nullable=False)
