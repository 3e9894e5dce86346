"""Repairing a violation: start the process its invariant names, once, under the case's lock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.db import is_postgresql
from engine.execution import start_process
from engine.invariants import Invariant
from engine.models import Case, ProcessInstance
from engine.violations import Violation, find_violations, process_tracks, track_column


def repair(
    session: Session, violation: Violation, invariants: Sequence[Invariant], now: datetime, actor: Actor,
) -> bool:
    """Apply the repair the invariant names, once: re-check under the case's lock; tell whether it was made.

    On PostgreSQL the case is locked with SKIP LOCKED: a case another worker holds is left to it
    (False). Under the lock the violation is looked for again, so a repair made meanwhile by another
    worker (or by an agency) is not made twice. `if_idle` repairs only when the process's track (or,
    without a track, the process itself) has nothing running.
    """
    invariant = next((i for i in invariants if i.id == violation.invariant_id), None)
    if invariant is None or not violation.repairable or "repair" not in invariant.raw:
        return False
    locked = lock_case_or_skip(session, violation.case_id)
    if locked is None:
        return False
    still = find_violations(session, now, [invariant], case_ids=[locked.id])
    if not any(v.kind == violation.kind for v in still):
        return False
    return apply_repair(session, invariant, locked, now, actor) is not None


def apply_repair(session: Session, invariant: Invariant, case: Case, now: datetime, actor: Actor
                 ) -> ProcessInstance | None:
    """Start the invariant's repair process for a case the caller locked and found in violation."""
    declared = invariant.raw["repair"]
    key = declared["start_process"]
    if declared.get("if_idle") and _busy(session, case.id, key):
        return None
    return start_process(session, case, key, dict(declared.get("data") or {}), now=now, actor=actor)


def lock_case_or_skip(session: Session, case_id: int) -> Case | None:
    """Load a case freshly and lock it; None when another transaction holds it (PostgreSQL, SKIP LOCKED).

    SQLite needs no row lock: every transaction already holds the write lock (BEGIN IMMEDIATE).
    """
    query = select(Case).where(Case.id == case_id).execution_options(populate_existing=True)
    if is_postgresql(session):
        query = query.with_for_update(skip_locked=True, of=Case)
    return session.execute(query).scalar_one_or_none()


def _busy(session: Session, case_id: int, process_key: str) -> bool:
    """Tell whether the process's track (or the process, if it declares none) runs in the case."""
    track_expr, tracks = track_column(session)
    track = tracks.get(process_key) if tracks else process_tracks(session).get(process_key)
    where: list[ColumnElement[bool]] = [ProcessInstance.case_id == case_id, ProcessInstance.status == "running"]
    if track is not None and track_expr is not None:
        where.append(track_expr == track)
    else:
        where.append(ProcessInstance.process_key == process_key)
    return session.execute(select(ProcessInstance.id).where(*where).limit(1)).first() is not None
