"""The watchdog: a step of each deadline pass that finds broken invariants, records, tells and repairs them.

A violation is recorded once per episode: the first pass that finds it inserts its `open_violation`
row (case, invariant, kind), writes `invariant_violated` to the case history and tells the supervisors
of the agency whose step is at stake and the Mesa's coordination (the coordination alone when no open
step shows the gap: nothing open, no repair, or a repair that failed); later passes that still find it
only try the repair again. The episode ends when the repair succeeds or a pass no longer finds it.

Several workers may run it at once: each violation is handled under its case's lock (SKIP LOCKED on
PostgreSQL: a case another worker holds is left to it) and looked for again under the lock, so a
violation another worker repaired meanwhile is neither recorded nor repaired twice; the row's primary
key backs that up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.db import is_postgresql
from engine.history import record
from engine.invariants import Invariant
from engine.models import Case, Notification, OpenTask, OpenViolation, ProcessInstance
from engine.notifications import Recipients
from engine.repairs import apply_repair, lock_case_or_skip
from engine.violations import Violation, find_violations

log = logging.getLogger(__name__)

VIOLATED = "invariant_violated"
NOTICE_KIND = "invariant"
WATCHDOG = "watchdog"
# How long a repair that could not be made waits before it is tried again.
REPAIR_RETRY = timedelta(minutes=15)


@dataclass
class Handled:
    """What handling one violation did."""

    recorded: bool = False
    repaired: bool = False
    skipped: bool = False  # another worker holds the case
    error: str | None = None
    notifications: list[Notification] = field(default_factory=list)


@dataclass
class Found:
    """The violations of a pass: all of them, and those to handle (new ones first, then repairs to retry)."""

    violations: list[Violation]
    to_handle: list[Violation]


def current_violations(session: Session, now: datetime, invariants: Sequence[Invariant]) -> Found:
    """Find every violation at `now` and end the episodes of those no longer found (flushes, no commit).

    A violation already recorded needs handling again only if it can be repaired (the repair is retried).
    """
    found = find_violations(session, now, invariants)
    keys = {(v.case_id, v.invariant_id, v.kind) for v in found}
    recorded: dict[tuple[int, str, str], datetime | None] = {
        (case_id, invariant_id, kind): retry_at for case_id, invariant_id, kind, retry_at in session.execute(
            select(OpenViolation.case_id, OpenViolation.invariant_id, OpenViolation.kind, OpenViolation.retry_at)
        ).all()}
    new = [v for v in found if (v.case_id, v.invariant_id, v.kind) not in recorded]
    retry = [v for v in found if v.repairable and (v.case_id, v.invariant_id, v.kind) in recorded
             and (recorded[(v.case_id, v.invariant_id, v.kind)] or now) <= now]
    ended = [key for key in recorded if key not in keys]
    if ended:
        session.execute(
            delete(OpenViolation).where(
                tuple_(OpenViolation.case_id, OpenViolation.invariant_id, OpenViolation.kind).in_(ended)),
            execution_options={"synchronize_session": False},
        )
    session.flush()
    return Found(found, [*new, *retry])


def handle_violation(
    session: Session, violation: Violation, invariants: Sequence[Invariant], now: datetime,
    recipients: Recipients,
) -> Handled:
    """Record a violation (first time of its episode only), repair it if it can be, and tell the people.

    Works under the case's lock on what is true now: the violation may have been repaired meanwhile.
    """
    handled = Handled()
    actor = Actor.system(WATCHDOG)
    invariant = next(i for i in invariants if i.id == violation.invariant_id)
    case = lock_case_or_skip(session, violation.case_id)
    if case is None:
        handled.skipped = True
        return handled
    fresh = [v for v in find_violations(session, now, [invariant], case_ids=[violation.case_id])
             if v.kind == violation.kind]
    if not fresh:
        return handled
    violation = fresh[0]
    handled.recorded = _open_episode(session, violation, now)
    if handled.recorded:
        event = record(session, case, VIOLATED, now, actor, data={
            "invariant": violation.invariant_id, "kind": violation.kind, "details": violation.details,
            "message": violation.message, "message_en": violation.message_en,
        })
        event.name = invariant.title[:200]
        session.flush()
        session.execute(
            update(OpenViolation)
            .where(OpenViolation.case_id == violation.case_id, OpenViolation.invariant_id == violation.invariant_id,
                   OpenViolation.kind == violation.kind)
            .values(event_id=event.id)
        )
    started = None
    if violation.repairable:
        try:
            with session.begin_nested():
                started = apply_repair(session, invariant, case, now, actor)
        except Exception as exc:  # a failed repair (a process not deployed) keeps the record; retried next pass
            handled.error = f"repair of {violation.invariant_id} in case {violation.case_id}: {exc}"
            log.warning("watchdog: the repair of %s in case %s failed: %s", violation.invariant_id,
                        violation.case_id, type(exc).__name__)
    handled.repaired = started is not None
    episode = (OpenViolation.case_id == violation.case_id, OpenViolation.invariant_id == violation.invariant_id,
               OpenViolation.kind == violation.kind)
    if handled.repaired:  # the episode ends with its repair; a new gap later is a new episode
        session.execute(delete(OpenViolation).where(*episode))
    elif violation.repairable:  # busy or failing: not again on every pass
        session.execute(update(OpenViolation).where(*episode).values(retry_at=now + REPAIR_RETRY))
    if handled.recorded:
        task = _task_about(session, violation, started)
        if task is not None:
            handled.notifications = _notify(session, recipients, task, invariant, now)
        else:  # no step to point at (none open, none started): the Mesa's coordination still hears of it
            handled.notifications = _notify_coordination(session, recipients, case, invariant, now)
    session.flush()
    return handled


def _open_episode(session: Session, violation: Violation, now: datetime) -> bool:
    """Insert the episode's row; tell whether this transaction inserted it (another worker may have)."""
    insert = pg_insert if is_postgresql(session) else sqlite_insert
    inserted = session.execute(
        insert(OpenViolation).values(case_id=violation.case_id, invariant_id=violation.invariant_id,
                                     kind=violation.kind, since=now)
        .on_conflict_do_nothing().returning(OpenViolation.case_id)
    ).first()
    return inserted is not None


