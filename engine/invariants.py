"""Invariants as data: what must always hold of every case, declared in `*.invariants.json`, checked by SQL.

Four kinds (README.md, "Garantías del protocolo"):

- `open_step`: every case matching `applies_to` has an open task at one of `steps`, and (with `due_by`)
  the earliest one is due no later than the earliest applicable bound (a fact's time plus a period,
  fixed or from a DMN decision on the case's level) plus `tolerance`. Violations: `missing`, `late`.
- `step_exists`: a case matching `applies_to`, older than `grace`, has an open task at one of `steps`
  or (with `open_or_completed`) completed one. Violation: `missing`.
- `one_per_track`: no case has two running instances of one track. Violation: `duplicate`.
- `step_deadline`: an open task at one of `steps` is due within `due_within_of_creation` of its
  creation. Violation: `late`.

Every check is one indexed statement over the open steps, the cases or the running instances; none
reads the history except `step_exists`, through the (action, element, case) index.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, DateTime, and_, case, cast, exists, false, func, literal, or_, select
from sqlalchemy.orm import Session

from engine import spiff
from engine.actor import Actor
from engine.db import is_postgresql
from engine.errors import ExecutionError, NotFoundError, Problem
from engine.models import Case, Definition, OpenTask, ProcessInstance, TaskEvent
from engine.models.case import CASE_STATUSES
from engine.sandbox import parse_duration
from engine.timing import parse_when_or_none

SUFFIX = ".invariants.json"
KINDS = ("open_step", "one_per_track", "step_exists", "step_deadline")
_COMMON = {"id", "kind", "title", "title_en", "description"}
FIELDS: dict[str, set[str]] = {
    "open_step": _COMMON | {"applies_to", "steps", "due_by", "tolerance", "repair"},
    "one_per_track": _COMMON | {"tracks"},
    "step_exists": _COMMON | {"applies_to", "steps", "open_or_completed", "grace", "repair"},
    "step_deadline": _COMMON | {"applies_to", "steps", "due_within_of_creation"},
}
_APPLIES_TO = {"status", "has_risk_level", "levels"}
_DUE_BY = {"after_fact", "period", "period_from_decision", "output", "input", "only_if_after_fact"}
_REPAIR = {"start_process", "data", "if_idle"}
_ID = re.compile(r"\A[a-z][a-z0-9_]{0,79}\Z")
_NAME = re.compile(r"\A[A-Za-z_][A-Za-z0-9_.-]{0,119}\Z")


@dataclass(frozen=True)
class Invariant:
    """One declared invariant: its id, kind, titles (Spanish, English) and the declaration as written."""

    id: str
    kind: str
    title: str
    title_en: str
    raw: dict[str, Any] = field(hash=False, compare=False)


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


# --- Parsing and validation -----------------------------------------------------------------------
def parse_invariants(file_name: str, content: bytes) -> tuple[list[Invariant], list[Problem]]:
    """Parse an invariants file; return the well-formed invariants and every problem, naming id and field."""
    try:
        raw = json.loads(content.decode("utf-8").removeprefix("\ufeff"))
    except (UnicodeDecodeError, ValueError) as exc:
        return [], [Problem(file=file_name, message=f"not a JSON file: {exc}")]
    if not isinstance(raw, dict) or not isinstance(raw.get("invariants"), list):
        return [], [Problem(file=file_name, message='expected an object {"invariants": [...]}')]
    problems = [Problem(file=file_name, message=f"unknown field {key!r} (only 'invariants')")
                for key in sorted(set(raw) - {"invariants"})]
    found: list[Invariant] = []
    seen: set[str] = set()
    for number, item in enumerate(raw["invariants"], start=1):
        invariant, item_problems = _parse_one(file_name, number, item)
        problems.extend(item_problems)
        if invariant is None:
            continue
        if invariant.id in seen:
            problems.append(Problem(file=file_name, element_id=invariant.id,
                                    message=f"invariant {invariant.id}: the id is used twice"))
            continue
        seen.add(invariant.id)
        if not item_problems:
            found.append(invariant)
    return found, problems


def _parse_one(file_name: str, number: int, item: Any) -> tuple[Invariant | None, list[Problem]]:
    if not isinstance(item, dict):
        return None, [Problem(file=file_name, message=f"invariant #{number}: expected an object")]
    ident = item.get("id")
    label = ident if isinstance(ident, str) and ident else f"#{number}"
    problems: list[Problem] = []

    def problem(where: str, message: str) -> None:
        problems.append(Problem(file=file_name, element_id=label if label != f"#{number}" else None,
                                message=f"invariant {label}: field {where!r}: {message}"))

    if not isinstance(ident, str) or not _ID.match(ident):
        problem("id", "required; lowercase letters, digits and '_'")
    kind = item.get("kind")
    if kind not in KINDS:
        problem("kind", f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        return None, problems
    for key in sorted(set(item) - FIELDS[kind]):
        problem(key, f"unknown field for kind {kind}")
    for key in ("title", "title_en"):
        if key in item and (not isinstance(item[key], str) or not item[key].strip()):
            problem(key, "must be a non-empty text")
    if not isinstance(item.get("title"), str):
        problem("title", "required: what the invariant guarantees, in Spanish")
    if kind != "one_per_track":
        _check_steps(item.get("steps"), problem)
    _check_applies_to(item.get("applies_to"), problem)
    for key in ("tolerance", "grace", "due_within_of_creation"):
        if key in item:
            _check_duration(item[key], key, problem)
    if kind == "step_deadline" and "due_within_of_creation" not in item:
        problem("due_within_of_creation", "required for kind step_deadline")
    if "open_or_completed" in item and not isinstance(item["open_or_completed"], bool):
        problem("open_or_completed", "must be true or false")
    if "tracks" in item and not _texts(item["tracks"]):
        problem("tracks", "must be a list of track names")
    if "due_by" in item:
        _check_due_by(item["due_by"], problem)
    if "repair" in item:
        _check_repair(item["repair"], problem)
    if not isinstance(ident, str):
        return None, problems
    title = str(item.get("title") or ident)
    return Invariant(ident, kind, title, str(item.get("title_en") or title), dict(item)), problems


def _texts(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def _check_steps(value: Any, problem: Any) -> None:
    if not _texts(value):
        problem("steps", "required: a non-empty list of step (user task) ids")


def _check_applies_to(value: Any, problem: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        problem("applies_to", "must be an object")
        return
    for key in sorted(set(value) - _APPLIES_TO):
        problem(f"applies_to.{key}", f"unknown field; expected {', '.join(sorted(_APPLIES_TO))}")
    if "status" in value:
        statuses = value["status"]
        if not _texts(statuses):
            problem("applies_to.status", "must be a non-empty list of case statuses")
        else:
            for status in statuses:
                if status not in CASE_STATUSES:
                    problem("applies_to.status", f"unknown case status {status!r}")
    if "has_risk_level" in value and not isinstance(value["has_risk_level"], bool):
        problem("applies_to.has_risk_level", "must be true or false")
    if "levels" in value and not _texts(value["levels"]):
        problem("applies_to.levels", "must be a non-empty list of risk level codes")


def _check_duration(value: Any, where: str, problem: Any) -> None:
    try:
        if parse_duration(value) < timedelta(0):
            problem(where, "must not be negative")
    except (TypeError, ValueError) as exc:
        problem(where, str(exc))


def _check_due_by(value: Any, problem: Any) -> None:
    if not isinstance(value, list) or not value:
        problem("due_by", "must be a non-empty list of bounds")
        return
    for number, bound in enumerate(value, start=1):
        where = f"due_by[{number}]"
        if not isinstance(bound, dict):
            problem(where, "must be an object")
            continue
        for key in sorted(set(bound) - _DUE_BY):
            problem(f"{where}.{key}", f"unknown field; expected {', '.join(sorted(_DUE_BY))}")
        for key in ("after_fact", "only_if_after_fact", "period_from_decision", "output", "input"):
            if key in bound and (not isinstance(bound[key], str) or not _NAME.match(bound[key])):
                problem(f"{where}.{key}", "must be a name (letters, digits, '_')")
        if "after_fact" not in bound:
            problem(f"{where}.after_fact", "required: the case fact the period counts from")
        if ("period" in bound) == ("period_from_decision" in bound):
            problem(where, "give exactly one of 'period' and 'period_from_decision'")
        if "period" in bound:
            _check_duration(bound["period"], f"{where}.period", problem)


def _check_repair(value: Any, problem: Any) -> None:
    if not isinstance(value, dict):
        problem("repair", "must be an object")
        return
    for key in sorted(set(value) - _REPAIR):
        problem(f"repair.{key}", f"unknown field; expected {', '.join(sorted(_REPAIR))}")
    if not isinstance(value.get("start_process"), str) or not _NAME.match(value["start_process"]):
        problem("repair.start_process", "required: the key of the process to start")
    if "data" in value and not isinstance(value["data"], dict):
        problem("repair.data", "must be an object")
    if "if_idle" in value and not isinstance(value["if_idle"], bool):
        problem("repair.if_idle", "must be true or false")


def check_references(
    file_name: str, invariants: Iterable[Invariant], *, steps: set[str], decisions: Mapping[str, set[str]],
) -> list[Problem]:
    """Find steps no process has as a user task, and decisions or outputs that do not exist."""
    problems: list[Problem] = []
    for invariant in invariants:
        for step in invariant.raw.get("steps") or []:
            if step not in steps:
                problems.append(Problem(
                    file=file_name, element_id=invariant.id,
                    message=f"invariant {invariant.id}: field 'steps': no deployed or deploying process has a "
                            f"user task {step!r}"))
        for number, bound in enumerate(invariant.raw.get("due_by") or [], start=1):
            decision = bound.get("period_from_decision")
            if decision is None:
                continue
            where = f"invariant {invariant.id}: field 'due_by[{number}].period_from_decision'"
            if decision not in decisions:
                problems.append(Problem(file=file_name, element_id=invariant.id,
                                        message=f"{where}: no decision {decision!r} is deployed or deploying"))
            elif bound.get("output", decision) not in decisions[decision]:
                problems.append(Problem(
                    file=file_name, element_id=invariant.id,
                    message=f"{where}: the decision has no output {bound.get('output', decision)!r} (it has "
                            f"{', '.join(sorted(decisions[decision])) or 'none'})"))
    return problems


# --- Reading the deployed invariants --------------------------------------------------------------
_CACHE: dict[tuple[str, tuple[int, ...]], list[Invariant]] = {}


def current_invariants(session: Session) -> list[Invariant]:
    """Return the invariants of the newest deployed version of every invariants file (cached per version)."""
    newest = (select(Definition.key, func.max(Definition.version).label("v"))
              .where(Definition.kind == "invariants").group_by(Definition.key).subquery())
    ids = tuple(sorted(session.execute(
        select(Definition.id).join(newest, (Definition.key == newest.c.key) & (Definition.version == newest.c.v))
        .where(Definition.kind == "invariants")
    ).scalars()))
    cache_key = (str(session.get_bind().engine.url), ids)
    if cache_key not in _CACHE:
        found: list[Invariant] = []
        for file_name, source in session.execute(
            select(Definition.file_name, Definition.source).where(Definition.id.in_(ids)).order_by(Definition.key)
        ).all():
            found.extend(parse_invariants(file_name, source.encode("utf-8"))[0])
        _CACHE[cache_key] = found
    return list(_CACHE[cache_key])


# --- Finding violations ---------------------------------------------------------------------------
def find_violations(
    session: Session, now: datetime, invariants: Sequence[Invariant], *, case_ids: Iterable[int] | None = None,
) -> list[Violation]:
    """Return every violation of the invariants at `now` (of some cases only, with `case_ids`), by case."""
    only = None if case_ids is None else sorted(set(case_ids))
    periods = _Periods(session)
    found: list[Violation] = []
    for invariant in invariants:
        if invariant.kind == "open_step":
            found.extend(_open_step(session, invariant, only, periods))
        elif invariant.kind == "step_exists":
            found.extend(_step_exists(session, now, invariant, only))
        elif invariant.kind == "one_per_track":
            found.extend(_one_per_track(session, invariant, only))
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


# (database, decision version, output, input, level) -> period: versions never change.
_PERIODS: dict[tuple[str, int, str, str, str], timedelta | None] = {}


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
        if key not in _PERIODS:
            _PERIODS[key] = self._evaluate(definition_id, decision, output, input_name, level)
        return _PERIODS[key]

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


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours <= 72:
        return f"{hours:.0f} h"
    return f"{hours / 24:.1f}".removesuffix(".0") + " d"


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
                f"Caso {row.reference}: nivel {_level(level)}, «{invariant.title}» vence {_hours(late)} tarde",
                f"Case {row.reference}: level {_level(level)}, “{invariant.title_en}” is due {_hours(late)} late",
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
    from engine.definitions import runnable  # engine.definitions imports this module (its caches)

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


def _track_column(session: Session) -> tuple[ColumnElement[Any] | None, dict[str, str]]:
    """Return the SQL expression of an instance's track: its column, else (rows started before the tracks
    existed, whose column is empty) the track its process declares now."""
    column: ColumnElement[Any] = ProcessInstance.track.expression
    tracks = process_tracks(session)
    if not tracks:
        return column, tracks
    return func.coalesce(column, case(tracks, value=ProcessInstance.process_key)), tracks


def _one_per_track(session: Session, invariant: Invariant, only: list[int] | None) -> list[Violation]:
    track, _ = _track_column(session)
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
        beyond = "sin plazo" if row.due_at is None else f"{_hours(row.due_at - row.created_at)} después de crearse"
        beyond_en = "has no deadline" if row.due_at is None else \
            f"is due {_hours(row.due_at - row.created_at)} after it was created"
        found[row.case_id] = Violation(
            invariant.id, row.case_id, "late",
            f"Caso {row.reference}: el paso {row.element_id} vence {beyond} (máximo {_hours(within)})",
            f"Case {row.reference}: the step {row.element_id} {beyond_en} (at most {_hours(within)})",
            {"step": row.element_id, "task_id": row.id,
             "due_at": row.due_at.isoformat() if row.due_at else None, "within_s": int(within.total_seconds())})
    return list(found.values())


def _references(session: Session, case_ids: set[int]) -> dict[int, str]:
    if not case_ids:
        return {}
    return {case_id: reference for case_id, reference in
            session.execute(select(Case.id, Case.reference).where(Case.id.in_(case_ids))).all()}


# --- Repairing ------------------------------------------------------------------------------------
def repair(
    session: Session, violation: Violation, invariants: Sequence[Invariant], now: datetime, actor: Actor,
) -> bool:
    """Apply the repair the invariant names, once: re-check under the case's lock; tell whether it was made.

    On PostgreSQL the case is locked with SKIP LOCKED: a case another worker holds is left to it
    (False). Under the lock the violation is looked for again, so a repair made meanwhile by another
    worker (or by an agency) is not made twice. `if_idle` repairs only when the process's track (or,
    without a track, the process itself) has nothing running.
    """
    invariant = next((i for i in invariants if i.id == violation.invariant_id), None)
    if invariant is None or not violation.repairable or "repair" not in invariant.raw:
        return False
    locked = lock_case_or_skip(session, violation.case_id)
    if locked is None:
        return False
    still = find_violations(session, now, [invariant], case_ids=[locked.id])
    if not any(v.kind == violation.kind for v in still):
        return False
    return apply_repair(session, invariant, locked, now, actor) is not None


def apply_repair(session: Session, invariant: Invariant, case: Case, now: datetime, actor: Actor
                 ) -> ProcessInstance | None:
    """Start the invariant's repair process for a case the caller locked and found in violation."""
    declared = invariant.raw["repair"]
    key = declared["start_process"]
    if declared.get("if_idle") and _busy(session, case.id, key):
        return None
    from engine.execution import start_process  # execution imports engine.definitions, which imports this module

    return start_process(session, case, key, dict(declared.get("data") or {}), now=now, actor=actor)


