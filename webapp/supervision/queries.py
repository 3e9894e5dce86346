"""Reads of the supervisor's board, aggregated in SQL and limited to the supervisor's territories.

Open steps are counted in one GROUP BY (agency, assignee, step) from which the overdue and load
tables are summed; lists (late steps, re-assessments, the agency's own steps) are read in due-date
order with a limit. Open steps carry their case's territory (`open_task.territory_id`), so none of
this joins the cases to know where a step is. The time taken against each deadline comes from the
daily roll-up of completions (engine/stats.py), never from the whole history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select, text
from sqlalchemy.orm import Session

from engine.levels import current_levels
from engine.localtime import LOCAL_TZ
from engine.models import Agency, Case, OpenTask, UserAccount
from engine.models.step_timing import StepTimingDay
from engine.stats import histograms, pending_completions, report_day
from webapp.auth.principal import Principal
from webapp.limits import parse_count, parse_id

PERIODS = (30, 90, 365)
DEFAULT_PERIOD = 30
LIST_LIMIT = 100  # rows of each list on the page (the totals count them all)
EXPORT_LIMIT = 5000  # rows of a list in a CSV export
REASSESSMENT_FORM = "risk_assessment"
REASSESSMENT_WINDOW = timedelta(days=7)
FOLLOWED_STATUS = "active"
PERCENTILES = (0.5, 0.9)
HOUR = 3600.0


@dataclass(frozen=True)
class BoardFilters:
    """The board's filters, kept in the URL: one of the supervisor's territories (or all), a period."""

    territory: int | None = None
    period: int = DEFAULT_PERIOD

    @classmethod
    def from_args(cls, args: Mapping[str, Any], principal: Principal) -> BoardFilters:
        """Read filters from request arguments; a territory the supervisor does not oversee is ignored."""
        return cls(
            territory=territory if (territory := parse_id(args.get("territory"))) in principal.territory_ids else None,
            period=period if (period := parse_count(args.get("period"))) in PERIODS else DEFAULT_PERIOD,
        )

    def as_args(self) -> dict[str, str]:
        """Return the filters as URL arguments (the default period left out)."""
        values = {"territory": str(self.territory) if self.territory else None,
                  "period": str(self.period) if self.period != DEFAULT_PERIOD else None}
        return {key: value for key, value in values.items() if value}

    def territory_ids(self, principal: Principal) -> list[int]:
        """Return the territories the board covers."""
        return [self.territory] if self.territory else sorted(principal.territory_ids)


@dataclass(frozen=True)
class AgencyLoad:
    """Open steps of an agency (visible now), of which overdue and unassigned."""

    agency_id: int | None
    agency: str | None
    open: int
    overdue: int
    unassigned: int


@dataclass(frozen=True)
class StepCount:
    """Open and overdue steps of one BPMN step."""

    element_id: str
    step: str
    open: int
    overdue: int


@dataclass(frozen=True)
class ProfessionalLoad:
    """Open steps assigned to one professional, of which overdue."""

    user_id: int
    name: str
    agency: str | None
    open: int
    overdue: int


@dataclass(frozen=True)
class LateStep:
    """An open step past its deadline."""

    task_id: int
    case_id: int
    reference: str
    element_id: str
    step: str
    agency_id: int | None
    agency: str | None
    due_at: datetime
    days_late: float


@dataclass(frozen=True)
class Reassessment:
    """A risk assessment due soon."""

    task_id: int
    case_id: int
    reference: str
    step: str
    agency: str | None
    due_at: datetime
    risk_level: str | None


@dataclass(frozen=True)
class RiskCount:
    """Followed cases at one risk level."""

    level: str | None
    cases: int


@dataclass(frozen=True)
class StepTiming:
    """How one step was done in the period: against its deadline (negative hours: before it)."""

    element_id: str
    step: str
    completed: int
    on_time: int
    median_hours: float | None
    p90_hours: float | None

    @property
    def on_time_share(self) -> float:
        """Return the share of completions on or before the deadline (0 to 1)."""
        return self.on_time / self.completed if self.completed else 0.0


@dataclass(frozen=True)
class OwnTask:
    """An open step of the supervisor's own agency, for reassignment."""

    task_id: int
    version: int
    case_id: int
    reference: str
    step: str
    due_at: datetime | None
    overdue: bool
    assignee_id: int | None
    assignee: str | None


@dataclass
class Board:
    """Everything the board shows."""

    agencies: list[AgencyLoad]
    steps: list[StepCount]
    professionals: list[ProfessionalLoad]
    late: list[LateStep]
    late_total: int
    risks: list[RiskCount]
    reassessments: list[Reassessment]
    reassessments_total: int
    timings: list[StepTiming]
    own_tasks: list[OwnTask]

    def case_ids(self) -> list[int]:
        """Return the cases whose reference the board shows (for the audit log)."""
        return sorted({row.case_id for rows in (self.late, self.reassessments, self.own_tasks) for row in rows})


def _cases_in_scope(territories: Iterable[int]) -> ColumnElement[bool]:
    return Case.territory_id.in_(list(territories))


