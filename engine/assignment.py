"""Resolve BPMN lanes to agency kinds, and agency kinds to the concrete agency of a territory."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from engine import sandbox
from engine.errors import ExecutionError
from engine.models import Agency, AgencyKind, agency_territory


def _normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def lane_kind(lane: str | None, kinds: Mapping[str, str]) -> str | None:
    """Return the agency kind code a lane name stands for (its code or its label), or None."""
    if not lane:
        return None
    wanted = _normalise(lane)
    for code, label in kinds.items():
        if wanted in (_normalise(code), _normalise(label)):
            return code
    return None


def known_kinds(session: Session) -> dict[str, str]:
    """Map every agency kind code to its label."""
    return {k.code: k.name for k in session.execute(select(AgencyKind)).scalars()}


def resolve_agencies(session: Session, territory_id: int, kinds: Iterable[str]) -> dict[str, int]:
    """Map each agency kind to the active agency serving the territory (lowest id if several).

    Remembered for the rest of the transaction: a timer pass resolves the same few kinds of the
    same territories again and again.
    """
    wanted = frozenset(kinds)
    if not wanted:
        return {}
    memo: dict[tuple[int, frozenset[str]], dict[str, int]] = session.info.setdefault(_MEMO, {})
    key = (territory_id, wanted)
    if key not in memo:
        memo[key] = _resolve(session, territory_id, wanted)
    return dict(memo[key])


_MEMO = "coordina_agency_memo"


@event.listens_for(Session, "after_transaction_end")
def _forget_agencies(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended: agencies may change now
        session.info.pop(_MEMO, None)


def _resolve(session: Session, territory_id: int, wanted: frozenset[str]) -> dict[str, int]:
    rows = session.execute(
        select(Agency.kind, Agency.id)
        .join(agency_territory, agency_territory.c.agency_id == Agency.id)
        .where(
            agency_territory.c.territory_id == territory_id,
            Agency.kind.in_(wanted),
            Agency.active.is_(True),
        )
        .order_by(Agency.id.desc())
    ).all()
    return {kind: agency_id for kind, agency_id in rows}


def chosen_agency(
    session: Session, expression: str, data: Mapping[str, Any], territory_id: int, element_id: str
) -> tuple[int, str]:
    """Evaluate a task's `assignedAgency` expression; return the agency and its kind, or raise ExecutionError.

    The agency must exist, be active and serve the case's territory: a Mesa agreement goes to the
    agency chosen at the meeting, never to one outside the case's territory.
    """
    try:
        value = sandbox.evaluate(expression, dict(data), {})
    except Exception as exc:  # a missing variable or a refused expression: say which task
        raise ExecutionError(f"assignedAgency of {element_id} could not be evaluated: {exc}") from exc
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise ExecutionError(f"assignedAgency of {element_id} gave {value!r}; expected an agency id")
    agency_id = int(value)
    row = session.execute(
        select(Agency.kind)
        .join(agency_territory, agency_territory.c.agency_id == Agency.id)
        .where(Agency.id == agency_id, Agency.active.is_(True), agency_territory.c.territory_id == territory_id)
    ).first()
    if row is None:
        raise ExecutionError(f"assignedAgency of {element_id} gave agency {agency_id}, which is not an active "
                             f"agency serving the case's territory ({territory_id})")
    return agency_id, str(row[0])
