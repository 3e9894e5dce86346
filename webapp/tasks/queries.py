"""Task reads for the task page: which tasks a user may open, and the workflow data a step shows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.forms import FormDefinition
from engine.models import OpenTask, ProcessInstance, TaskEvent
from engine.persistence import load_run
from webapp.auth.principal import Principal

# Workflow data a person needs beside some forms (the level to review, the measures it requires).
STEP_DATA_KEYS = ("computed_level", "level_rule", "risk_score", "risk_reasons", "required_measures")


def visible_task(session: Session, principal: Principal, task_id: int) -> OpenTask | None:
    """Return the open task if the principal's agency owns it or the principal is its assignee."""
    task = session.get(OpenTask, task_id)
    if task is None:
        return None
    mine = task.assignee_id is not None and task.assignee_id == principal.user_id
    ours = principal.agency_id is not None and task.agency_id == principal.agency_id
    return task if mine or ours else None


def closed_task(session: Session, principal: Principal, task_id: int) -> TaskEvent | None:
    """Return how a task that is no longer open ended, if it belonged to the principal's agency."""
    if principal.agency_id is None:
        return None
    return session.execute(
        select(TaskEvent).where(TaskEvent.task_id == task_id, TaskEvent.action.in_(("completed", "cancelled")),
                                TaskEvent.agency_id == principal.agency_id)
        .order_by(TaskEvent.id.desc()).limit(1)
    ).scalar_one_or_none()


def task_case_id(session: Session, task_id: int) -> int | None:
    """Return the case of a task, open or not (for the audit of a refused access)."""
    task = session.get(OpenTask, task_id)
    if task is not None:
        return task.case_id
    return session.execute(select(TaskEvent.case_id).where(TaskEvent.task_id == task_id).limit(1)).scalar()


def step_data(session: Session, task: OpenTask, form: FormDefinition | None) -> dict[str, Any]:
    """Return the workflow values a form's checks rely on (computed level and why, required measures).

    Only forms whose checks compare the answers with such values get them: the review of the level
    (never below the computed one) and the police measures (all those the level requires).
    """
    if form is None or not any(key in check.expression for check in form.checks for key in STEP_DATA_KEYS):
        return {}
    instance = session.get(ProcessInstance, task.instance_id)
    if instance is None or instance.status != "running":
        return {}
    data = load_run(session, instance)[0].task_data(task.task_guid)
    return {key: data[key] for key in STEP_DATA_KEYS if data.get(key) not in (None, "", [])}
