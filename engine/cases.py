"""Open cases: hand out their references and keep the identifying data of victim and aggressor apart."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.db import is_postgresql
from engine.errors import NotFoundError
from engine.history import record
from engine.models import Case, CaseParty, ReferenceCounter, Territory

REFERENCE_PREFIX = "VG"


def next_reference(session: Session, now: datetime) -> str:
    """Hand out the next case reference of the year (VG-2026-000123), safely under concurrency."""
    year = now.year
    insert = pg_insert if is_postgresql(session) else sqlite_insert
    session.execute(insert(ReferenceCounter).values(year=year, last=0).on_conflict_do_nothing())
    number = session.execute(
        update(ReferenceCounter)
        .where(ReferenceCounter.year == year)
        .values(last=ReferenceCounter.last + 1)
        .returning(ReferenceCounter.last)
    ).scalar_one()
    return f"{REFERENCE_PREFIX}-{year}-{number:06d}"


def open_case(
    session: Session, *, territory_id: int, now: datetime, actor: Actor,
    victim: Mapping[str, Any] | None = None, aggressor: Mapping[str, Any] | None = None,
    facts: Mapping[str, Any] | None = None,
) -> Case:
    """Create a case for a territory, with the identifying data of victim and aggressor kept apart."""
    if session.get(Territory, territory_id) is None:
        raise NotFoundError(f"territory {territory_id} does not exist")
    case = Case(
        reference=next_reference(session, now), territory_id=territory_id, status="active",
        facts=dict(facts or {}), created_at=now, updated_at=now, version=1,
    )
    session.add(case)
    session.flush()
    for role, identity in (("victim", victim), ("aggressor", aggressor)):
        if identity is not None:
            session.add(CaseParty(case_id=case.id, role=role, identity=dict(identity)))
    record(session, case, "case_opened", now, actor)
    return case
