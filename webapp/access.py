"""Need-to-know: which cases a user may see, and when she may be identified.

A user sees a case if their agency has or had a task in it (the task history records the agency of
every task created), or registered it, or if they oversee the case's territory (supervisors and the
Mesa's coordination). Her identifying data is shown only to agencies whose step needs it (the model's
`needsIdentity` property), and, if she did not consent to sharing, only to the agency that registered
the detection.

After a transfer to another territory (`case.access_since_event`), only history from then on counts:
the old territory's agencies, the registering one included, lose access to the case; their past
events and audit rows stay.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.orm import Session

from engine.models import Case, TaskEvent
from webapp.auth.principal import Principal

NO_CONSENT = "no"
# History entries that give an agency a step needing her identity: the step's creation, or its transfer.
IDENTITY_ACTIONS = ("created", "transferred")


def _current() -> ColumnElement[bool]:
    """SQL condition: a history entry counts for access (it is not older than the case's last transfer)."""
    return or_(Case.access_since_event.is_(None), TaskEvent.id >= Case.access_since_event)


def case_visible(principal: Principal) -> ColumnElement[bool]:
    """SQL condition on Case: the principal may know this case exists."""
    conditions: list[ColumnElement[bool]] = []
    if principal.agency_id is not None:
        conditions.append(exists().where(TaskEvent.agency_id == principal.agency_id, TaskEvent.case_id == Case.id,
                                         _current()))
    if principal.oversees_territories and principal.territory_ids:
        conditions.append(Case.territory_id.in_(principal.territory_ids))
    return or_(*conditions) if conditions else false()


def can_see_case(session: Session, principal: Principal, case_id: int) -> bool:
    """Tell whether the principal may see the case."""
    return session.execute(select(Case.id).where(Case.id == case_id, case_visible(principal))).first() is not None


def can_see_identity(session: Session, principal: Principal, case: Case) -> bool:
    """Tell whether the principal's agency may see who the victim and the aggressor are."""
    if principal.agency_id is None:
        return False
    since = case.access_since_event
    registered = since is None and session.execute(
        select(TaskEvent.id).where(TaskEvent.case_id == case.id, TaskEvent.action == "case_opened",
                                   TaskEvent.agency_id == principal.agency_id).limit(1)
    ).first() is not None
    if case.facts.get("consent_to_share") == NO_CONSENT:
        return registered
    if registered:
        return True
    # The agency has (or had) a step whose model says it needs to know who she is.
    needed = exists().where(
        and_(TaskEvent.case_id == case.id, TaskEvent.agency_id == principal.agency_id,
             TaskEvent.action.in_(IDENTITY_ACTIONS), TaskEvent.data["needs_identity"].as_boolean().is_(True),
             TaskEvent.id >= since if since is not None else true())
    )
    return bool(session.execute(select(needed)).scalar())
