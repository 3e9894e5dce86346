"""Transfer operations: request a case's transfer to another territory's Mesa, and accept or reject it.

Each function works in the caller's transaction and only flushes; the view commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.errors import ConflictError
from engine.models import AgendaItem, Case, CaseTransfer, Meeting, Mesa, OpenTask
from engine.persistence import lock_case
from engine.transfer import transfer_case
from webapp.validation import InvalidInput

REASON_MAX = 1000


@dataclass(frozen=True)
class TransferDecision:
    """What deciding a transfer did."""

    transfer: CaseTransfer
    moved_tasks: int


def request_transfer(session: Session, mesa: Mesa, case_id: int, to_mesa: Mesa, reason: str, *, actor: Actor,
                     now: datetime) -> CaseTransfer:
    """Ask another territory's Mesa to take a case of ours (the victim moved); its coordinator decides."""
    case = session.get(Case, case_id)
    if case is None or case.territory_id != mesa.territory_id:
        raise InvalidInput({"case": [_("Elija un caso del territorio de la Mesa.")]})
    if to_mesa.id == mesa.id or not to_mesa.active:
        raise InvalidInput({"to_mesa": [_("Elija la Mesa de otro territorio.")]})
    if len(reason) > REASON_MAX:
        raise InvalidInput({"reason": [_("El texto es demasiado largo (como máximo %(count)s caracteres).",
                                           count=REASON_MAX)]})
    pending = session.execute(select(CaseTransfer.id).where(CaseTransfer.case_id == case_id,
                                                            CaseTransfer.status == "requested")).first()
    if pending is not None:
        raise InvalidInput({"case": [_("Ese caso ya tiene un traslado pendiente.")]})
    transfer = CaseTransfer(case_id=case_id, from_territory_id=mesa.territory_id, to_territory_id=to_mesa.territory_id,
                            status="requested", reason=reason.strip(), requested_by_id=actor.user_id, requested_at=now)
    session.add(transfer)
    session.flush()
    return transfer


def decide_transfer(session: Session, transfer: CaseTransfer, accept: bool, *, actor: Actor,
                    now: datetime) -> TransferDecision:
    """Accept (move the case and its open steps) or reject a transfer request, in the caller's transaction."""
    if transfer.status != "requested":
        raise ConflictError(f"the transfer was {transfer.status} already")
    case = lock_case(session, transfer.case_id)
    if case.territory_id != transfer.from_territory_id:
        raise ConflictError("the case moved meanwhile")
    transfer.status, transfer.decided_by_id, transfer.decided_at = ("accepted" if accept else "rejected",
                                                                    actor.user_id, now)
    moved = 0
    if accept:
        moved = len(session.execute(select(OpenTask.id).where(OpenTask.case_id == case.id)).all())
        transfer_case(session, case.id, transfer.to_territory_id, now=now, actor=actor)
        # The old Mesa's planned agendas no longer list the case; its closed minutes keep it.
        session.execute(delete(AgendaItem).where(
            AgendaItem.case_id == case.id,
            AgendaItem.meeting_id.in_(select(Meeting.id).where(Meeting.status == "planned",
                                                               Meeting.mesa_id.in_(select(Mesa.id).where(
                                                                   Mesa.territory_id == transfer.from_territory_id))))),
            execution_options={"synchronize_session": "fetch"})
    session.flush()
    return TransferDecision(transfer, moved)