def lock_case_or_skip(session: Session, case_id: int) -> Case | None:
    """Load a case freshly and lock it; None when another transaction holds it (PostgreSQL, SKIP LOCKED).

    SQLite needs no row lock: every transaction already holds the write lock (BEGIN IMMEDIATE).
    """
    query = select(Case).where(Case.id == case_id).execution_options(populate_existing=True)
    if is_postgresql(session):
        query = query.with_for_update(skip_locked=True, of=Case)
    return session.execute(query).scalar_one_or_none()


def _busy(session: Session, case_id: int, process_key: str) -> bool:
    """Tell whether the process's track (or the process, if it declares none) runs in the case."""
    track_expr, tracks = _track_column(session)
    track = tracks.get(process_key) if tracks else process_tracks(session).get(process_key)
    where: list[ColumnElement[bool]] = [ProcessInstance.case_id == case_id, ProcessInstance.status == "running"]
    if track is not None and track_expr is not None:
        where.append(track_expr == track)
    else:
        where.append(ProcessInstance.process_key == process_key)
    return session.execute(select(ProcessInstance.id).where(*where).limit(1)).first() is not None


def forget_cached_invariants() -> None:
    """Drop the parsed invariants and periods kept per deployed version (a wiped database)."""
    _CACHE.clear()
    _PERIODS.clear()
