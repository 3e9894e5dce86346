"""A task's escalation schedule: a reminder before its deadline, then its agency, supervisors and the Mesa.

The schedule is computed once, when the task is created (`engine.persistence.sync_tasks`), from the
model's extension properties, and kept on the open_task row: the periods, how far the task went
(`escalation_level`) and when the deadline worker must act next (`next_escalation_at`, indexed).
The worker selects by that index only, never scanning all open tasks; a completed or cancelled task
(its row deleted) simply drops out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine import sandbox
from engine.models import OpenTask
from engine.properties import (
    ESCALATE_AGENCY_AFTER,
    ESCALATE_COORDINATOR_AFTER,
    ESCALATE_SUPERVISOR_AFTER,
    REMINDER_BEFORE,
    StepProperties,
)
from engine.timing import resolve_when

# Levels a task reaches, in order; stage names are the notification kinds and the history's "level".
LEVEL_NONE, LEVEL_REMINDED, LEVEL_AGENCY, LEVEL_SUPERVISOR, LEVEL_COORDINATOR = range(5)
STAGES = {LEVEL_REMINDED: "reminder", LEVEL_AGENCY: "agency", LEVEL_SUPERVISOR: "supervisor",
          LEVEL_COORDINATOR: "coordinator"}
# Periods after the deadline when the model sets none (processes/README.md documents them).
DEFAULT_AGENCY_AFTER = timedelta(0)
DEFAULT_SUPERVISOR_AFTER = timedelta(days=1)
DEFAULT_COORDINATOR_AFTER = timedelta(days=2)


@dataclass(frozen=True)
class EscalationPlan:
    """The model's periods around one task's deadline (the reminder is optional)."""

    reminder_before: timedelta | None
    agency_after: timedelta
    supervisor_after: timedelta
    coordinator_after: timedelta


def plan_escalation(
    step: StepProperties, data: Mapping[str, Any], now: datetime, region: str | None,
    due_at: datetime | None,
) -> EscalationPlan | None:
    """Read a task's reminderBefore and escalate*After properties; None for a task without deadline.

    Each is an expression giving a duration (or `working_days(n)`, counted from the deadline).
    Later levels never come before earlier ones: a period shorter than the previous one is raised to it.
    """
    if due_at is None:
        return None
    clock = {"now": lambda: now}

    def period(name: str, expression: str) -> timedelta | None:
        if not expression:
            return None
        value = sandbox.evaluate(expression, data, clock)
        if value is None or value == "":
            return None
        return max(timedelta(0), resolve_when(value, due_at, region, name) - due_at)

    agency = period(ESCALATE_AGENCY_AFTER, step.escalate_agency_after)
    agency = DEFAULT_AGENCY_AFTER if agency is None else agency
    supervisor = period(ESCALATE_SUPERVISOR_AFTER, step.escalate_supervisor_after)
    supervisor = max(agency, DEFAULT_SUPERVISOR_AFTER if supervisor is None else supervisor)
    coordinator = period(ESCALATE_COORDINATOR_AFTER, step.escalate_coordinator_after)
    coordinator = max(supervisor, DEFAULT_COORDINATOR_AFTER if coordinator is None else coordinator)
    return EscalationPlan(period(REMINDER_BEFORE, step.reminder_before) or None, agency, supervisor, coordinator)


def schedule_escalation(task: OpenTask, plan: EscalationPlan | None) -> None:
    """Store a plan on a new task row and set when the worker first acts on it."""
    task.escalation_level = LEVEL_NONE
    if plan is not None:
        task.reminder_before = plan.reminder_before
        task.escalate_agency_after = plan.agency_after
        task.escalate_supervisor_after = plan.supervisor_after
        task.escalate_coordinator_after = plan.coordinator_after
    following = next_stage(task, LEVEL_NONE)
    task.next_escalation_at = following[1] if following else None


def stage_at(task: OpenTask, level: int) -> datetime | None:
    """Return when a task reaches `level`, or None if it never does (no deadline, no reminder)."""
    due = task.due_at
    if due is None:
        return None
    if level == LEVEL_REMINDED:
        if not task.reminder_before:
            return None
        # Not before the task shows in worklists: remind when it appears, if that is already late.
        at = max(due - task.reminder_before, task.visible_from)
        return at if at < due else None
    after = {
        LEVEL_AGENCY: (task.escalate_agency_after, DEFAULT_AGENCY_AFTER),
        LEVEL_SUPERVISOR: (task.escalate_supervisor_after, DEFAULT_SUPERVISOR_AFTER),
        LEVEL_COORDINATOR: (task.escalate_coordinator_after, DEFAULT_COORDINATOR_AFTER),
    }
    period, default = after[level]
    return due + (default if period is None else period)


def next_stage(task: OpenTask, level: int) -> tuple[int, datetime] | None:
    """Return the first level above `level` the task will reach, and when; None when nothing is left."""
    for candidate in range(level + 1, LEVEL_COORDINATOR + 1):
        at = stage_at(task, candidate)
        if at is not None:
            return candidate, at
    return None


def due_stages(task: OpenTask, now: datetime) -> list[int]:
    """Return the levels the task reaches at `now`, in order (several after a worker outage)."""
    levels = []
    level = task.escalation_level
    while (following := next_stage(task, level)) is not None and following[1] <= now:
        level = following[0]
        levels.append(level)
    return levels


def overtaken(task: OpenTask, level: int, now: datetime) -> bool:
    """Tell whether a reminder is pointless because the deadline passed already (the overdue notice says more)."""
    return level == LEVEL_REMINDED and task.due_at is not None and now >= task.due_at


def advance_escalation(task: OpenTask, level: int) -> None:
    """Record that the task reached `level` and point `next_escalation_at` at the stage after it."""
    task.escalation_level = max(task.escalation_level, level)
    following = next_stage(task, task.escalation_level)
    task.next_escalation_at = following[1] if following else None
