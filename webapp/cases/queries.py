"""Case reads shared by the case page, the task page and the JSON API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from engine.definitions import runnable, start_form
from engine.models import Agency, Case, CaseParty, Definition, OpenTask, ProcessInstance, TaskEvent, UserAccount
from engine.persistence import load_run
from engine.timing import parse_when_or_none

# History entries a person reads in a timeline (engine bookkeeping such as "created" stays out).
TIMELINE_ACTIONS = ("case_opened", "completed", "cancelled", "timer_fired", "instance_started",
                    "instance_completed", "instance_cancelled", "process_scheduled", "assigned", "reminded",
                    "escalated", "level_changed", "case_transferred", "transferred", "invariant_violated")


@dataclass(frozen=True)
class OpenStep:
    """A step waiting for an agency."""

    task_id: int
    version: int
    element_id: str
    name: str
    agency_id: int | None
    agency_name: str | None
    agency_kind: str | None
    assignee_id: int | None
    assignee_name: str | None
    due_at: datetime | None
    visible_from: datetime
    overdue: bool
    form: str | None

    @property
    def agency_group(self) -> str:
        """Group steps by agency on the case page; a step no agency of the territory can do groups under ""."""
        return self.agency_name or ""


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the case's history."""

    at: datetime
    action: str
    element_id: str | None
    step: str | None
    agency_name: str | None
    actor_name: str | None
    due_at: datetime | None
    on_time: bool | None
    # Reminders and escalations: who was told (a notification kind: reminder, agency, supervisor, coordinator).
    level: str | None = None
    # The levels of a level change (from, to); None for other entries.
    levels: tuple[str | None, str | None] | None = None


@dataclass(frozen=True)
class Summary:
    """What any agency allowed to see the case may see (no identifying data)."""

    id: int
    reference: str
    territory_id: int
    territory: str
    status: str
    risk_level: str | None
    computed_level: str | None
    level_rule: str | None
    risk_score: int | None
    risk_reasons: list[str]
    raise_reason: str | None
    especial_relevancia: bool
    minors_at_risk: bool
    next_reassessment_due: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    open_steps: list[OpenStep]


@dataclass(frozen=True)
class DiagramState:
    """A running process of the case, its BPMN, and which elements are done, active or late."""

    instance_id: int
    process_key: str
    version: int
    source: str
    completed: list[str]
    active: list[str]
    overdue: list[str]


def open_steps(session: Session, case_id: int, now: datetime) -> list[OpenStep]:
    """List the open steps of a case with their agency, most urgent first."""
    rows = session.execute(
        select(OpenTask, Agency.name, UserAccount.display_name)
        .outerjoin(Agency, Agency.id == OpenTask.agency_id)
        .outerjoin(UserAccount, UserAccount.id == OpenTask.assignee_id)
        .where(OpenTask.case_id == case_id)
        .order_by(OpenTask.due_at.is_(None), OpenTask.due_at, OpenTask.id)
    ).all()
    return [
        OpenStep(t.id, t.version, t.element_id, t.name, t.agency_id, agency, t.agency_kind, t.assignee_id, assignee,
                 t.due_at, t.visible_from, t.due_at is not None and t.due_at < now, t.form)
        for t, agency, assignee in rows
    ]


def summary(session: Session, case: Case, now: datetime) -> Summary:
    """Summarise a case: status, level and why, next re-assessment, open steps."""
    facts: dict[str, Any] = case.facts or {}
    return Summary(
        id=case.id, reference=case.reference, territory_id=case.territory_id, territory=case.territory.name,
        status=case.status, risk_level=case.risk_level, computed_level=facts.get("computed_level"),
        level_rule=facts.get("level_rule"), risk_score=facts.get("risk_score"),
        risk_reasons=list(facts.get("risk_reasons") or []), raise_reason=facts.get("raise_reason"),
        especial_relevancia=bool(facts.get("especial_relevancia")), minors_at_risk=bool(facts.get("minors_at_risk")),
        next_reassessment_due=parse_when_or_none(facts.get("next_reassessment_due")),
        created_at=case.created_at, updated_at=case.updated_at, version=case.version,
        open_steps=open_steps(session, case.id, now),
    )


