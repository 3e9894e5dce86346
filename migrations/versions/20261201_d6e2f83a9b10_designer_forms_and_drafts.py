"""designer: forms as versioned definitions, the origin of each version, the pinned forms of a process, drafts

Revision ID: d6e2f83a9b10
Revises: c41a7e0b5d21
Create Date: 2026-12-01 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = 'd6e2f83a9b10'
down_revision = 'c41a7e0b5d21'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every version deployed before this revision came from the files (`flask processes deploy`).
    with op.batch_alter_table('definition', schema=None) as batch_op:
        batch_op.add_column(sa.Column('form_ids', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'),
                                      nullable=True))
        batch_op.add_column(sa.Column('origin', sa.String(length=16), nullable=False, server_default='files'))

    op.create_table('definition_draft',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('file_name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('base_definition_id', sa.Integer(), nullable=True),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('updated_by', sa.String(length=80), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('row_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['base_definition_id'], ['definition.id'],
                            name=op.f('fk_definition_draft_base_definition_id_definition')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_definition_draft')),
    sa.UniqueConstraint('file_name', name=op.f('uq_definition_draft_file_name'))
    )


def downgrade() -> None:
    op.drop_table('definition_draft')
    with op.batch_alter_table('definition', schema=None) as batch_op:
        batch_op.drop_column('origin')
        batch_op.drop_column('form_ids')
