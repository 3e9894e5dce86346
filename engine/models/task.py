"""Open human tasks and the append-only task history."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base


class OpenTask(Base):
    """A READY user task, indexed for worklists; deleted when completed or cancelled."""

    __tablename__ = "open_task"
    __table_args__ = (
        UniqueConstraint("instance_id", "task_guid"),
        # Worklists: count a tab from the index alone; page through it in its order (deadline, then level).
        Index("ix_open_task_queue", "agency_id", "assignee_id", "visible_from", "due_at"),
        Index("ix_open_task_agency_deadline", "agency_id", "due_at", "risk_rank"),
        Index("ix_open_task_assignee_deadline", "assignee_id", "due_at", "risk_rank"),
        Index("ix_open_task_agency_step", "agency_id", "element_id"),
        Index("ix_open_task_due", "due_at"),
        # The supervisor's board counts a territory's open steps by agency, member and step from this index alone.
        Index("ix_open_task_territory_board", "territory_id", "agency_id", "assignee_id", "element_id",
              postgresql_include=["name", "visible_from", "due_at"]),
        # ... and lists the risk assessments due soon by form and deadline.
        Index("ix_open_task_form_due", "form", "territory_id", "due_at"),
        # The watchdog (engine/violations.py): each case's open steps of a kind and their earliest deadline.
        Index("ix_open_task_element_case_due", "element_id", "case_id", "due_at"),
        # Rows are deleted on completion: never hand a deleted task's id to a new task on SQLite.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    # The case's territory, kept here (like risk_rank) so that the board reads open steps without the cases.
    territory_id: Mapped[int] = mapped_column(ForeignKey("territory.id"))
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    task_guid: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(120))
    name: Mapped[str] = mapped_column(String(200))
    lane: Mapped[str | None] = mapped_column(String(120))
    agency_kind: Mapped[str | None] = mapped_column(String(40))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agency.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    form: Mapped[str | None] = mapped_column(String(120))
    # The model says this step needs to know who she is (property needsIdentity): need-to-know.
    needs_identity: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    visible_from: Mapped[datetime]
    due_at: Mapped[datetime | None]
    priority: Mapped[int] = mapped_column(Integer, default=0)
    # The case's risk level as a rank in the deployed scale (engine.levels), kept here so worklists sort by index.
    risk_rank: Mapped[int] = mapped_column(Integer, default=0)
    draft: Mapped[dict[str, Any] | None]
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Escalation schedule (engine/escalation.py), computed when the task is created: how far it went
    # (0 nothing, 1 reminded, 2 its agency told it is overdue, 3 supervisors, 4 the Mesa), the model's
    # periods around the deadline, and when the deadline worker acts next (selected by this index only).
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None] = mapped_column(index=True)
    reminder_before: Mapped[timedelta | None]
    escalate_agency_after: Mapped[timedelta | None]
    escalate_supervisor_after: Mapped[timedelta | None]
    escalate_coordinator_after: Mapped[timedelta | None]


class TaskEvent(Base):
    """Something that happened to a task or instance: who, what, when, with which data."""

    __tablename__ = "task_event"
    __table_args__ = (
        Index("ix_task_event_case_at", "case_id", "at"),
        # Need-to-know: "has this agency ever had a task in this case?"
        Index("ix_task_event_agency_case", "agency_id", "case_id"),
        # The Mesa's proposals: incidents started and complaint steps completed lately (read on every page
        # a coordinator opens, for the header's count), without walking the history.
        Index("ix_task_event_action_element_at", "action", "element_id", "at"),
        # The watchdog: "which cases ever completed this step?" read from the index alone.
        Index("ix_task_event_action_element_case", "action", "element_id", "case_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"))
    # The open_task row this event was about (rows are deleted on completion; this outlives them).
    task_id: Mapped[int | None] = mapped_column(Integer, index=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), index=True)
    task_guid: Mapped[str | None] = mapped_column(String(36))
    element_id: Mapped[str | None] = mapped_column(String(120))
    name: Mapped[str | None] = mapped_column(String(200))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agency.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    action: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    data: Mapped[dict[str, Any] | None]
