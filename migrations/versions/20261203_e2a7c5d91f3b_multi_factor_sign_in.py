"""multi-factor sign-in: TOTP enrolments, recovery codes and the roles that require it

Revision ID: e2a7c5d91f3b
Revises: 3f9a6c2e8d15
Create Date: 2026-12-03 19:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e2a7c5d91f3b'
down_revision = '3f9a6c2e8d15'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('user_mfa',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('secret', sa.String(length=255), nullable=True),
    sa.Column('enrolled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pending_secret', sa.String(length=255), nullable=True),
    sa.Column('last_step', sa.Integer(), nullable=False),
    sa.Column('failed_codes', sa.Integer(), nullable=False),
    sa.Column('exempt', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_user_mfa_user_id_user_account'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_user_mfa'))
    )
    op.create_table('mfa_recovery_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=255), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'],
                            name=op.f('fk_mfa_recovery_code_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mfa_recovery_code'))
    )
    op.create_index(op.f('ix_mfa_recovery_code_user_id'), 'mfa_recovery_code', ['user_id'], unique=False)
    op.create_table('mfa_role_policy',
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('role', name=op.f('pk_mfa_role_policy'))
    )


def downgrade() -> None:
    op.drop_table('mfa_role_policy')
    op.drop_index(op.f('ix_mfa_recovery_code_user_id'), table_name='mfa_recovery_code')
    op.drop_table('mfa_recovery_code')
    op.drop_table('user_mfa')
