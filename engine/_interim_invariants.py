"""INTERIM, to delete when helper C's `engine/invariants.py` is merged: the police re-assessment invariant only.

The same API as `engine.invariants` (issue 11's shared design), reduced to the one `open_step`
invariant the verifier needs to be developed and tested: an active case with a risk level has an
open police assessment or re-assessment, due no later than the last assessment plus the level's
period (the shipped `reassessment_period` table, hard-coded here) plus one hour. The verifier
imports it only when `engine.invariants` does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.models import Case, OpenTask

POLICE_STEPS = ("police_risk_assessment", "incident_reassessment", "police_reassessment", "reassessment_review")
PERIODS = {"extremo": timedelta(hours=72), "alto": timedelta(days=7), "medio": timedelta(days=30),
           "bajo": timedelta(days=60)}
TOLERANCE = timedelta(hours=1)


@dataclass(frozen=True)
class Invariant:
    """A declared invariant: its id, kind and titles."""

    id: str
    kind: str
    title: str
    title_en: str
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Violation:
    """One case breaking one invariant."""

    invariant_id: str
    case_id: int
    kind: str
    message: str
    message_en: str
    details: dict[str, Any] = field(default_factory=dict)
    repairable: bool = False


POLICE = Invariant("police_reassessment_pending", "open_step", "Revaloración policial pendiente y a tiempo",
                   "Police re-assessment pending and on time")


def current_invariants(session: Session) -> list[Invariant]:
    """Return the one interim invariant."""
    return [POLICE]


def find_violations(
    session: Session, now: datetime, invariants: Sequence[Invariant], *, case_ids: Sequence[int] | None = None,
) -> list[Violation]:
    """Return the active assessed cases with no police step open, or one due too late."""
    if not any(i.id == POLICE.id for i in invariants):
        return []
    earliest = (select(OpenTask.case_id, func.min(OpenTask.due_at).label("due"), func.count().label("n"))
                .where(OpenTask.element_id.in_(POLICE_STEPS)).group_by(OpenTask.case_id).subquery())
    query = (select(Case.id, Case.reference, Case.risk_level, Case.facts, earliest.c.due, earliest.c.n)
             .outerjoin(earliest, earliest.c.case_id == Case.id)
             .where(Case.status == "active", Case.risk_level.is_not(None)))
    if case_ids is not None:
        query = query.where(Case.id.in_(case_ids))
    found = []
    for case_id, reference, level, facts, due, count in session.execute(query).all():
        if not count:
            found.append(Violation(POLICE.id, case_id, "missing",
                                   f"Caso {reference}: nivel {level} sin revaloración policial pendiente",
                                   f"Case {reference}: level {level} with no police re-assessment pending"))
            continue
        last = (facts or {}).get("last_assessment_at")
        period = PERIODS.get(str(level))
        if due is None or not last or period is None:
            continue
        bound = datetime.fromisoformat(last) + period + TOLERANCE
        if due > bound:
            hours = round((due - bound + TOLERANCE).total_seconds() / 3600)
            found.append(Violation(POLICE.id, case_id, "late",
                                   f"Caso {reference}: revaloración policial prevista {hours} h tarde",
                                   f"Case {reference}: police re-assessment due {hours} h late",
                                   {"late_hours": hours}))
    return found
