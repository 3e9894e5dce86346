"""The deadline worker's engine passes: fire due timers; remind and escalate tasks around their deadlines."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.db import is_postgresql
from engine.escalation import LEVEL_REMINDED, STAGES, advance_escalation, due_stages, overtaken
from engine.execution import fire_timer
from engine.history import record
from engine.models import Case, DueTimer, Notification, OpenTask, ProcessInstance
from engine.notifications import Recipients, notify

log = logging.getLogger(__name__)

RETRY_BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2))
ESCALATION_RETRY = timedelta(minutes=5)


@dataclass
class TimerReport:
    """What one pass of `run_due_timers` did."""

    fired: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def run_due_timers(session: Session, now: datetime, *, limit: int = 5000) -> TimerReport:
    """Fire every timer due at `now`: BPMN timers and scheduled process starts.

    Idempotent (a fired timer's row is replaced by what the workflow waits on next) and safe with
    several workers: on PostgreSQL each worker locks the rows it takes and skips the rows others
    hold. Each timer runs in a savepoint, so one failure is recorded and retried with back-off
    without touching the others; the caller commits once.
    """
    query = select(DueTimer).where(DueTimer.fire_at <= now).order_by(DueTimer.fire_at, DueTimer.id).limit(limit)
    if is_postgresql(session):
        query = query.with_for_update(skip_locked=True)
    report = TimerReport()
    timers = session.execute(query).scalars().all()
    instances, cases = _lock_batch(session, timers)
    open_tasks: dict[int, list[OpenTask]] = {instance_id: [] for instance_id in instances}
    if instances:
        for row in session.execute(select(OpenTask).where(OpenTask.instance_id.in_(instances))).scalars():
            open_tasks[row.instance_id].append(row)
    for timer in timers:
        instance = instances.get(timer.instance_id) if timer.instance_id is not None else None
        case = cases.get(timer.case_id)
        if case is None or (timer.instance_id is not None and instance is None):
            continue  # another transaction holds the case or the instance: the next pass takes it
        try:
            with session.begin_nested():
                fired = fire_timer(session, timer, now, instance=instance, case=case,
                                   open_tasks=open_tasks.get(instance.id) if instance is not None else None)
        except Exception as exc:  # one broken timer must not stop the others; it is retried
            report.failed += 1
            report.errors.append(f"timer {timer.id}: {exc}")
            _defer(timer, now, exc)
            log.warning("timer %s of case %s failed: %s", timer.id, timer.case_id, type(exc).__name__)
            continue
        if fired:
            report.fired += 1
    session.flush()
    return report


def _lock_batch(
    session: Session, timers: Sequence[DueTimer]
) -> tuple[dict[int, ProcessInstance], dict[int, Case]]:
    """Lock the instances and cases of a batch of timers in two statements, skipping busy rows."""
    postgres = is_postgresql(session)
    instance_ids = {t.instance_id for t in timers if t.instance_id is not None}
    instances: dict[int, ProcessInstance] = {}
    if instance_ids:
        query = select(ProcessInstance).where(ProcessInstance.id.in_(instance_ids))
        if postgres:
            query = query.with_for_update(skip_locked=True)
        instances = {i.id: i for i in session.execute(query).scalars()}
    case_ids = {t.case_id for t in timers}
    cases: dict[int, Case] = {}
    if case_ids:
        case_query = select(Case).where(Case.id.in_(case_ids))
        if postgres:
            case_query = case_query.with_for_update(skip_locked=True, of=Case)
        cases = {c.id: c for c in session.execute(case_query).scalars()}
    return instances, cases


def _defer(timer: DueTimer, now: datetime, exc: Exception) -> None:
    timer.attempts += 1
    timer.last_error = str(exc)[:2000]
    timer.fire_at = now + RETRY_BACKOFF[min(timer.attempts, len(RETRY_BACKOFF)) - 1]


@dataclass
class EscalationReport:
    """What one batch of `run_escalations` did; `notifications` are the notices it created."""

    taken: int = 0
    reminded: int = 0
    escalated: int = 0
    failed: int = 0
    notifications: list[Notification] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def run_escalations(session: Session, now: datetime, *, limit: int = 1000) -> EscalationReport:
    """Send the reminders and escalations due at `now` for up to `limit` tasks (call again while `taken == limit`).

    Selects by the indexed `open_task.next_escalation_at` only. Each stage is sent once: the row's
    level and next time move on in the same transaction as the notices, and on PostgreSQL each worker
    locks the rows it takes and skips those another holds (a task being completed is skipped too).
    Each task runs in a savepoint: a failure is recorded and retried later; the caller commits.
    """
    query = (select(OpenTask).where(OpenTask.next_escalation_at <= now)
             .order_by(OpenTask.next_escalation_at, OpenTask.id).limit(limit))
    if is_postgresql(session):
        query = query.with_for_update(skip_locked=True)
    tasks = session.execute(query).scalars().all()
    report = EscalationReport(taken=len(tasks))
    if not tasks:
        return report
    cases = {c.id: c for c in session.execute(select(Case).where(Case.id.in_({t.case_id for t in tasks}))).scalars()}
    recipients = Recipients(session)
    actor = Actor.system("deadlines")
    for task in tasks:
        try:
            with session.begin_nested():
                reached = _escalate(session, task, cases[task.case_id], now, recipients, actor)
        except Exception as exc:  # one broken task must not stop the others; it is retried
            report.failed += 1
            report.errors.append(f"task {task.id}: {exc}")
            task.next_escalation_at = now + ESCALATION_RETRY
            log.warning("escalation of task %s of case %s failed: %s", task.id, task.case_id, type(exc).__name__)
            continue
        # Counted only once the savepoint held: a rolled-back notice must not be mailed.
        for level, notices in reached:
            report.notifications.extend(notices)
            if level == LEVEL_REMINDED:
                report.reminded += 1
            else:
                report.escalated += 1
    session.flush()
    return report


def _escalate(
    session: Session, task: OpenTask, case: Case, now: datetime, recipients: Recipients, actor: Actor,
) -> list[tuple[int, list[Notification]]]:
    """Send every stage the task reached at `now`; return each level sent with its notices."""
    levels = due_stages(task, now)
    sent = []
    for level in levels:
        if overtaken(task, level, now):
            continue
        stage = STAGES[level]
        notices = notify(session, recipients.of(task, case.territory_id, stage), stage, task, now)
        record(session, case, "reminded" if level == LEVEL_REMINDED else "escalated", now, actor, task=task,
               data={"level": stage})
        sent.append((level, notices))
    advance_escalation(task, levels[-1] if levels else task.escalation_level)
    session.flush()
    return sent