def _open_in_scope(territories: Iterable[int]) -> ColumnElement[bool]:
    return OpenTask.territory_id.in_(list(territories))


def _custom_plans(session: Session) -> None:
    """Plan each board query for its own dates, for the rest of the transaction (PostgreSQL).

    psycopg prepares a statement run five times, and PostgreSQL then may switch to a generic plan
    that ignores the date range (measured on a history query over 100,000 cases: 9 s instead of 1.5 s).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def board(session: Session, principal: Principal, filters: BoardFilters, now: datetime) -> Board:
    """Read the whole board for the supervisor's territories (or the one chosen)."""
    territories = filters.territory_ids(principal)
    agencies, steps, professionals = open_step_counts(session, territories, now)
    late_total = sum(row.overdue for row in agencies)
    reassessments, reassessments_total = reassessments_due(session, territories, now)
    return Board(
        agencies=agencies, steps=steps, professionals=professionals,
        late=late_steps(session, territories, now) if late_total else [], late_total=late_total,
        risks=risk_levels(session, territories), reassessments=reassessments,
        reassessments_total=reassessments_total,
        timings=step_timings(session, territories, filters.period, now),
        own_tasks=own_agency_tasks(session, principal, territories, now),
    )


def open_step_counts(
    session: Session, territories: Iterable[int], now: datetime
) -> tuple[list[AgencyLoad], list[StepCount], list[ProfessionalLoad]]:
    """Count the visible open steps by agency, by step and by professional, with the overdue ones.

    One GROUP BY over (agency, assignee, step); the three tables are sums of its groups, whose number
    is bounded by agencies x members x steps, not by the number of tasks.
    """
    _custom_plans(session)
    overdue = func.sum(case((OpenTask.due_at < now, 1), else_=0))
    groups = session.execute(
        select(OpenTask.agency_id, OpenTask.assignee_id, OpenTask.element_id, func.min(OpenTask.name),
               func.count(), overdue)
        .where(_open_in_scope(territories), OpenTask.visible_from <= now)
        .group_by(OpenTask.agency_id, OpenTask.assignee_id, OpenTask.element_id)
    ).all()
    agency_ids = {agency_id for agency_id, *_ in groups if agency_id is not None}
    user_ids = {assignee_id for _, assignee_id, *_ in groups if assignee_id is not None}
    agency_names = dict(session.execute(select(Agency.id, Agency.name).where(Agency.id.in_(agency_ids))).all())
    users = {user_id: (name, agency_id) for user_id, name, agency_id in session.execute(
        select(UserAccount.id, UserAccount.display_name, UserAccount.agency_id).where(UserAccount.id.in_(user_ids)))}
    by_agency: dict[int | None, list[int]] = defaultdict(lambda: [0, 0, 0])
    by_step: dict[str, list[Any]] = {}
    by_user: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for agency_id, assignee_id, element_id, name, count, late in groups:
        late = int(late or 0)
        totals = by_agency[agency_id]
        totals[0] += count
        totals[1] += late
        totals[2] += count if assignee_id is None else 0
        step = by_step.setdefault(element_id, [name, 0, 0])
        step[1] += count
        step[2] += late
        if assignee_id is not None:
            by_user[assignee_id][0] += count
            by_user[assignee_id][1] += late
    agencies = sorted(
        (AgencyLoad(agency_id, agency_names.get(agency_id) if agency_id else None, *totals)
         for agency_id, totals in by_agency.items()),
        key=lambda row: (-row.overdue, -row.open, row.agency or ""))
    steps = sorted((StepCount(element_id, name, count, late) for element_id, (name, count, late) in by_step.items()),
                   key=lambda row: (-row.overdue, -row.open, row.step))
    professionals = sorted(
        (ProfessionalLoad(user_id, users[user_id][0], agency_names.get(users[user_id][1] or 0), count, late)
         for user_id, (count, late) in by_user.items() if user_id in users),
        key=lambda row: (-row.overdue, -row.open, row.name))
    return agencies, steps, professionals


def late_steps(
    session: Session, territories: Iterable[int], now: datetime, *, limit: int = LIST_LIMIT
) -> list[LateStep]:
    """List the overdue open steps, the longest overdue first (read in due-date index order)."""
    _custom_plans(session)
    rows = session.execute(
        select(OpenTask.id, OpenTask.case_id, Case.reference, OpenTask.element_id, OpenTask.name, OpenTask.agency_id,
               Agency.name, OpenTask.due_at)
        .join(Case, Case.id == OpenTask.case_id)
        .outerjoin(Agency, Agency.id == OpenTask.agency_id)
        .where(_open_in_scope(territories), OpenTask.due_at < now)
        .order_by(OpenTask.due_at, OpenTask.id).limit(limit)
    ).all()
    return [LateStep(task_id, case_id, reference, element_id, step, agency_id, agency, due_at,
                     round((now - due_at).total_seconds() / 86400, 1))
            for task_id, case_id, reference, element_id, step, agency_id, agency, due_at in rows
            if due_at is not None]  # always: the condition above keeps dated steps only


