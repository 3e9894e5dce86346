"""What a meeting shows of each agenda case: its one-page summary for the viewer, and the Mesa's agreements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Agency, Agreement, Case, Meeting, MeetingNote, OpenTask, ProcessInstance, TaskEvent
from engine.timing import parse_when_or_none
from webapp.access import can_see_case, can_see_identity
from webapp.auth.principal import Principal
from webapp.cases.queries import OpenStep, Summary, parties, summary
from webapp.mesa.agenda import AgendaEntry


@dataclass(frozen=True)
class AgreementRow:
    """An agreement with where it stands: open (overdue or not), done or cancelled."""

    id: int
    meeting_id: int
    case_id: int
    reference: str
    agency_id: int
    agency: str
    action: str
    due_at: datetime
    status: str  # open | done | cancelled
    overdue: bool
    task_id: int | None
    outcome: str | None


def agreement_rows(session: Session, now: datetime, *, meeting_id: int | None = None,
                   case_ids: list[int] | None = None, instance_id: int | None = None) -> list[AgreementRow]:
    """List agreements (of a meeting, of some cases, or carried by one instance) with their state."""
    query = (select(Agreement, Case.reference, Agency.name, ProcessInstance.status, OpenTask.id, OpenTask.due_at)
             .join(Case, Case.id == Agreement.case_id).join(Agency, Agency.id == Agreement.agency_id)
             .outerjoin(ProcessInstance, ProcessInstance.id == Agreement.instance_id)
             .outerjoin(OpenTask, OpenTask.instance_id == Agreement.instance_id))
    if meeting_id is not None:
        query = query.where(Agreement.meeting_id == meeting_id)
    if case_ids is not None:
        query = query.where(Agreement.case_id.in_(case_ids))
    if instance_id is not None:
        query = query.where(Agreement.instance_id == instance_id)
    rows = session.execute(query.order_by(Agreement.due_at, Agreement.id)).all()
    outcomes: dict[int | None, dict[str, Any] | None] = dict(session.execute(
        select(TaskEvent.instance_id, TaskEvent.data).where(
            TaskEvent.instance_id.in_([a.instance_id for a, *_ in rows if a.instance_id]),
            TaskEvent.action == "completed")
    ).all()) if rows else {}
    result = []
    for agreement, reference, agency, instance_status, task_id, task_due in rows:
        status = {"running": "open", "completed": "done"}.get(instance_status or "", "cancelled")
        outcome = (outcomes.get(agreement.instance_id) or {}).get("outcome") if status == "done" else None
        due = task_due or agreement.due_at
        result.append(AgreementRow(agreement.id, agreement.meeting_id, agreement.case_id, reference,
                                   agreement.agency_id, agency, agreement.action, agreement.due_at, status,
                                   status == "open" and due < now, task_id, outcome))
    return result


@dataclass(frozen=True)
class ItemSummary:
    """The one-page summary of an agenda case, as this viewer may see it."""

    case_id: int
    reference: str
    reasons: tuple[str, ...]
    case: Summary
    victim: str | None  # only when the viewer's agency may see who she is
    identity_allowed: bool
    case_page: bool  # the viewer may open the full case page
    steps_by_agency: list[tuple[str, list[OpenStep]]]
    late_steps: list[OpenStep]
    last_assessment_at: datetime | None
    level_change: tuple[str | None, str | None] | None
    agreements: list[AgreementRow]
    note: str


def item_summaries(
    session: Session, principal: Principal, meeting: Meeting, entries: list[AgendaEntry], now: datetime,
    since: datetime,
) -> list[ItemSummary]:
    """Summarise each agenda case for the viewer: level and why, open and late steps, re-assessment, agreements."""
    if not entries:
        return []
    case_ids = [entry.case_id for entry in entries]
    cases = {case.id: case for case in session.execute(select(Case).where(Case.id.in_(case_ids))).scalars()}
    notes = dict(session.execute(select(MeetingNote.case_id, MeetingNote.text)
                                 .where(MeetingNote.meeting_id == meeting.id)).all())
    changes: dict[int, tuple[str | None, str | None]] = {}
    for case_id, data in session.execute(
        select(TaskEvent.case_id, TaskEvent.data).where(TaskEvent.case_id.in_(case_ids),
                                                        TaskEvent.action == "level_changed", TaskEvent.at > since)
        .order_by(TaskEvent.at, TaskEvent.id)
    ).all():
        before = changes.get(case_id, ((data or {}).get("from"), None))[0]
        changes[case_id] = (before, (data or {}).get("to"))
    agreements: dict[int, list[AgreementRow]] = {}
    for row in agreement_rows(session, now, case_ids=case_ids):
        if row.status == "open" or row.meeting_id == meeting.id:
            agreements.setdefault(row.case_id, []).append(row)
    result = []
    for entry in entries:
        case = cases[entry.case_id]
        allowed = can_see_identity(session, principal, case)
        victim = (parties(session, case.id).get("victim") or {}).get("name") if allowed else None
        info = summary(session, case, now)
        groups: dict[str, list[OpenStep]] = {}
        for step in info.open_steps:
            groups.setdefault(step.agency_name or "", []).append(step)
        change = changes.get(case.id)
        result.append(ItemSummary(
            case_id=case.id, reference=case.reference, reasons=entry.reasons, case=info, victim=victim,
            identity_allowed=allowed, case_page=can_see_case(session, principal, case.id),
            steps_by_agency=sorted(groups.items()), late_steps=[s for s in info.open_steps if s.overdue],
            last_assessment_at=parse_when_or_none((case.facts or {}).get("last_assessment_at")),
            level_change=change if change and change[0] else None,
            agreements=agreements.get(case.id, []), note=notes.get(case.id, ""),
        ))
    return result
