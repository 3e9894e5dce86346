"""How each step was done against its deadline, rolled up per territory, day and rounded delay.

The supervisor's board reports, per step, how many were completed in a period, how many on time and
the median and 90th percentile of the delay against the deadline. Over years of history that would
mean sorting millions of `task_event` rows on every view, so completions are rolled up:

- the database itself queues every completed, dated step (`step_timing_pending`, filled by a trigger
  on `task_event`: no extra statement on the completion's hot path, nothing missed by a transaction
  that commits late);
- the deadline worker moves the queue into `step_timing_day` (one row per territory, day, step and
  rounded delay, with counts) and deletes what it moved in the same transaction: exactly once;
- the board sums the rows of the period and adds whatever is still queued.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import DDL, Date, ForeignKey, Integer, String, event
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base


class StepTimingDay(Base):
    """Completions of one step in one territory on one (Madrid) day with one rounded delay."""

    __tablename__ = "step_timing_day"

    territory_id: Mapped[int] = mapped_column(ForeignKey("territory.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    element_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    # The delay against the deadline in seconds (negative: before it), rounded (engine.stats.delay_bucket).
    delay_s: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))  # the step's name in the newest completion rolled up
    completed: Mapped[int] = mapped_column(Integer)
    on_time: Mapped[int] = mapped_column(Integer)  # of which on or before the deadline (exact, not rounded)


class StepTimingPending(Base):
    """A completed, dated step not yet rolled up (filled by a trigger on task_event)."""

    __tablename__ = "step_timing_pending"

    event_id: Mapped[int] = mapped_column(ForeignKey("task_event.id", ondelete="CASCADE"), primary_key=True,
                                          autoincrement=False)


# The queue is filled by the database: any insert of a completed step with a deadline, whoever makes it.
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

for _dialect, _statements in QUEUE_DDL.items():
    for _statement in _statements:
        event.listen(
            StepTimingPending.__table__, "after_create",  # task_event exists by then (foreign key order)
            DDL(_statement).execute_if(dialect=_dialect),  # type: ignore[no-untyped-call]
        )