def reassessments_due(
    session: Session, territories: Iterable[int], now: datetime, *, limit: int = LIST_LIMIT
) -> tuple[list[Reassessment], int]:
    """List the open risk assessments due within the next 7 days (soonest first) and count them.

    Every protocol process that sets a case's `next_reassessment_due` opens its risk-assessment step
    with that same deadline, so the open steps (read by due-date index) are the list.
    """
    _custom_plans(session)
    condition = and_(_open_in_scope(territories), OpenTask.form == REASSESSMENT_FORM, OpenTask.due_at >= now,
                     OpenTask.due_at < now + REASSESSMENT_WINDOW)
    total = session.execute(select(func.count()).select_from(OpenTask).where(condition)).scalar_one()
    rows = session.execute(
        select(OpenTask.id, OpenTask.case_id, Case.reference, OpenTask.name, Agency.name, OpenTask.due_at,
               Case.risk_level)
        .join(Case, Case.id == OpenTask.case_id)
        .outerjoin(Agency, Agency.id == OpenTask.agency_id)
        .where(condition).order_by(OpenTask.due_at, OpenTask.id).limit(limit)
    ).all()
    return [Reassessment(task_id, case_id, reference, step, agency, due_at, level)
            for task_id, case_id, reference, step, agency, due_at, level in rows if due_at is not None], int(total)


def risk_levels(session: Session, territories: Iterable[int]) -> list[RiskCount]:
    """Count the followed (active) cases by risk level, highest first, unassessed last."""
    rows = session.execute(
        select(Case.risk_level, func.count()).where(_cases_in_scope(territories), Case.status == FOLLOWED_STATUS)
        .group_by(Case.risk_level)
    ).all()
    rank = current_levels(session).rank  # 0 for unassessed cases and levels the scale no longer has
    return sorted((RiskCount(level, int(count)) for level, count in rows),
                  key=lambda row: (-rank(row.level), row.level or ""))


def step_timings(session: Session, territories: Iterable[int], days: int, now: datetime) -> list[StepTiming]:
    """For each step completed in the last `days` Madrid days (today included): count, on time, median, p90.

    Read from the daily roll-up (engine/stats.py) plus the completions the worker has not rolled up yet:
    a few hundred rows a day per step, however long the history.
    """
    today = report_day(now)
    first = today - timedelta(days=days - 1)
    places = list(territories)
    rows = session.execute(
        select(StepTimingDay.element_id, func.max(StepTimingDay.name), StepTimingDay.delay_s,
               func.sum(StepTimingDay.completed), func.sum(StepTimingDay.on_time))
        .where(StepTimingDay.territory_id.in_(places), StepTimingDay.day >= first, StepTimingDay.day <= today)
        .group_by(StepTimingDay.element_id, StepTimingDay.delay_s)
    ).all()
    since = datetime.combine(first, time(), tzinfo=LOCAL_TZ)
    pending = [completion for _, completion in pending_completions(session, territories=places, since=since)
               if completion.at <= now]
    timings = []
    for element_id, histogram in histograms(rows, pending).items():
        median, p90 = histogram.percentiles(PERCENTILES)
        timings.append(StepTiming(element_id, histogram.name, histogram.completed, histogram.on_time,
                                  _hours(median), _hours(p90)))
    return sorted(timings, key=lambda row: (row.on_time_share, row.step))


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(float(seconds) / HOUR, 1)


def own_agency_tasks(
    session: Session, principal: Principal, territories: Iterable[int], now: datetime, *, limit: int = LIST_LIMIT
) -> list[OwnTask]:
    """List the open steps of the supervisor's own agency, earliest deadline first, for reassignment."""
    _custom_plans(session)
    if principal.agency_id is None:
        return []
    rows = session.execute(
        select(OpenTask.id, OpenTask.version, OpenTask.case_id, Case.reference, OpenTask.name, OpenTask.due_at,
               OpenTask.assignee_id, UserAccount.display_name)
        .join(Case, Case.id == OpenTask.case_id)
        .outerjoin(UserAccount, UserAccount.id == OpenTask.assignee_id)
        .where(_open_in_scope(territories), OpenTask.agency_id == principal.agency_id)
        # Undated steps last, written so that PostgreSQL walks the due-date index (no sort of the agency's steps).
        .order_by(OpenTask.due_at.asc().nulls_last(), OpenTask.id).limit(limit)
    ).all()
    return [OwnTask(task_id, version, case_id, reference, step, due_at, due_at is not None and due_at < now,
                    assignee_id, assignee)
            for task_id, version, case_id, reference, step, due_at, assignee_id, assignee in rows]


def members(session: Session, agency_id: int | None) -> list[tuple[int, str]]:
    """Return the active members of an agency (id, name), by name."""
    if agency_id is None:
        return []
    return [(user_id, name) for user_id, name in session.execute(
        select(UserAccount.id, UserAccount.display_name)
        .where(UserAccount.agency_id == agency_id, UserAccount.active.is_(True)).order_by(UserAccount.display_name)
    ).all()]
