"""Engine operations that run workflows: start cases and processes, complete tasks, fire timers.

Each function works inside the caller's transaction and only flushes; the caller (a view, a CLI
command, a test) commits once or rolls back, so every operation is all or nothing. Opening a case
is in `engine.cases`; claiming, releasing, assigning and drafts in `engine.tasks`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine import spiff
from engine.actor import Actor
from engine.cases import open_case
from engine.definitions import Runnable, latest_runnable, pinned_form, process_track, start_form
from engine.errors import ConflictError, ExecutionError, PermissionDeniedError
from engine.forms import FormDefinition, validated_data
from engine.history import record
from engine.levels import current_levels
from engine.models import Case, DueTimer, OpenTask, ProcessInstance, Territory
from engine.persistence import (
    check_version,
    load_run,
    lock_case,
    lock_instance,
    remove_instance_rows,
    save_run,
    sync_tasks,
    sync_timers,
)
from engine.tasks import can_act_on, lock_task, of_agency
from engine.timing import resolve_when

# Outcome keys a finishing process may set to decide what the case does next.
NEXT_PROCESS, START_AFTER, NEXT_DATA = "next_process", "start_after", "next_data"
CASE_COLUMNS = ("status", "risk_level")
LEVEL_CHANGED = "level_changed"


def start_case(
    session: Session, *, territory_id: int, process_key: str, data: Mapping[str, Any], now: datetime,
    actor: Actor, victim: Mapping[str, Any] | None = None, aggressor: Mapping[str, Any] | None = None,
    check_form: bool = False,
) -> tuple[Case, ProcessInstance]:
    """Open a case and start its first process (usually intake) with the given data."""
    case = open_case(session, territory_id=territory_id, now=now, actor=actor, victim=victim,
                     aggressor=aggressor)
    return case, start_process(session, case, process_key, data, now=now, actor=actor, check_form=check_form)


def case_context(case: Case) -> dict[str, Any]:
    """Return the case facts every new instance starts with, under the `case` variable."""
    return {
        "case": {
            **case.facts, "reference": case.reference, "status": case.status,
            "risk_level": case.risk_level,
        }
    }


def start_process(
    session: Session, case: Case, process_key: str, data: Mapping[str, Any], *, now: datetime,
    actor: Actor, replaces: Sequence[str] = (), check_form: bool = False,
) -> ProcessInstance:
    """Start the newest version of a process for a case, after cancelling what it replaces.

    A process whose start event declares a `track` (a line of work: police, social, court...) first
    cancels the running instance and pending start of that track: one running instance per track
    and case, whatever the diagrams do. The start event's `replaces` property (comma-separated
    process keys) adds to `replaces`. With `check_form`, `data` comes from a person and must pass
    the start event's `form` (the version this process version pins); the start form's data is kept
    in the case history (`form_submitted`), not only in the workflow.
    """
    definition = latest_runnable(session, process_key)
    context = case_context(case)
    start = definition.properties.start
    form = start_form(session, definition)
    if check_form:
        data = validated_data(form, start.form, data, context, f"the start of {process_key}",
                              helpers=current_levels(session).helpers())
    track = start.track
    reason = f"replaced by {process_key}"
    if track is not None:
        cancel_track(session, case, track, now=now, actor=actor, reason=reason)
    for key in dict.fromkeys([*replaces, *start.replaces]):
        cancel_processes(session, case, key, now=now, actor=actor, reason=reason)
    run = spiff.Run.start(definition.bundle, {**context, **data}, now)
    instance = ProcessInstance(
        case_id=case.id, definition_id=definition.definition_id, process_key=process_key, track=track,
        status="running", state="", serializer_version=spiff.SERIALIZER_VERSION, started_at=now,
    )
    session.add(instance)
    session.flush()
    record(session, case, "instance_started", now, actor, instance=instance,
           data={"process": process_key, "version": definition.version, **({"track": track} if track else {})})
    if form is not None:
        fields = form.schema.get("properties", {})
        submitted = {key: value for key, value in data.items() if key in fields}
        event = record(session, case, "form_submitted", now, actor, instance=instance, data=submitted)
        event.element_id, event.name = spiff.start_event_id(definition.bundle), form.title or start.form
    _after_step(session, case, instance, run, definition, now, actor)
    return instance


def cancel_track(
    session: Session, case: Case, track: str, *, now: datetime, actor: Actor, reason: str
) -> int:
    """Cancel the running instance and pending starts of one line of work of a case; return how many."""
    count = 0
    for timer in session.execute(
        select(DueTimer).where(DueTimer.case_id == case.id, DueTimer.kind == "start_process")
    ).scalars().all():
        payload = timer.payload or {}
        if payload.get("track", process_track(session, payload.get("process_key", ""))) == track:
            session.delete(timer)
            count += 1
    for instance in session.execute(
        select(ProcessInstance).where(
            ProcessInstance.case_id == case.id, ProcessInstance.track == track,
            ProcessInstance.status == "running",
        )
    ).scalars().all():
        _cancel_instance(session, case, instance, now, actor, reason)
        count += 1
    session.flush()
    return count


def cancel_processes(
    session: Session, case: Case, process_key: str, *, now: datetime, actor: Actor, reason: str
) -> int:
    """Cancel the running instances and pending starts of one process of a case; return how many."""
    count = 0
    pending = session.execute(
        select(DueTimer).where(DueTimer.case_id == case.id, DueTimer.kind == "start_process")
    ).scalars().all()
    for timer in pending:
        if (timer.payload or {}).get("process_key") == process_key:
            session.delete(timer)
            count += 1
    running = session.execute(
        select(ProcessInstance).where(
            ProcessInstance.case_id == case.id, ProcessInstance.process_key == process_key,
            ProcessInstance.status == "running",
        )
    ).scalars().all()
    for instance in running:
        _cancel_instance(session, case, instance, now, actor, reason)
        count += 1
    session.flush()
    return count


def _cancel_instance(
    session: Session, case: Case, instance: ProcessInstance, now: datetime, actor: Actor, reason: str
) -> None:
    remove_instance_rows(session, instance)
    instance.status, instance.ended_at, instance.state, instance.next_timer_at = "cancelled", now, "", None
    record(session, case, "instance_cancelled", now, actor, instance=instance, data={"reason": reason})


def track_running(session: Session, case: Case, track: str) -> bool:
    """Tell whether a line of work of the case has a running instance or a pending start."""
    running = session.execute(
        select(ProcessInstance.id).where(
            ProcessInstance.case_id == case.id, ProcessInstance.track == track,
            ProcessInstance.status == "running",
        ).limit(1)
    ).scalar_one_or_none()
    if running is not None:
        return True
    return any(
        (timer.payload or {}).get("track") == track
        for timer in session.execute(
            select(DueTimer).where(DueTimer.case_id == case.id, DueTimer.kind == "start_process")
        ).scalars()
    )


def complete_task(
    session: Session, task_id: int, data: Mapping[str, Any], *, expected_version: int, now: datetime,
    actor: Actor, form: FormDefinition | None = None,
) -> ProcessInstance:
    """Complete an open task with form data and run the workflow on; refuse stale versions.

    The data must pass the version of the task's form that its process version pinned. A caller that
    resolved that form already (`engine.definitions.task_form`, to read what was posted) passes it as
    `form`, so that one completion resolves it once.
    """
    task = lock_task(session, task_id)
    if not of_agency(task, actor):  # first: a stranger learns nothing more
        raise PermissionDeniedError("this task belongs to another agency")
    check_version(task.version, expected_version, "the task")
    if not can_act_on(task, actor):
        raise PermissionDeniedError("this task is claimed by someone else")
    instance = lock_instance(session, task.instance_id)
    if instance is None or instance.status != "running":
        raise ConflictError("the process of this task is no longer running")
    case = lock_case(session, task.case_id)
    run, definition = load_run(session, instance)
    if form is None:
        form = pinned_form(session, definition, task.form)
    submitted = validated_data(form, task.form, data, run.task_data(task.task_guid), task.element_id,
                               helpers=current_levels(session).helpers())
    run.complete(task.task_guid, submitted, now)
    session.delete(task)
    _after_step(session, case, instance, run, definition, now, actor, done_guid=task.task_guid,
                step_event=lambda: record(session, case, "completed", now, actor, task=task, data=submitted))
    return instance


# --- Timers -------------------------------------------------------------------------------------
def fire_timer(
    session: Session, timer: DueTimer, now: datetime, *, instance: ProcessInstance | None = None,
    case: Case | None = None, open_tasks: Sequence[OpenTask] | None = None,
) -> bool:
    """Fire one due timer; return False when its instance is busy (left for the next pass).

    `instance`, `case` and the instance's `open_tasks` may come already loaded and locked: the
    timer pass loads a whole batch at once.
    """
    actor = Actor.system("timer")
    if timer.kind == "start_process":
        payload = timer.payload or {}
        case = case or lock_case(session, timer.case_id)
        session.delete(timer)
        start_process(session, case, payload["process_key"], payload.get("data") or {}, now=now, actor=actor)
        return True
    instance = instance or lock_instance(session, timer.instance_id or 0, skip_locked=True)
    if instance is None:
        return False
    if instance.status != "running":
        session.delete(timer)
        return True
    case = case or lock_case(session, instance.case_id)
    run, definition = load_run(session, instance)
    run.advance(now)
    scheduled_for = timer.fire_at.isoformat()
    _after_step(session, case, instance, run, definition, now, actor, timer_fired=True, open_tasks=open_tasks,
                step_event=lambda: record(session, case, "timer_fired", now, actor, instance=instance,
                                          data={"scheduled_for": scheduled_for}))
    return True


# --- After every step ---------------------------------------------------------------------------
def _after_step(
    session: Session, case: Case, instance: ProcessInstance, run: spiff.Run, definition: Runnable,
    now: datetime, actor: Actor, *, done_guid: str | None = None, timer_fired: bool = False,
    step_event: Callable[[], object] | None = None, open_tasks: Sequence[OpenTask] | None = None,
) -> None:
    """Persist a step: case updates, state, open tasks, timers, and the chain to the next process.

    `step_event` records what caused the step; it is added last, so that it and the history of
    the tasks the step created go to the database in one statement.
    """
    effects = run.effects
    _apply_case_updates(session, case, effects.case_updates, now, actor)
    if not run.completed:
        save_run(instance, run)
        sync_timers(session, instance, run, fired=timer_fired)
        created = sync_tasks(session, case, instance, run, definition, now, actor, done_guid=done_guid,
                             existing_rows=open_tasks)
        if step_event is not None:
            step_event()
        for row in created:
            record(session, case, "created", now, actor, task=row,
                   data={"needs_identity": True} if row.needs_identity else None)
        session.flush()
        _apply_starts(session, case, instance, effects, now, actor)
        return
    if step_event is not None:
        step_event()
    remove_instance_rows(session, instance)
    outcome = run.data
    # A finished workflow's state is not needed again: its record is the history and the outcome.
    instance.status, instance.ended_at, instance.state, instance.next_timer_at = "completed", now, "", None
    instance.outcome = {k: outcome[k] for k in (NEXT_PROCESS, START_AFTER, NEXT_DATA) if k in outcome}
    instance.outcome["path"] = run.completed_elements()
    record(session, case, "instance_completed", now, actor, instance=instance, data=instance.outcome)
    session.flush()
    _apply_starts(session, case, instance, effects, now, actor)
    _chain(session, case, outcome, now, actor)


def _apply_starts(
    session: Session, case: Case, instance: ProcessInstance, effects: spiff.ScriptEffects, now: datetime,
    actor: Actor,
) -> None:
    """Apply the scripts' cancel_track(...) and start_process(...) calls of one step, in that order."""
    for stopped in dict.fromkeys(effects.cancels):
        if instance.status == "running" and stopped == instance.track:
            raise ExecutionError(f"cancel_track({stopped!r}) would cancel the very process that called it")
        cancel_track(session, case, stopped, now=now, actor=actor, reason=f"stopped by {instance.process_key}")
    for start in effects.starts:
        key = start["process"]
        track = process_track(session, key)
        if track is not None and instance.status == "running" and track == instance.track:
            raise ExecutionError(f"start_process({key!r}) would replace the very process that called it: "
                                 f"use next_process to chain the next cycle")
        if start.get("if_idle") and track is not None and track_running(session, case, track):
            continue
        _start_or_schedule(session, case, key, start.get("data") or {}, start.get("after"), track, now, actor)
    effects.cancels.clear()
    effects.starts.clear()


