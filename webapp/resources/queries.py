"""Reads of the resources directory: a territory's services by kind, and who may edit them."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Mesa, Resource
from webapp.auth.principal import ROLE_PROFESSIONAL, ROLE_SUPERVISOR, Principal


def directory(session: Session, territory_ids: Iterable[int], kinds: Iterable[str] | None = None) -> list[Resource]:
    """List the active resources of some territories (optionally of some kinds), by kind and name."""
    query = select(Resource).where(Resource.territory_id.in_(list(territory_ids)), Resource.active.is_(True))
    if kinds is not None:
        query = query.where(Resource.kind.in_(list(kinds)))
    return list(session.execute(query.order_by(Resource.kind, Resource.name)).scalars())


def can_edit(session: Session, principal: Principal, territory_id: int) -> bool:
    """Tell whether the principal coordinates the Mesa of the territory (only the coordinator edits)."""
    if principal.agency_id is None or not ({ROLE_PROFESSIONAL, ROLE_SUPERVISOR} & principal.roles):
        return False
    found = session.execute(select(Mesa.id).where(Mesa.territory_id == territory_id,
                                                  Mesa.coordinator_agency_id == principal.agency_id)).first()
    return found is not None
