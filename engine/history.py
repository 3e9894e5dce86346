"""The case history log: one `task_event` row per thing that happened to a case, its processes and tasks.

The log is only appended to (`record`); the workflow state and the open-task and timer tables are
kept by `engine.persistence`. Reads that ask how tasks ended are here too, so "closed" means the
same actions wherever it is asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.models import Case, OpenTask, ProcessInstance, TaskEvent

# The actions that end a task: after one of them it has no open_task row any more.
CLOSING_ACTIONS = ("completed", "cancelled")


def record(
    session: Session, case: Case, action: str, now: datetime, actor: Actor, *,
    instance: ProcessInstance | None = None, task: OpenTask | None = None,
    data: Mapping[str, Any] | None = None,
) -> TaskEvent:
    """Append one entry to the case's task history (and return it, unflushed)."""
    event = TaskEvent(
        case_id=case.id,
        task_id=task.id if task else None,
        instance_id=instance.id if instance else (task.instance_id if task else None),
        task_guid=task.task_guid if task else None,
        element_id=task.element_id if task else None,
        name=task.name if task else None,
        agency_id=task.agency_id if task else actor.agency_id,
        actor_id=actor.user_id,
        action=action,
        at=now,
        due_at=task.due_at if task else None,
        data=dict(data) if data is not None else None,
    )
    session.add(event)
    return event


def how_tasks_closed(session: Session, case_id: int) -> dict[int, str]:
    """Return how each ended task of a case ended ("completed" or "cancelled"), by task id."""
    rows = session.execute(
        select(TaskEvent.task_id, TaskEvent.action).where(
            TaskEvent.case_id == case_id, TaskEvent.action.in_(CLOSING_ACTIONS))
    ).all()
    return {task_id: action for task_id, action in rows if task_id is not None}
