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

This module reads the declarations (parsing, validating, the deployed ones); `engine.violations`
finds the cases breaking them and `engine.repairs` starts the repair an invariant names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.durations import parse_duration
from engine.errors import Problem
from engine.models import Definition
from engine.models.case import CASE_STATUSES

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
# (database, decision version, output, input, level) -> period, filled by `engine.violations` when it
# evaluates a `period_from_decision`; kept here so one call forgets every cache (versions never change).
DECISION_PERIODS: dict[tuple[str, int, str, str, str], timedelta | None] = {}


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


def forget_cached_invariants() -> None:
    """Drop the parsed invariants and periods kept per deployed version (a wiped database)."""
    _CACHE.clear()
    DECISION_PERIODS.clear()
