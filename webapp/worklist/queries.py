"""Worklist reads shared by the HTML pages and the JSON API: tabs, filters, order, pages, counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from engine.levels import current_levels
from engine.models import Agency, Case, OpenTask, Territory, UserAccount
from webapp.auth.principal import Principal
from webapp.limits import parse_id

TABS = ("mine", "agency", "upcoming")
DUE_WINDOWS = ("overdue", "today", "week")
PER_PAGE = 50
MAX_PER_PAGE = 200
MAX_QUERY = 100



@dataclass(frozen=True)
class Filters:
    """Worklist filters, all optional; they travel in the URL."""

    step: str | None = None
    risk: str | None = None
    due: str | None = None
    territory: int | None = None
    q: str | None = None

    @classmethod
    def from_args(cls, args: Any, risk_levels: Sequence[str]) -> Filters:
        """Read filters from request arguments, ignoring values that are not allowed (levels: the scale's)."""
        return cls(
            step=args.get("step") or None,
            risk=args.get("risk") if args.get("risk") in risk_levels else None,
            due=args.get("due") if args.get("due") in DUE_WINDOWS else None,
            territory=parse_id(args.get("territory")),
            q=(args.get("q") or "").strip()[:MAX_QUERY] or None,
        )

    def as_args(self) -> dict[str, str]:
        """Return the filters as URL arguments (without the empty ones)."""
        values = {"step": self.step, "risk": self.risk, "due": self.due,
                  "territory": str(self.territory) if self.territory else None, "q": self.q}
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class Row:
    """One worklist line."""

    task_id: int
    version: int
    case_id: int
    reference: str
    element_id: str
    step: str
    risk_level: str | None
    due_at: datetime | None
    visible_from: datetime
    overdue: bool
    assignee_id: int | None
    assignee_name: str | None
    territory: str
    form: str | None
    agency_id: int | None = None
    agency_name: str | None = None
    agency_kind: str | None = None


@dataclass
class Page:
    """One page of rows and where it sits."""

    rows: list[Row]
    total: int
    page: int
    per_page: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        """Return the number of pages (at least 1)."""
        return max(1, -(-self.total // self.per_page))


def _tab_condition(principal: Principal, tab: str, now: datetime) -> ColumnElement[bool]:
    if tab == "mine":
        return and_(OpenTask.assignee_id == principal.user_id, OpenTask.visible_from <= now)
    if tab == "agency":
        return and_(OpenTask.agency_id == principal.agency_id, OpenTask.assignee_id.is_(None),
                    OpenTask.visible_from <= now)
    if tab == "upcoming":
        return and_(OpenTask.agency_id == principal.agency_id, OpenTask.visible_from > now)
    raise ValueError(f"unknown tab {tab!r}")


SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])
# The order of a tab (README "Worklist order"): overdue first, then by due time ascending whatever the
# level (a step due in an hour on an unassessed case comes before a re-assessment of an extreme one due in
# two days); the level breaks ties between equal deadlines; steps without a deadline come last, by level.
SEGMENTS = ("overdue", "dated", "undated")


def _segment(name: str, now: datetime) -> ColumnElement[bool]:
    if name == "overdue":
        return OpenTask.due_at < now
    if name == "dated":
        return OpenTask.due_at >= now
    return OpenTask.due_at.is_(None)


def _filter(query: SelectT, filters: Filters, now: datetime, rank: int | None) -> SelectT:
    if filters.step:
        query = query.where(OpenTask.element_id == filters.step)
    if rank is not None:
        query = query.where(OpenTask.risk_rank == rank)
    if filters.territory:
        query = query.where(OpenTask.case_id.in_(select(Case.id).where(Case.territory_id == filters.territory)))
    if filters.q:
        # The case reference exactly or by prefix; the step name anywhere, ignoring case.
        query = query.where(or_(
            OpenTask.case_id.in_(select(Case.id).where(Case.reference.startswith(filters.q, autoescape=True))),
            func.lower(OpenTask.name).contains(filters.q.lower(), autoescape=True),
        ))
    if filters.due == "overdue":
        query = query.where(OpenTask.due_at < now)
    elif filters.due == "today":
        query = query.where(OpenTask.due_at < now + timedelta(days=1))
    elif filters.due == "week":
        query = query.where(OpenTask.due_at < now + timedelta(days=7))
    return query


def worklist(
    session: Session, principal: Principal, tab: str, filters: Filters, *, page: int = 1,
    per_page: int = PER_PAGE, now: datetime,
) -> Page:
    """Return one page of a tab: overdue first, then by due date, level breaking ties; undated last."""
    if principal.agency_id is None:
        return Page([], 0, 1, per_page, {t: 0 for t in TABS})
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    condition = _tab_condition(principal, tab, now)
    # Tasks carry their case's rank in the deployed scale; a code not in the scale matches nothing.
    rank = (current_levels(session).rank(filters.risk) or -1) if filters.risk else None
    sizes = session.execute(_filter(
        select(*[func.coalesce(func.sum(case((_segment(name, now), 1), else_=0)), 0) for name in SEGMENTS])
        .select_from(OpenTask).where(condition),
        filters, now, rank,
    )).one()
    ids: list[int] = []
    skip = (page - 1) * per_page
    for name, size in zip(SEGMENTS, (int(n) for n in sizes), strict=True):
        if len(ids) == per_page:
            break
        if skip >= size:
            skip -= size
            continue
        ids += session.execute(_filter(
            select(OpenTask.id).where(condition, _segment(name, now))
            .order_by(OpenTask.due_at, OpenTask.risk_rank.desc(), OpenTask.id)
            .limit(per_page - len(ids)).offset(skip),
            filters, now, rank,
        )).scalars().all()
        skip = 0
    rows = session.execute(
        select(OpenTask, Case.reference, Case.risk_level, Territory.name, UserAccount.display_name, Agency)
        .join(Case, Case.id == OpenTask.case_id)
        .join(Territory, Territory.id == Case.territory_id)
        .outerjoin(UserAccount, UserAccount.id == OpenTask.assignee_id)
        .outerjoin(Agency, Agency.id == OpenTask.agency_id)
        .where(OpenTask.id.in_(ids))
    ).all() if ids else []
    position = {task_id: n for n, task_id in enumerate(ids)}
    rows = sorted(rows, key=lambda row: position[row[0].id])
    return Page(
        [
            Row(task.id, task.version, task.case_id, reference, task.element_id, task.name, risk, task.due_at,
                task.visible_from, task.due_at is not None and task.due_at < now, task.assignee_id, assignee,
                territory, task.form, task.agency_id, agency.name if agency else None, agency.kind if agency else None)
            for task, reference, risk, territory, assignee, agency in rows
        ],
        sum(int(n) for n in sizes), page, per_page,
    )


def tab_counts(session: Session, principal: Principal, now: datetime) -> dict[str, int]:
    """Count the tasks of every tab (each count is read from an index)."""
    if principal.agency_id is None:
        return {t: 0 for t in TABS}
    return {
        tab: int(session.execute(
            select(func.count()).select_from(OpenTask).where(_tab_condition(principal, tab, now))
        ).scalar_one())
        for tab in TABS
    }


def step_choices(session: Session, principal: Principal) -> list[tuple[str, str]]:
    """Return the (element id, name) of the steps open in the user's agency, for the step filter."""
    if principal.agency_id is None:
        return []
    rows = session.execute(
        select(OpenTask.element_id, func.min(OpenTask.name)).where(OpenTask.agency_id == principal.agency_id)
        .group_by(OpenTask.element_id).order_by(func.min(OpenTask.name))
    ).all()
    return [(element_id, name) for element_id, name in rows]
