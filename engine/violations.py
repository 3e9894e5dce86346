"""Finding violations of the declared invariants (`engine.invariants`): one SQL check per kind.

Every check is one indexed statement over the open steps, the cases or the running instances; none
reads the history except `step_exists`, through the (action, element, case) index.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, DateTime, and_, case, cast, exists, false, func, literal, or_, select
from sqlalchemy.orm import Session

from engine import spiff
from engine.db import is_postgresql
from engine.definitions import runnable
from engine.durations import format_hours, parse_duration
from engine.errors import ExecutionError, NotFoundError
from engine.invariants import DECISION_PERIODS, Invariant
from engine.models import Case, Definition, OpenTask, ProcessInstance, TaskEvent
from engine.timing import parse_when_or_none


@dataclass(frozen=True)
class Violation:
    """A case breaking an invariant; `message` names the case by reference only (no personal data)."""

    invariant_id: str
    case_id: int
    kind: str  # missing | late | duplicate
    message: str
    message_en: str
    details: dict[str, Any] = field(hash=False, compare=False)
    repairable: bool = False


class Lookups:
    """What the checks read from the deployed definitions: the decisions' periods and the processes' tracks.

    `find_violations` builds one per call. A caller whose definitions cannot change between its calls
    (the verifier's private database, deployed once) passes one for all of them: a check then costs
    only its own queries.
    """

    def __init__(self, session: Session) -> None:
        self.periods = _Periods(session)
        self._tracks: tuple[ColumnElement[Any] | None, dict[str, str]] | None = None

    def tracks(self, session: Session) -> tuple[ColumnElement[Any] | None, dict[str, str]]:
        """Return `track_column(session)`, read once."""
        if self._tracks is None:
            self._tracks = track_column(session)
        return self._tracks


def find_violations(
    session: Session, now: datetime, invariants: Sequence[Invariant], *, case_ids: Iterable[int] | None = None,
    lookups: Lookups | None = None,
) -> list[Violation]:
    """Return every violation of the invariants at `now` (of some cases only, with `case_ids`), by case."""
    only = None if case_ids is None else sorted(set(case_ids))
    lookups = lookups or Lookups(session)
    periods = lookups.periods
    found: list[Violation] = []
    for invariant in invariants:
        if invariant.kind == "open_step":
            found.extend(_open_step(session, invariant, only, periods))
        elif invariant.kind == "step_exists":
            found.extend(_step_exists(session, now, invariant, only))
        elif invariant.kind == "one_per_track":
            found.extend(_one_per_track(session, invariant, only, lookups))
        elif invariant.kind == "step_deadline":
            found.extend(_step_deadline(session, invariant, only))
    return sorted(found, key=lambda v: (v.case_id, v.invariant_id, v.kind))


def _applies(raw: Mapping[str, Any], only: list[int] | None) -> list[ColumnElement[bool]]:
    applies = raw.get("applies_to") or {}
    where: list[ColumnElement[bool]] = []
    if "status" in applies:
        where.append(Case.status.in_(applies["status"]))
    if applies.get("has_risk_level") is True:
        where.append(Case.risk_level.is_not(None))
    elif applies.get("has_risk_level") is False:
        where.append(Case.risk_level.is_(None))
    if "levels" in applies:
        where.append(Case.risk_level.in_(applies["levels"]))
    if only is not None:
        where.append(Case.id.in_(only))
    return where


class _Periods:
    """The periods the newest version of a decision gives per level: evaluated once per version and level."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._url = str(session.get_bind().engine.url)
        self._versions: dict[str, int | None] = {}

    def of(self, decision: str, output: str, input_name: str, level: str) -> timedelta | None:
        if decision not in self._versions:
            self._versions[decision] = self._session.execute(
                select(Definition.id).where(Definition.kind == "decision", Definition.key == decision)
                .order_by(Definition.version.desc()).limit(1)
            ).scalar_one_or_none()
        definition_id = self._versions[decision]
        if definition_id is None:
            raise NotFoundError(f"no deployed decision named {decision!r}")
        key = (self._url, definition_id, output, input_name, level)
        if key not in DECISION_PERIODS:
            DECISION_PERIODS[key] = self._evaluate(definition_id, decision, output, input_name, level)
        return DECISION_PERIODS[key]

    def _evaluate(self, definition_id: int, decision: str, output: str, input_name: str, level: str
                  ) -> timedelta | None:
        source = self._session.execute(select(Definition.source).where(Definition.id == definition_id)).scalar_one()
        value = spiff.evaluate_decision(source, decision, {input_name: level}).get(output)
        if value in (None, ""):
            return None  # no rule for this level: the bound does not apply
        try:
            return parse_duration(value)
        except (TypeError, ValueError) as exc:
            raise ExecutionError(f"decision {decision} gave {value!r} for {level!r}: {exc}") from exc


def _duration(raw: Mapping[str, Any], key: str) -> timedelta:
    return parse_duration(raw[key]) if key in raw else timedelta(0)


def _level(level: str | None) -> str:
    return level or "—"


def _open_step(session: Session, invariant: Invariant, only: list[int] | None, periods: _Periods) -> list[Violation]:
    raw = invariant.raw
    steps = list(raw["steps"])
    bounds = list(raw.get("due_by") or [])
    names = sorted({b["after_fact"] for b in bounds} | {b["only_if_after_fact"] for b in bounds
                                                          if "only_if_after_fact" in b})
    open_steps = (
        select(OpenTask.case_id, func.min(OpenTask.due_at).label("due"), func.count().label("n"))
        .where(OpenTask.element_id.in_(steps)).group_by(OpenTask.case_id)
    )
    if only is not None:
        open_steps = open_steps.where(OpenTask.case_id.in_(only))
    agg = open_steps.subquery()
    tolerance = _duration(raw, "tolerance")
    facts_sql = {name: Case.facts[name].as_string() for name in names}
    # Only the cases that may be in violation come back: no open step, or (with bounds) an open step
    # due after a bound as SQL computes it; each is then checked exactly below.
    suspect: ColumnElement[bool] = agg.c.n.is_(None)
    if bounds:
        levels = session.execute(select(Case.risk_level).distinct().where(*_applies(raw, only))).scalars().all()
        suspect = or_(suspect, *(_late_in_sql(session, bound, facts_sql, agg.c.due, levels, tolerance, periods)
                                 for bound in bounds))
    rows = session.connection().execute(
        select(Case.id, Case.reference, Case.risk_level, agg.c.due, agg.c.n,
               *(facts_sql[name].label(f"f{i}") for i, name in enumerate(names)))
        .outerjoin(agg, agg.c.case_id == Case.id).where(*_applies(raw, only), suspect)
    ).all()
    repairable = "repair" in raw
    found = []
    for row in rows:
        level = row.risk_level
        if row.n is None:
            found.append(Violation(
                invariant.id, row.id, "missing",
                f"Caso {row.reference}: nivel {_level(level)} sin paso abierto de «{invariant.title}»",
                f"Case {row.reference}: level {_level(level)} with no open step of “{invariant.title_en}”",
                {"steps": steps, "level": level}, repairable))
            continue
        if not bounds or row.due is None:
            continue  # a step without a deadline is not judged late here (step_deadline says so)
        facts = {name: parse_when_or_none(row[5 + i]) for i, name in enumerate(names)}
        limit = _limit(bounds, facts, level, periods)
        if limit is None:
            continue
        limit += tolerance
        if row.due > limit:
            late = row.due - limit
            found.append(Violation(
                invariant.id, row.id, "late",
                f"Caso {row.reference}: nivel {_level(level)}, «{invariant.title}» vence {format_hours(late)} tarde",
                f"Case {row.reference}: level {_level(level)}, “{invariant.title_en}” is due {format_hours(late)} late",
                {"steps": steps, "level": level, "due_at": row.due.isoformat(), "limit": limit.isoformat(),
                 "late_s": int(late.total_seconds())}))
    return found


def _late_in_sql(
    session: Session, bound: Mapping[str, Any], facts: Mapping[str, ColumnElement[Any]], due: ColumnElement[Any],
    levels: Sequence[str | None], tolerance: timedelta, periods: _Periods,
) -> ColumnElement[bool]:
    """Return SQL telling whether the open step is due after this bound (plus tolerance): a prefilter."""
    if "period" in bound:
        by_level: dict[str | None, timedelta | None] = {None: parse_duration(bound["period"])}
    else:
        decision = bound["period_from_decision"]
        by_level = {level: periods.of(decision, bound.get("output", decision), bound.get("input", "level"), level)
                    for level in levels if level is not None}
    known = {level: period + tolerance for level, period in by_level.items() if period is not None}
    if not known:
        return false()
    start = facts[bound["after_fact"]]
    other = facts.get(bound.get("only_if_after_fact", ""))
    postgres = is_postgresql(session)
    if postgres:
        start_t: ColumnElement[Any] = cast(start, DateTime(timezone=True))
        due_t: ColumnElement[Any] = due
        other_t: ColumnElement[Any] | None = cast(other, DateTime(timezone=True)) if other is not None else None
        amounts: dict[str | None, Any] = known
    else:  # SQLite keeps times as text: compare them as Julian days
        start_t, due_t = func.julianday(start), func.julianday(due)
        other_t = func.julianday(other) if other is not None else None
        amounts = {level: period.total_seconds() / 86400 for level, period in known.items()}
    if None in amounts:
        amount: ColumnElement[Any] = literal(amounts[None])
    else:
        amount = case({level: literal(value) for level, value in amounts.items()}, value=Case.risk_level)
    condition = and_(start.is_not(None), due.is_not(None), due_t > start_t + amount)
    if other_t is not None:
        condition = and_(condition, or_(other_t.is_(None), start_t > other_t))
    return condition


def _limit(
    bounds: Sequence[Mapping[str, Any]], facts: Mapping[str, datetime | None], level: str | None, periods: _Periods,
) -> datetime | None:
    """Return the earliest applicable bound (a fact's time plus its period), or None if none applies."""
    limits = []
    for bound in bounds:
        start = facts.get(bound["after_fact"])
        if start is None:
            continue
        other_name = bound.get("only_if_after_fact")
        other = facts.get(other_name) if other_name else None
        if other is not None and start <= other:
            continue
        if "period" in bound:
            period: timedelta | None = parse_duration(bound["period"])
        else:
            if level is None:
                continue
            decision = bound["period_from_decision"]
            period = periods.of(decision, bound.get("output", decision), bound.get("input", "level"), level)
        if period is not None:
            limits.append(start + period)
    return min(limits) if limits else None


def _step_exists(session: Session, now: datetime, invariant: Invariant, only: list[int] | None) -> list[Violation]:
    raw = invariant.raw
    steps = list(raw["steps"])
    where = _applies(raw, only)
    where.append(Case.created_at < now - _duration(raw, "grace"))
    where.append(~exists().where(OpenTask.case_id == Case.id, OpenTask.element_id.in_(steps)))
    if raw.get("open_or_completed"):
        where.append(~exists().where(TaskEvent.action == "completed", TaskEvent.element_id.in_(steps),
                                     TaskEvent.case_id == Case.id))
    rows = session.execute(select(Case.id, Case.reference).where(*where)).all()
    return [Violation(invariant.id, case_id, "missing", f"Caso {reference}: sin «{invariant.title}»",
                      f"Case {reference}: no “{invariant.title_en}”", {"steps": steps}, "repair" in raw)
            for case_id, reference in rows]


def process_tracks(session: Session) -> dict[str, str]:
    """Return the track the newest version of each process declares on its start event (if any)."""
    newest = (select(Definition.key, func.max(Definition.version).label("v"))
              .where(Definition.kind == "process").group_by(Definition.key).subquery())
    ids = session.execute(
        select(Definition.id).join(newest, (Definition.key == newest.c.key) & (Definition.version == newest.c.v))
        .where(Definition.kind == "process")
    ).scalars().all()
    tracks = {}
    for definition_id in ids:
        process = runnable(session, definition_id)
        track = process.properties.start.track
        if track:
            tracks[process.key] = track
    return tracks


def track_column(session: Session) -> tuple[ColumnElement[Any] | None, dict[str, str]]:
    """Return the SQL expression of an instance's track: its column, else (rows started before the tracks
    existed, whose column is empty) the track its process declares now."""
    column: ColumnElement[Any] = ProcessInstance.track.expression
    tracks = process_tracks(session)
    if not tracks:
        return column, tracks
    return func.coalesce(column, case(tracks, value=ProcessInstance.process_key)), tracks


def _one_per_track(session: Session, invariant: Invariant, only: list[int] | None, lookups: Lookups
                   ) -> list[Violation]:
    track, _ = lookups.tracks(session)
    if track is None:
        return []
    where = [ProcessInstance.status == "running", track.is_not(None)]
    if "tracks" in invariant.raw:
        where.append(track.in_(invariant.raw["tracks"]))
    if only is not None:
        where.append(ProcessInstance.case_id.in_(only))
    rows = session.execute(
        select(ProcessInstance.case_id, track.label("track"), func.count().label("n"),
               func.min(ProcessInstance.id), func.max(ProcessInstance.id))
        .where(*where).group_by(ProcessInstance.case_id, track).having(func.count() > 1)
    ).all()
    references = _references(session, {row.case_id for row in rows})
    return [Violation(
        invariant.id, row.case_id, "duplicate",
        f"Caso {references[row.case_id]}: {row.n} procesos en curso de la línea {row.track}",
        f"Case {references[row.case_id]}: {row.n} running processes of the track {row.track}",
        {"track": row.track, "running": row.n, "instances": [row[3], row[4]]}) for row in rows]


def _step_deadline(session: Session, invariant: Invariant, only: list[int] | None) -> list[Violation]:
    raw = invariant.raw
    within = parse_duration(raw["due_within_of_creation"])
    if is_postgresql(session):
        beyond_sql: ColumnElement[bool] = OpenTask.due_at > OpenTask.created_at + literal(within)
    else:  # SQLite keeps times as text: compare them as Julian days
        beyond_sql = (func.julianday(OpenTask.due_at)
                      > func.julianday(OpenTask.created_at) + within.total_seconds() / 86400)
    where = [OpenTask.element_id.in_(list(raw["steps"])), *_applies(raw, only),
             or_(OpenTask.due_at.is_(None), beyond_sql)]
    rows = session.execute(
        select(OpenTask.id, OpenTask.case_id, OpenTask.element_id, OpenTask.created_at, OpenTask.due_at,
               Case.reference).join(Case, Case.id == OpenTask.case_id).where(*where).order_by(OpenTask.id)
    ).all()
    found: dict[int, Violation] = {}
    for row in rows:
        if row.case_id in found or (row.due_at is not None and row.due_at - row.created_at <= within):
            continue
        after = None if row.due_at is None else format_hours(row.due_at - row.created_at)
        beyond = "sin plazo" if after is None else f"{after} después de crearse"
        beyond_en = "has no deadline" if after is None else f"is due {after} after it was created"
        found[row.case_id] = Violation(
            invariant.id, row.case_id, "late",
            f"Caso {row.reference}: el paso {row.element_id} vence {beyond} (máximo {format_hours(within)})",
            f"Case {row.reference}: the step {row.element_id} {beyond_en} (at most {format_hours(within)})",
            {"step": row.element_id, "task_id": row.id,
             "due_at": row.due_at.isoformat() if row.due_at else None, "within_s": int(within.total_seconds())})
    return list(found.values())


def _references(session: Session, case_ids: set[int]) -> dict[int, str]:
    if not case_ids:
        return {}
    return {case_id: reference for case_id, reference in
            session.execute(select(Case.id, Case.reference).where(Case.id.in_(case_ids))).all()}
