"""Load and save workflow state, and keep our indexed task and timer tables in step with it.

The history log those changes are recorded in is `engine.history`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine import spiff
from engine.actor import Actor
from engine.assignment import chosen_agency, resolve_agencies
from engine.db import is_postgresql
from engine.definitions import Runnable, runnable
from engine.errors import ConflictError, NotFoundError
from engine.escalation import plan_escalation, schedule_escalation
from engine.history import record
from engine.levels import current_levels
from engine.models import Case, DueTimer, OpenTask, ProcessInstance
from engine.timing import task_timing

# Bulk deletes learn which rows went from RETURNING: the default ("evaluate") would test the criteria
# against every object in the session, which in a timer pass of 1,000 timers makes the pass quadratic.
_BY_RETURNING = {"synchronize_session": "fetch"}


def lock_instance(session: Session, instance_id: int, *, skip_locked: bool = False) -> ProcessInstance | None:
    """Load an instance for update: a row lock on PostgreSQL (SQLite already holds the write lock).

    With `skip_locked`, return None instead of waiting when another transaction holds the row.
    """
    query = select(ProcessInstance).where(ProcessInstance.id == instance_id)
    if is_postgresql(session):
        query = query.with_for_update(skip_locked=skip_locked)
    return session.execute(query).scalar_one_or_none()


def lock_case(session: Session, case_id: int) -> Case:
    """Load a case for update (its facts and risk level change with the workflow)."""
    query = select(Case).where(Case.id == case_id)
    if is_postgresql(session):
        query = query.with_for_update(of=Case)  # not the joined territory row: towns must not serialise
    case = session.execute(query).scalar_one_or_none()
    if case is None:
        raise NotFoundError(f"case {case_id} does not exist")
    return case


def load_run(session: Session, instance: ProcessInstance) -> tuple[spiff.Run, Runnable]:
    """Restore an instance's workflow on the definition version it started with."""
    definition = runnable(session, instance.definition_id)
    if instance.status != "running":
        raise ConflictError(f"the process is {instance.status}: its workflow state is not kept")
    return spiff.Run.load(definition.bundle, instance.state), definition


def save_run(instance: ProcessInstance, run: spiff.Run) -> None:
    """Store the workflow state on the instance row (the row version is checked on flush)."""
    instance.state = run.dump()
    instance.serializer_version = spiff.SERIALIZER_VERSION


def sync_tasks(
    session: Session, case: Case, instance: ProcessInstance, run: spiff.Run, definition: Runnable,
    now: datetime, actor: Actor, *, done_guid: str | None = None, existing_rows: Sequence[OpenTask] | None = None,
) -> list[OpenTask]:
    """Make open_task rows match the workflow's READY user tasks; return the rows created (unrecorded).

    A row whose task is no longer READY (other than `done_guid`, completed by the caller) was
    cancelled by the model (an interrupting timer, a gateway); it is removed and logged.
    """
    ready = {task.guid: task for task in run.ready_tasks()}
    if existing_rows is None:  # the timer pass loads them for a whole batch at once
        existing_rows = session.execute(select(OpenTask).where(OpenTask.instance_id == instance.id)).scalars().all()
    existing = {row.task_guid: row for row in existing_rows}
    for guid, row in existing.items():
        if guid not in ready and guid != done_guid:
            record(session, case, "cancelled", now, actor, task=row)
            session.delete(row)
    fresh = [task for guid, task in ready.items() if guid not in existing]
    if not fresh:
        return []
    kind_of = {task.guid: definition.task_kinds.get(task.spec.element_id) for task in fresh}
    agencies = resolve_agencies(session, case.territory_id, {k for k in kind_of.values() if k})
    region = case.territory.region
    rank = current_levels(session).rank(case.risk_level)
    created = []
    for task in fresh:
        step = definition.properties.step(task.spec.element_id)
        timing = task_timing(step, task.data, now, region, task.boundary_timer_at)
        kind = kind_of[task.guid]
        agency_id = agencies.get(kind) if kind else None
        if step.assigned_agency:  # the agency chosen at a Mesa meeting (an agreement), not the lane's kind
            agency_id, kind = chosen_agency(session, step.assigned_agency, task.data,
                                            case.territory_id, task.spec.element_id)
        row = OpenTask(
            case_id=case.id, territory_id=case.territory_id, instance_id=instance.id, task_guid=task.guid,
            element_id=task.spec.element_id, name=task.spec.name, lane=task.spec.lane,
            agency_kind=kind, agency_id=agency_id,
            form=step.form, created_at=now, needs_identity=step.needs_identity,
            visible_from=timing.visible_from, due_at=timing.due_at, priority=timing.priority, version=1,
            risk_rank=rank,
        )
        schedule_escalation(row, plan_escalation(step, task.data, now, region, timing.due_at))
        session.add(row)
        created.append(row)
    session.flush()  # the new rows get their ids; the caller records their creation
    return created


def sync_timers(session: Session, instance: ProcessInstance, run: spiff.Run, *, fired: bool = False) -> None:
    """Keep one due_timer row per instance at the earliest timer its workflow waits on.

    `instance.next_timer_at` mirrors that row, so a step that changes no timer costs no query;
    after a timer fired (`fired`), the row is replaced even if the time looks the same. The new
    time is set on the instance before the delete, so the instance is written in one UPDATE.
    """
    waiting = [] if run.completed else run.waiting_timers()
    wanted = min(waiting) if waiting else None
    if wanted == instance.next_timer_at and not fired:
        return
    instance.next_timer_at = wanted
    session.execute(
        delete(DueTimer).where(DueTimer.instance_id == instance.id, DueTimer.kind == "bpmn_timer"),
        execution_options=_BY_RETURNING,
    )
    if wanted is not None:
        session.add(DueTimer(kind="bpmn_timer", case_id=instance.case_id, instance_id=instance.id,
                             fire_at=wanted, attempts=0))


def remove_instance_rows(session: Session, instance: ProcessInstance) -> None:
    """Drop the open tasks and timers of an instance that ended."""
    session.execute(delete(OpenTask).where(OpenTask.instance_id == instance.id), execution_options=_BY_RETURNING)
    session.execute(delete(DueTimer).where(DueTimer.instance_id == instance.id), execution_options=_BY_RETURNING)


def check_version(row_version: int, expected: int | None, what: str) -> None:
    """Refuse an action taken on a stale version of a row."""
    if expected is not None and expected != row_version:
        raise ConflictError(f"{what} changed since you loaded it (version {expected}, now {row_version})")
