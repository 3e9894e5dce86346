"""Deadline arithmetic: a task's due date, visibility and priority from its model properties."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from engine import durations, sandbox
from engine.calendar import add_working_days
from engine.errors import ExecutionError
from engine.properties import DUE, VISIBLE_BEFORE, StepProperties


@dataclass(frozen=True)
class TaskTiming:
    """When a task is due, from when it shows in worklists, and its priority."""

    due_at: datetime | None
    visible_from: datetime
    priority: int


def resolve_when(value: Any, start: datetime, region: str | None, what: str) -> datetime:
    """Turn a deadline value (duration, working days, ISO text or datetime) into an aware UTC time."""
    if isinstance(value, durations.WorkingDays):
        return add_working_days(start, value.days, region)
    if isinstance(value, timedelta):
        return start + value
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.upper().startswith("P"):
            return start + durations.parse_duration(text)
        return durations.parse_datetime(text)
    raise ExecutionError(f"{what} gave {value!r}; expected a duration, working_days(n) or a date")


def task_timing(
    step: StepProperties, data: Mapping[str, Any], now: datetime, region: str | None,
    boundary_timer_at: datetime | None,
) -> TaskTiming:
    """Compute a ready task's deadline from its `due` property or, failing that, its boundary timer."""
    clock = {"now": lambda: now}
    due_at = boundary_timer_at
    if step.due:
        due_at = resolve_when(sandbox.evaluate(step.due, data, clock), now, region, DUE)
    visible_from = now
    if due_at is not None and step.visible_before:
        lead = sandbox.evaluate(step.visible_before, data, clock)
        visible_from = max(now, due_at - (resolve_when(lead, now, region, VISIBLE_BEFORE) - now))
    priority = 0
    if step.priority:
        priority = int(sandbox.evaluate(step.priority, data, clock))
    return TaskTiming(due_at, visible_from, priority)


def parse_when_or_none(value: object) -> datetime | None:
    """Read an ISO datetime kept in case facts (aware UTC), or None when absent or not a date."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
