"""Task operations besides completion: claim, release, assign, keep a draft; who may act on a task.

Each works inside the caller's transaction and only flushes, like `engine.execution`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.db import is_postgresql
from engine.errors import ConflictError, NotFoundError, PermissionDeniedError
from engine.history import record
from engine.models import Case, OpenTask, TaskEvent, UserAccount
from engine.persistence import check_version


def lock_task(session: Session, task_id: int) -> OpenTask:
    """Load an open task for update; a task that ended meanwhile is a conflict, an unknown one is not found."""
    query = select(OpenTask).where(OpenTask.id == task_id)
    if is_postgresql(session):
        query = query.with_for_update()
    task = session.execute(query).scalar_one_or_none()
    if task is None:
        closed = session.execute(
            select(TaskEvent.action).where(
                TaskEvent.task_id == task_id, TaskEvent.action.in_(("completed", "cancelled"))
            ).limit(1)
        ).scalar_one_or_none()
        if closed is not None:
            raise ConflictError(f"the task was {closed} meanwhile")
        raise NotFoundError(f"task {task_id} does not exist")
    return task


def can_act_on(task: OpenTask, actor: Actor) -> bool:
    """Tell whether the actor may work on the task: their agency owns it and nobody else claimed it."""
    return of_agency(task, actor) and task.assignee_id in (None, actor.user_id)


def of_agency(task: OpenTask, actor: Actor) -> bool:
    """Tell whether the task belongs to the actor's agency."""
    return actor.agency_id is not None and task.agency_id == actor.agency_id


def claim_task(
    session: Session, task_id: int, *, now: datetime, actor: Actor, expected_version: int | None = None
) -> OpenTask:
    """Take an unclaimed task of one's own agency."""
    task = lock_task(session, task_id)
    check_version(task.version, expected_version, "the task")
    if not of_agency(task, actor):
        raise PermissionDeniedError("only members of the task's agency can claim it")
    if not can_act_on(task, actor):
        raise ConflictError("the task is already claimed by someone else")
    return _set_assignee(session, task, actor.user_id, "claimed", now, actor)


def release_task(
    session: Session, task_id: int, *, now: datetime, actor: Actor, expected_version: int | None = None
) -> OpenTask:
    """Give a claimed task back to the agency queue (its assignee or a supervisor)."""
    task = lock_task(session, task_id)
    check_version(task.version, expected_version, "the task")
    own = task.assignee_id is not None and task.assignee_id == actor.user_id
    supervising = actor.has_role("supervisor") and actor.agency_id == task.agency_id
    if not (own or supervising):
        raise PermissionDeniedError("only the assignee or a supervisor of the agency can release it")
    return _set_assignee(session, task, None, "released", now, actor)


def assign_task(
    session: Session, task_id: int, assignee_id: int, *, now: datetime, actor: Actor,
    expected_version: int | None = None,
) -> OpenTask:
    """Assign a task to a named member of its agency (supervisors only)."""
    task = lock_task(session, task_id)
    check_version(task.version, expected_version, "the task")
    if not actor.has_role("supervisor") or actor.agency_id != task.agency_id:
        raise PermissionDeniedError("only a supervisor of the task's agency can assign it")
    member = session.get(UserAccount, assignee_id)
    if member is None or not member.active or member.agency_id != task.agency_id:
        raise PermissionDeniedError("the assignee must be an active member of the task's agency")
    return _set_assignee(session, task, member.id, "assigned", now, actor)


def _set_assignee(
    session: Session, task: OpenTask, assignee_id: int | None, action: str, now: datetime, actor: Actor
) -> OpenTask:
    task.assignee_id = assignee_id
    task.version += 1
    case = session.get(Case, task.case_id)
    assert case is not None  # foreign key
    record(session, case, action, now, actor, task=task, data={"assignee_id": assignee_id})
    session.flush()
    return task


def save_draft(
    session: Session, task_id: int, data: Mapping[str, Any], *, expected_version: int, now: datetime,
    actor: Actor,
) -> OpenTask:
    """Keep unfinished form data on the task without completing it."""
    task = lock_task(session, task_id)
    check_version(task.version, expected_version, "the task")
    if not can_act_on(task, actor):
        raise PermissionDeniedError("this task belongs to another agency or is claimed by someone else")
    task.draft = dict(data)
    task.version += 1
    session.flush()
    return task