def timeline(session: Session, case_id: int, *, limit: int | None = None) -> list[TimelineEntry]:
    """Return the case's history, newest first: who did what, which agency, when, on time or late."""
    actor = aliased(UserAccount)
    query = (
        select(TaskEvent, Agency.name, actor.display_name)
        .outerjoin(Agency, Agency.id == TaskEvent.agency_id)
        .outerjoin(actor, actor.id == TaskEvent.actor_id)
        .where(TaskEvent.case_id == case_id, TaskEvent.action.in_(TIMELINE_ACTIONS))
        .order_by(TaskEvent.at.desc(), TaskEvent.id.desc())
    )
    if limit:
        query = query.limit(limit)
    entries = []
    for event, agency, actor_name in session.execute(query).all():
        on_time = None
        if event.action == "completed" and event.due_at is not None:
            on_time = event.at <= event.due_at
        data = event.data or {}
        level = data.get("level") if event.action in ("reminded", "escalated") else None
        levels = (data.get("from"), data.get("to")) if event.action == "level_changed" else None
        entries.append(TimelineEntry(event.at, event.action, event.element_id, event.name, agency, actor_name,
                                     event.due_at, on_time, level, levels))
    return entries


def diagrams(session: Session, case_id: int, now: datetime) -> list[DiagramState]:
    """Return each running process of the case with the state of its elements."""
    instances = session.execute(
        select(ProcessInstance, Definition.version, Definition.source)
        .join(Definition, Definition.id == ProcessInstance.definition_id)
        .where(ProcessInstance.case_id == case_id, ProcessInstance.status == "running")
        .order_by(ProcessInstance.id)
    ).all()
    result = []
    for instance, version, source in instances:
        run, _ = load_run(session, instance)
        tasks = session.execute(select(OpenTask).where(OpenTask.instance_id == instance.id)).scalars().all()
        result.append(DiagramState(
            instance.id, instance.process_key, version, source, run.completed_elements(),
            sorted({t.element_id for t in tasks}),
            sorted({t.element_id for t in tasks if t.due_at is not None and t.due_at < now}),
        ))
    return result


@dataclass(frozen=True)
class StartRecord:
    """What a person recorded when starting a process of the case (the detection, an incident)."""

    at: datetime
    title: str
    agency_name: str | None
    fields: list[tuple[str, Any]]  # (label, value): value is a bool, a list of labels or a text


def start_records(session: Session, case_id: int) -> list[StartRecord]:
    """Return the start forms recorded in the case (its detection first), labelled by their form version."""
    rows = session.execute(
        select(TaskEvent, ProcessInstance.definition_id, Agency.name)
        .join(ProcessInstance, ProcessInstance.id == TaskEvent.instance_id)
        .outerjoin(Agency, Agency.id == TaskEvent.agency_id)
        .where(TaskEvent.case_id == case_id, TaskEvent.action == "form_submitted")
        .order_by(TaskEvent.at, TaskEvent.id)
    ).all()
    records = []
    for event, definition_id, agency_name in rows:
        form = start_form(session, runnable(session, definition_id))
        data = event.data or {}
        if form is None:
            continue
        properties = form.schema.get("properties", {})
        fields: list[tuple[str, Any]] = []
        for name in form.ui.get("order", list(properties)):
            if name not in data or name not in properties or data[name] in (None, ""):
                continue
            fields.append((properties[name].get("title", name), _labelled(properties[name], data[name])))
        records.append(StartRecord(event.at, form.title or event.name or "", agency_name, fields))
    return records


def _labelled(prop: dict[str, Any], value: Any) -> Any:
    """Show a choice by its title (lists of choices too); booleans, numbers and texts as they are."""
    choices = {option.get("const"): option.get("title") for option in prop.get("oneOf", [])}
    choices.update({option.get("const"): option.get("title")
                    for option in (prop.get("items") or {}).get("oneOf", [])})
    if isinstance(value, list):
        return [choices.get(item, item) for item in value]
    if isinstance(value, bool):
        return value
    return choices.get(value, value)


def parties(session: Session, case_id: int) -> dict[str, dict[str, Any]]:
    """Return the identifying data of victim and aggressor (only for those allowed to see it)."""
    rows = session.execute(select(CaseParty).where(CaseParty.case_id == case_id)).scalars()
    return {row.role: dict(row.identity) for row in rows}
