"""The due-timer pass: fire every BPMN timer and scheduled process start that is due."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db import is_postgresql
from engine.execution import fire_timer
from engine.models import Case, DueTimer, OpenTask, ProcessInstance

log = logging.getLogger(__name__)

RETRY_BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2))


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
