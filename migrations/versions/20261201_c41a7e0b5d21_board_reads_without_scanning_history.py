"""board reads without scanning history: open tasks carry their territory; step timings rolled up per day

Revision ID: c41a7e0b5d21
Revises: b8bc847b20ef
Create Date: 2026-12-01 22:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c41a7e0b5d21'
down_revision = 'b8bc847b20ef'
branch_labels = None
depends_on = None

# As engine/models/step_timing.py QUEUE_DDL when written: the database queues every completed, dated step.
# (A later migration that rebuilds task_event on SQLite in batch mode must create this trigger again.)
QUEUE_DDL = {
    "postgresql": [
        """CREATE OR REPLACE FUNCTION step_timing_enqueue() RETURNS trigger AS $$
        BEGIN INSERT INTO step_timing_pending (event_id) VALUES (NEW.id); RETURN NULL; END; $$ LANGUAGE plpgsql""",
        """CREATE TRIGGER task_event_step_timing AFTER INSERT ON task_event FOR EACH ROW
        WHEN (NEW.action = 'completed' AND NEW.due_at IS NOT NULL) EXECUTE FUNCTION step_timing_enqueue()""",
    ],
    "sqlite": [
        """CREATE TRIGGER task_event_step_timing AFTER INSERT ON task_event
        WHEN NEW.action = 'completed' AND NEW.due_at IS NOT NULL
        BEGIN INSERT INTO step_timing_pending (event_id) VALUES (NEW.id); END""",
    ],
}
DROP_DDL = {
    "postgresql": ["DROP TRIGGER IF EXISTS task_event_step_timing ON task_event",
                   "DROP FUNCTION IF EXISTS step_timing_enqueue()"],
    "sqlite": ["DROP TRIGGER IF EXISTS task_event_step_timing"],
}


def upgrade() -> None:
    with op.batch_alter_table('open_task', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.add_column(sa.Column('territory_id', sa.Integer(), nullable=True))
    op.execute("UPDATE open_task SET territory_id = "
               "(SELECT case_file.territory_id FROM case_file WHERE case_file.id = open_task.case_id)")
    with op.batch_alter_table('open_task', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.alter_column('territory_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(batch_op.f('fk_open_task_territory_id_territory'), 'territory',
                                    ['territory_id'], ['id'])
        batch_op.create_index('ix_open_task_territory_board',
                              ['territory_id', 'agency_id', 'assignee_id', 'element_id'], unique=False,
                              postgresql_include=['name', 'visible_from', 'due_at'])
        batch_op.create_index('ix_open_task_form_due', ['form', 'territory_id', 'due_at'], unique=False)

    with op.batch_alter_table('case_file', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_file_territory_id'))
        batch_op.create_index('ix_case_file_territory_status_level', ['territory_id', 'status', 'risk_level'],
                              unique=False)

    op.create_table('step_timing_day',
    sa.Column('territory_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('element_id', sa.String(length=120), nullable=False),
    sa.Column('delay_s', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('completed', sa.Integer(), nullable=False),
    sa.Column('on_time', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['territory_id'], ['territory.id'], name=op.f('fk_step_timing_day_territory_id_territory')),
    sa.PrimaryKeyConstraint('territory_id', 'day', 'element_id', 'delay_s', name=op.f('pk_step_timing_day'))
    )
    op.create_table('step_timing_pending',
    sa.Column('event_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['task_event.id'], name=op.f('fk_step_timing_pending_event_id_task_event'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_step_timing_pending'))
    )
    for statement in QUEUE_DDL.get(op.get_bind().dialect.name, []):
        op.execute(statement)
    # The history so far: queued, and rolled up by the deadline worker's next passes (ten batches a pass).
    op.execute("INSERT INTO step_timing_pending (event_id) SELECT id FROM task_event "
               "WHERE action = 'completed' AND due_at IS NOT NULL")


def downgrade() -> None:
    for statement in DROP_DDL.get(op.get_bind().dialect.name, []):
        op.execute(statement)
    op.drop_table('step_timing_pending')
    op.drop_table('step_timing_day')
    with op.batch_alter_table('case_file', schema=None) as batch_op:
        batch_op.drop_index('ix_case_file_territory_status_level')
        batch_op.create_index(batch_op.f('ix_case_file_territory_id'), ['territory_id'], unique=False)
    with op.batch_alter_table('open_task', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_index('ix_open_task_form_due')
        batch_op.drop_index('ix_open_task_territory_board')
        batch_op.drop_constraint(batch_op.f('fk_open_task_territory_id_territory'), type_='foreignkey')
        batch_op.drop_column('territory_id')
