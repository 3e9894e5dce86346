"""Reads of case transfers: the transfers from and to a Mesa's territory, and what the request form offers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Case, CaseTransfer, Mesa, Territory
from webapp.mesa.queries import FOLLOWED


@dataclass(frozen=True)
class TransferRow:
    """A transfer request, incoming or outgoing."""

    id: int
    case_id: int
    reference: str
    from_territory: str
    to_territory: str
    status: str
    reason: str
    requested_at: datetime
    decided_at: datetime | None


def transfers_of(session: Session, mesa: Mesa) -> list[TransferRow]:
    """List the transfers from or to the Mesa's territory, the latest first."""
    source = select(Territory.id, Territory.name).subquery()
    target = select(Territory.id, Territory.name).subquery()
    rows = session.execute(
        select(CaseTransfer, Case.reference, source.c.name, target.c.name)
        .join(Case, Case.id == CaseTransfer.case_id)
        .join(source, source.c.id == CaseTransfer.from_territory_id)
        .join(target, target.c.id == CaseTransfer.to_territory_id)
        .where((CaseTransfer.from_territory_id == mesa.territory_id)
               | (CaseTransfer.to_territory_id == mesa.territory_id))
        .order_by(CaseTransfer.requested_at.desc(), CaseTransfer.id.desc())
    ).all()
    return [TransferRow(t.id, t.case_id, reference, origin, destination, t.status, t.reason, t.requested_at,
                        t.decided_at) for t, reference, origin, destination in rows]


def followed_cases(session: Session, mesa: Mesa) -> list[tuple[int, str]]:
    """List the followed cases of the Mesa's territory (id, reference), by reference."""
    return [(case_id, reference) for case_id, reference in session.execute(
        select(Case.id, Case.reference).where(Case.territory_id == mesa.territory_id, Case.status.in_(FOLLOWED))
        .order_by(Case.reference)
    ).all()]


def other_mesas(session: Session, mesa: Mesa) -> list[tuple[int, str]]:
    """List the other active Mesas (id, name) a case can be transferred to."""
    return [(mesa_id, name) for mesa_id, name in session.execute(
        select(Mesa.id, Mesa.name).where(Mesa.id != mesa.id, Mesa.active.is_(True)).order_by(Mesa.name)
    ).all()]
