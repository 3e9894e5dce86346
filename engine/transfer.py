"""Move a case to another territory: its open steps go to the new territory's agencies, its history stays.

Running instances and pending timers are the case's and simply follow it; the task history and
the audit log keep every old agency's past work. From the transfer's history entry on
(`case.access_since_event`) only the agencies involved afterwards get access (webapp/access.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.assignment import resolve_agencies
from engine.errors import ConflictError, NotFoundError
from engine.history import record
from engine.models import Case, OpenTask, Territory
from engine.persistence import lock_case

TRANSFERRED, CASE_TRANSFERRED = "transferred", "case_transferred"


def transfer_case(session: Session, case_id: int, to_territory_id: int, *, now: datetime, actor: Actor) -> Case:
    """Move a case and re-assign each open step to the agency of the same kind serving the new territory.

    Each re-assigned step loses its assignee (the new agency decides who does it), gets a new version
    (a form open in the old agency is refused as stale) and a `transferred` history entry naming both
    agencies. A step whose kind has no agency in the new territory waits unassigned, as it would there.
    """
    case = lock_case(session, case_id)
    if session.get(Territory, to_territory_id) is None:
        raise NotFoundError(f"territory {to_territory_id} does not exist")
    if case.territory_id == to_territory_id:
        raise ConflictError("the case is already in that territory")
    from_territory_id = case.territory_id
    tasks = session.execute(select(OpenTask).where(OpenTask.case_id == case.id).order_by(OpenTask.id)).scalars().all()
    agencies = resolve_agencies(session, to_territory_id, {t.agency_kind for t in tasks if t.agency_kind})
    moved = record(session, case, CASE_TRANSFERRED, now, actor,
                   data={"from_territory_id": from_territory_id, "to_territory_id": to_territory_id})
    session.flush()  # the entry's id is where access starts again
    case.territory_id = to_territory_id
    case.access_since_event = moved.id
    case.updated_at = now
    case.version += 1
    session.flush()
    session.expire(case, ["territory"])  # the joined territory (its region decides working days) is the new one
    for task in tasks:
        old_agency = task.agency_id
        task.agency_id = agencies.get(task.agency_kind) if task.agency_kind else None
        task.territory_id = to_territory_id  # the board counts it where the case is now
        task.assignee_id = None
        task.version += 1
        data: dict[str, object] = {"from_agency_id": old_agency, "to_agency_id": task.agency_id}
        if task.needs_identity:
            data["needs_identity"] = True  # the new agency's step needs to know who she is, as the old one did
        record(session, case, TRANSFERRED, now, actor, task=task, data=data)
    session.flush()
    return case