def _task_about(session: Session, violation: Violation, started: ProcessInstance | None) -> OpenTask | None:
    """Return the open step the notice is about: the one the repair created, else the one at fault."""
    query = select(OpenTask).order_by(OpenTask.id).limit(1)
    if started is not None:
        return session.execute(query.where(OpenTask.instance_id == started.id)).scalar_one_or_none()
    details = violation.details
    if details.get("task_id"):
        return session.get(OpenTask, int(details["task_id"]))
    if details.get("instances"):
        return session.execute(query.where(OpenTask.instance_id.in_([int(i) for i in details["instances"]]))
                               ).scalar_one_or_none()
    if details.get("steps"):
        return session.execute(query.where(OpenTask.case_id == violation.case_id,
                                           OpenTask.element_id.in_(list(details["steps"])))).scalar_one_or_none()
    return None


def _notify(
    session: Session, recipients: Recipients, task: OpenTask, invariant: Invariant, now: datetime,
) -> list[Notification]:
    """Tell the supervisors of the step's agency and the Mesa's coordination, each user once per step."""
    users = [*recipients.of(task, task.territory_id, "supervisor"), *recipients.of(task, task.territory_id,
                                                                                  "coordinator")]
    already = set(session.execute(
        select(Notification.user_id).where(Notification.task_id == task.id, Notification.kind == NOTICE_KIND)
    ).scalars())
    created = []
    for user_id in dict.fromkeys(user.id for user in users):
        if user_id in already:
            continue
        notice = Notification(user_id=user_id, kind=NOTICE_KIND, case_id=task.case_id, task_id=task.id,
                              step=invariant.title[:200], due_at=task.due_at, created_at=now)
        session.add(notice)
        created.append(notice)
    session.flush()
    return created


def _notify_coordination(
    session: Session, recipients: Recipients, case: Case, invariant: Invariant, now: datetime,
) -> list[Notification]:
    """Tell the Mesa's coordination of the case's territory about a violation no open step shows.

    Called once per episode (only when it is first recorded), so it needs no step to deduplicate on.
    """
    created = [Notification(user_id=user.id, kind=NOTICE_KIND, case_id=case.id, task_id=None,
                            step=invariant.title[:200], due_at=None, created_at=now)
               for user in recipients.coordination(case.territory_id)]
    session.add_all(created)
    session.flush()
    return created
