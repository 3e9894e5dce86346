"""One running instance per track: process_instance.track and its partial unique index.

Revision ID: a1c5e9d2f470
Revises: e7f3a94b0c21
Create Date: 2026-12-03 16:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'a1c5e9d2f470'
down_revision = 'e7f3a94b0c21'
branch_labels = None
depends_on = None

WHERE = "status = 'running' AND track IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table('process_instance') as batch:
        batch.add_column(sa.Column('track', sa.String(length=40), nullable=True))
    op.create_index('uq_process_instance_running_track', 'process_instance', ['case_id', 'track'], unique=True,
                    sqlite_where=sa.text(WHERE), postgresql_where=sa.text(WHERE))


def downgrade() -> None:
    op.drop_index('uq_process_instance_running_track', table_name='process_instance')
    with op.batch_alter_table('process_instance') as batch:
        batch.drop_column('track')