def _apply_case_updates(
    session: Session, case: Case, updates: Mapping[str, Any], now: datetime, actor: Actor
) -> None:
    if not updates:
        return
    if "risk_level" in updates and updates["risk_level"] != case.risk_level:
        # Worklists order by risk: the case's open tasks carry its rank (one statement, on change only).
        session.execute(update(OpenTask).where(OpenTask.case_id == case.id)
                        .values(risk_rank=current_levels(session).rank(updates["risk_level"])),
                        execution_options={"synchronize_session": "fetch"})
        # The history says when the level changed and from what (the Mesa's agenda lists such cases).
        record(session, case, LEVEL_CHANGED, now, actor, data={"from": case.risk_level, "to": updates["risk_level"]})
    facts = dict(case.facts)
    for key, value in updates.items():
        if key in CASE_COLUMNS:
            setattr(case, key, value)
        else:
            facts[key] = value
    case.facts = facts
    case.updated_at = now
    case.version += 1


def _chain(session: Session, case: Case, outcome: Mapping[str, Any], now: datetime, actor: Actor) -> None:
    """Start (now or later) the process the finished one named in its outcome, if any."""
    next_key = outcome.get(NEXT_PROCESS)
    if not next_key:
        return
    if not isinstance(next_key, str):
        raise ExecutionError(f"{NEXT_PROCESS} must name a process, got {next_key!r}")
    latest_runnable(session, next_key)  # fail now, inside this transaction, if it does not exist
    _start_or_schedule(session, case, next_key, outcome.get(NEXT_DATA) or {}, outcome.get(START_AFTER),
                       process_track(session, next_key), now, actor)


def _start_or_schedule(
    session: Session, case: Case, key: str, data: Mapping[str, Any], after: str | None, track: str | None,
    now: datetime, actor: Actor,
) -> None:
    """Start a process now, or keep a pending start for when `after` (an ISO duration...) has passed."""
    territory = session.get(Territory, case.territory_id)
    when = resolve_when(after, now, territory.region if territory else None, START_AFTER) if after else now
    if when <= now:
        start_process(session, case, key, data, now=now, actor=actor)
        return
    if track is not None:  # a pending start holds its track too: the newest one wins
        cancel_track(session, case, track, now=now, actor=actor, reason=f"replaced by {key}")
    session.add(DueTimer(kind="start_process", case_id=case.id, instance_id=None, fire_at=when,
                         payload={"process_key": key, "data": dict(data), **({"track": track} if track else {})},
                         attempts=0))
    record(session, case, "process_scheduled", now, actor, data={"process": key, "at": when.isoformat()})
    session.flush()
