"""Reads for the status page: deployed definitions and counts, never personal data."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.models import AgencyKind, Case, Definition, OpenTask

NO_KIND = "(sin tipo de organismo)"
# Spanish labels of engine.models.case.CASE_STATUSES.
STATUS_LABELS = {
    "active": "Activo",
    "inactive": "Inactivo",
    "supervised_inactivation": "Inactivación supervisada",
    "on_hold": "En espera",
    "closed": "Cerrado",
}


@dataclass(frozen=True)
class Overview:
    """What the status page shows."""

    definitions: Sequence[Definition]
    cases_by_status: list[tuple[str, int]]
    open_tasks_by_kind: list[tuple[str, int]]
    every_territory: bool


def overview(session: Session, territories: Collection[int] | None) -> Overview:
    """Return every deployed definition version and the counts of cases and open tasks in `territories`.

    None counts every territory's (administrators); deployed definitions are the same for everyone.
    """
    definitions = session.execute(
        select(Definition).order_by(Definition.kind, Definition.key, Definition.version.desc())
    ).scalars().all()
    case_counts = select(Case.status, func.count()).group_by(Case.status).order_by(Case.status)
    task_counts = (
        select(OpenTask.agency_kind, AgencyKind.name, func.count())
        .outerjoin(AgencyKind, AgencyKind.code == OpenTask.agency_kind)
        .group_by(OpenTask.agency_kind, AgencyKind.name)
        .order_by(OpenTask.agency_kind)
    )
    if territories is not None:
        case_counts = case_counts.where(Case.territory_id.in_(territories))
        task_counts = task_counts.where(OpenTask.territory_id.in_(territories))
    cases, tasks = session.execute(case_counts).all(), session.execute(task_counts).all()
    return Overview(
        definitions=definitions,
        cases_by_status=[(STATUS_LABELS.get(status, status), count) for status, count in cases],
        open_tasks_by_kind=[(label or code or NO_KIND, count) for code, label, count in tasks],
        every_territory=territories is None,
    )
