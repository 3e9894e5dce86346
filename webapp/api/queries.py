"""Reads of the JSON API that the shared worklist and case queries do not cover: tasks, the user, forms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.definitions import latest_forms, latest_runnable, start_form, task_form
from engine.errors import NotFoundError
from engine.form_contract import task_schema
from engine.forms import FormDefinition
from engine.levels import current_levels
from engine.models import Agency, Case, OpenTask, ProcessInstance, TaskEvent, Territory, UserAccount
from engine.persistence import load_run
from webapp.access import can_see_identity
from webapp.auth.principal import Principal
from webapp.cases.queries import parties, summary, timeline


def me(session: Session, principal: Principal) -> dict[str, Any]:
    """Describe the user: identity, agency, roles and the territories her agency serves."""
    territories = session.execute(
        select(Territory).where(Territory.id.in_(principal.territory_ids)).order_by(Territory.name)
    ).scalars().all()
    agency = None
    if principal.agency_id is not None:
        agency = {"id": principal.agency_id, "name": principal.agency_name, "kind": principal.agency_kind}
    return {
        "id": principal.user_id, "username": principal.username, "display_name": principal.display_name,
        "agency": agency, "roles": sorted(principal.roles), "territories": territories,
    }


def case_detail(session: Session, principal: Principal, case: Case, now: datetime) -> dict[str, Any]:
    """Return a case's summary and history, with victim and aggressor only for those who need to know."""
    detail: dict[str, Any] = {**vars(summary(session, case, now)), "history": timeline(session, case.id)}
    if can_see_identity(session, principal, case):
        detail.update(parties(session, case.id))
    return detail


@dataclass(frozen=True)
class TaskAccess:
    """Whose a task is; `open` is False once it was completed or cancelled (then from its history)."""

    open: bool
    case_id: int
    agency_id: int | None
    assignee_id: int | None


def task_access(session: Session, task_id: int) -> TaskAccess | None:
    """Tell whose a task is, without loading it (the engine locks it later); None if it never existed."""
    row = session.execute(
        select(OpenTask.case_id, OpenTask.agency_id, OpenTask.assignee_id).where(OpenTask.id == task_id)
    ).first()
    if row is not None:
        return TaskAccess(True, row.case_id, row.agency_id, row.assignee_id)
    created = session.execute(
        select(TaskEvent.case_id, TaskEvent.agency_id)
        .where(TaskEvent.task_id == task_id, TaskEvent.action == "created").limit(1)
    ).first()
    return None if created is None else TaskAccess(False, created.case_id, created.agency_id, None)


def may_see_task(principal: Principal, access: TaskAccess) -> bool:
    """Tell whether the principal's agency owns the task, or she is its assignee."""
    own_agency = principal.agency_id is not None and access.agency_id == principal.agency_id
    return own_agency or (access.assignee_id is not None and access.assignee_id == principal.user_id)


def task_view(session: Session, task_id: int, now: datetime, *, with_form: bool = False) -> dict[str, Any] | None:
    """Describe an open task (None if not open); `with_form` adds its form (the pinned version) and draft."""
    row = session.execute(
        select(OpenTask, Case.reference, Agency, UserAccount.display_name)
        .join(Case, Case.id == OpenTask.case_id)
        .outerjoin(Agency, Agency.id == OpenTask.agency_id)
        .outerjoin(UserAccount, UserAccount.id == OpenTask.assignee_id)
        .where(OpenTask.id == task_id)
    ).first()
    if row is None:
        return None
    task, reference, agency, assignee_name = row
    view: dict[str, Any] = {
        "id": task.id, "version": task.version, "case": {"id": task.case_id, "reference": reference},
        "element_id": task.element_id, "name": task.name, "agency": agency,
        "assignee": None if task.assignee_id is None else {"id": task.assignee_id, "name": assignee_name},
        "due_at": task.due_at, "visible_from": task.visible_from,
        "overdue": task.due_at is not None and task.due_at < now, "form_name": task.form,
    }
    if with_form:
        view["form"] = honest_task_form(session, task)
        view["draft"] = task.draft
    return view


def honest_task_form(session: Session, task: OpenTask) -> FormDefinition | None:
    """Return a task's form with its schema narrowed to what its checks accept on this task's data."""
    form = task_form(session, task)
    if form is None or not form.checks:
        return form
    instance = session.get_one(ProcessInstance, task.instance_id)
    context = load_run(session, instance)[0].task_data(task.task_guid) if instance.status == "running" else {}
    return task_schema(form, context, current_levels(session).helpers())


def documented_forms(
    session: Session, start_processes: Mapping[str, str],
) -> tuple[dict[str, FormDefinition], dict[str, str]]:
    """Return the newest deployed forms and, by request field, the start form of each process named."""
    starts: dict[str, str] = {}
    for field, process_key in start_processes.items():
        try:
            form = start_form(session, latest_runnable(session, process_key))
        except NotFoundError:  # not deployed yet: the field stays a plain object in the document
            continue
        if form is not None:
            starts[field] = form.name
    return latest_forms(session), starts
