"""Process instances: short SpiffWorkflow runs chained within a case."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base

INSTANCE_STATUSES = ("running", "completed", "cancelled")


class ProcessInstance(Base):
    """One run of one definition version for one case; holds the serialized workflow state."""

    __tablename__ = "process_instance"
    __table_args__ = (
        # One running line of work per case and track (DOMAIN.md §9): the engine cancels the running
        # instance of a track before it starts another; the database refuses a second one regardless.
        Index("uq_process_instance_running_track", "case_id", "track", unique=True,
              sqlite_where=text("status = 'running' AND track IS NOT NULL"),
              postgresql_where=text("status = 'running' AND track IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("definition.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(120))
    # The line of work (start event property `track`): police, social, court... None: no limit.
    track: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="running")
    # SpiffWorkflow state without the spec; emptied when the instance ends (history keeps the record).
    state: Mapped[str] = mapped_column(Text)
    serializer_version: Mapped[str] = mapped_column(String(16))
    row_version: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    # The earliest BPMN timer the workflow waits on (mirrors its due_timer row; saves a query per step).
    next_timer_at: Mapped[datetime | None]
    # The final workflow data of a finished instance: what decided the next step of the case.
    outcome: Mapped[dict[str, Any] | None]

    __mapper_args__ = {"version_id_col": row_version}  # noqa: RUF012 - SQLAlchemy's declared mapping
