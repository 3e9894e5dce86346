"""Reads of the Mesa de Coordinación: who sits at it, its meetings, the facts its agenda rules use, summaries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, union_all
from sqlalchemy.orm import Session

from engine.levels import current_levels
from engine.models import (
    Agency,
    AgendaItem,
    Agreement,
    Attendance,
    Case,
    CaseTransfer,
    Meeting,
    MeetingNote,
    Mesa,
    MesaMember,
    MinutesVersion,
    OpenTask,
    ProcessInstance,
    TaskEvent,
    Territory,
    UserAccount,
)
from engine.timing import parse_when_or_none
from webapp.access import can_see_case, can_see_identity
from webapp.auth.principal import ROLE_PROFESSIONAL, ROLE_SUPERVISOR, Principal
from webapp.cases.queries import OpenStep, Summary, parties, summary
from webapp.mesa.agenda import REASONS, AgendaEntry, AgendaFacts, build_agenda

FOLLOWED = ("active", "supervised_inactivation")  # cases the Mesa follows (inactive and closed ones rest)
AGREEMENT_PROCESS = "agreement"
INACTIVATION_PROCESS = "inactivation"
INACTIVATION_STEPS = ("ordinary_inactivation", "supervised_inactivation_review")
# What proposes an extraordinary meeting: a new incident, or a complaint (the police report step).
COMPLAINT_STEPS = ("police_report_to_court", "incident_report_to_court")  # the second: versions before the tracks
COORDINATOR, MEMBER = "coordinator", "member"


# --- Who ----------------------------------------------------------------------------------------
def role_in(session: Session, principal: Principal, mesa: Mesa) -> str | None:
    """Return the principal's role at the Mesa: coordinator, member (a representative) or None.

    The coordinators are every professional or supervisor of the territory's coordination agency.
    A member agency is represented by its named representative and, standing in, its supervisors.
    """
    if principal.agency_id is None or not ({ROLE_PROFESSIONAL, ROLE_SUPERVISOR} & principal.roles):
        return None
    if principal.agency_id == mesa.coordinator_agency_id:
        return COORDINATOR
    seat = session.execute(select(MesaMember).where(MesaMember.mesa_id == mesa.id,
                                                    MesaMember.agency_id == principal.agency_id)).scalar_one_or_none()
    if seat is not None and (seat.representative_id == principal.user_id or principal.has_role(ROLE_SUPERVISOR)):
        return MEMBER
    return None


def mesas_of(session: Session, principal: Principal) -> list[tuple[Mesa, str]]:
    """Return the Mesas the principal coordinates or sits at, with her role at each."""
    if principal.agency_id is None:
        return []
    candidates = session.execute(
        select(Mesa).outerjoin(MesaMember, MesaMember.mesa_id == Mesa.id)
        .where(Mesa.active.is_(True),
               (Mesa.coordinator_agency_id == principal.agency_id) | (MesaMember.agency_id == principal.agency_id))
        .order_by(Mesa.name)
    ).scalars().unique().all()
    return [(mesa, role) for mesa in candidates if (role := role_in(session, principal, mesa))]


def mesa_of_territory(session: Session, territory_id: int) -> Mesa | None:
    """Return the Mesa of a territory, if it has one."""
    return session.execute(select(Mesa).where(Mesa.territory_id == territory_id)).scalar_one_or_none()


@dataclass(frozen=True)
class Seat:
    """A member agency of the Mesa and its representative."""

    agency_id: int
    agency: str
    representative_id: int | None
    representative: str | None


def seats(session: Session, mesa: Mesa) -> list[Seat]:
    """List the member agencies of a Mesa with their representatives, by agency name."""
    rows = session.execute(
        select(MesaMember.agency_id, Agency.name, MesaMember.representative_id, UserAccount.display_name)
        .join(Agency, Agency.id == MesaMember.agency_id)
        .outerjoin(UserAccount, UserAccount.id == MesaMember.representative_id)
        .where(MesaMember.mesa_id == mesa.id).order_by(Agency.name)
    ).all()
    return [Seat(*row) for row in rows]


def agency_members(session: Session, agency_ids: list[int]) -> dict[int, list[tuple[int, str]]]:
    """Return the active members of each agency (id, name), for choosing representatives."""
    found: dict[int, list[tuple[int, str]]] = {agency_id: [] for agency_id in agency_ids}
    for user_id, name, agency_id in session.execute(
        select(UserAccount.id, UserAccount.display_name, UserAccount.agency_id)
        .where(UserAccount.agency_id.in_(agency_ids), UserAccount.active.is_(True)).order_by(UserAccount.display_name)
    ).all():
        found[int(agency_id or 0)].append((user_id, name))
    return found


# --- Meetings -----------------------------------------------------------------------------------
def meetings(session: Session, mesa: Mesa) -> list[Meeting]:
    """List a Mesa's meetings, the latest first."""
    return list(session.execute(
        select(Meeting).where(Meeting.mesa_id == mesa.id).order_by(Meeting.scheduled_at.desc(), Meeting.id.desc())
    ).scalars())


def previous_meeting(session: Session, meeting: Meeting) -> Meeting | None:
    """Return the last meeting held (closed) before this one."""
    return session.execute(
        select(Meeting).where(Meeting.mesa_id == meeting.mesa_id, Meeting.status == "closed", Meeting.id != meeting.id,
                              Meeting.scheduled_at <= meeting.scheduled_at)
        .order_by(Meeting.closed_at.desc()).limit(1)
    ).scalar_one_or_none()


def agenda_since(session: Session, meeting: Meeting, mesa: Mesa) -> datetime:
    """Return when "since the previous meeting" starts: its closing, or one interval before this meeting."""
    previous = previous_meeting(session, meeting)
    if previous is not None and previous.closed_at is not None:
        return previous.closed_at
    return meeting.scheduled_at - timedelta(days=mesa.meeting_interval_days)


def last_held(session: Session, mesa: Mesa) -> datetime | None:
    """Return when the Mesa last met (the latest opening of a meeting), if ever."""
    return session.execute(
        select(Meeting.opened_at).where(Meeting.mesa_id == mesa.id, Meeting.opened_at.is_not(None))
        .order_by(Meeting.opened_at.desc()).limit(1)
    ).scalar_one_or_none()


def next_planned(session: Session, mesa: Mesa, kind: str | None = None) -> Meeting | None:
    """Return the Mesa's earliest planned (or open) meeting, optionally of one kind."""
    query = select(Meeting).where(Meeting.mesa_id == mesa.id, Meeting.status.in_(("planned", "open")))
    if kind:
        query = query.where(Meeting.kind == kind)
    return session.execute(query.order_by(Meeting.scheduled_at, Meeting.id).limit(1)).scalar_one_or_none()


# --- Agenda facts -------------------------------------------------------------------------------
def agenda_facts(session: Session, mesa: Mesa, meeting: Meeting, now: datetime) -> AgendaFacts:
    """Read what the agenda rules need for the followed cases of the Mesa's territory."""
    since = agenda_since(session, meeting, mesa)
    in_scope = (Case.territory_id == mesa.territory_id) & Case.status.in_(FOLLOWED)
    cases = session.execute(select(Case.id, Case.reference, Case.risk_level, Case.created_at).where(in_scope)).all()
    levels = {case_id: level for case_id, _, level, _ in cases}
    ids = set(levels)
    overdue_steps = set(session.execute(
        select(OpenTask.case_id).join(ProcessInstance, ProcessInstance.id == OpenTask.instance_id)
        .join(Case, Case.id == OpenTask.case_id)
        .where(in_scope, OpenTask.due_at < now, ProcessInstance.process_key != AGREEMENT_PROCESS)
    ).scalars())
    changed = {case_id for case_id, data in session.execute(
        select(TaskEvent.case_id, TaskEvent.data).join(Case, Case.id == TaskEvent.case_id)
        .where(in_scope, TaskEvent.action == "level_changed", TaskEvent.at > since, TaskEvent.at <= now)
    ).all() if (data or {}).get("from")}  # a first assessment is not a change of level
    inactivation = set(session.execute(
        select(OpenTask.case_id).join(Case, Case.id == OpenTask.case_id)
        .where(in_scope, OpenTask.element_id.in_(INACTIVATION_STEPS))
    ).scalars()) | set(session.execute(
        select(ProcessInstance.case_id).join(Case, Case.id == ProcessInstance.case_id)
        .where(in_scope, ProcessInstance.process_key == INACTIVATION_PROCESS, ProcessInstance.status == "running")
    ).scalars())
    open_agreements: set[int] = set()
    overdue_agreements: set[int] = set()
    for case_id, due_at in session.execute(
        select(Agreement.case_id, OpenTask.due_at)
        .join(ProcessInstance, ProcessInstance.id == Agreement.instance_id)
        .outerjoin(OpenTask, OpenTask.instance_id == ProcessInstance.id)
        .join(Case, Case.id == Agreement.case_id)
        .where(in_scope, ProcessInstance.status == "running")
    ).all():
        open_agreements.add(case_id)
        if due_at is not None and due_at < now:
            overdue_agreements.add(case_id)
    pinned: dict[int, str] = dict(session.execute(
        select(AgendaItem.case_id, func.coalesce(AgendaItem.pinned, "")).join(Case, Case.id == AgendaItem.case_id)
        .where(AgendaItem.meeting_id == meeting.id, AgendaItem.pinned.is_not(None),
               Case.territory_id == mesa.territory_id)
    ).all())
    references = {case_id: reference for case_id, reference, _, _ in cases}
    missing = set(pinned) - ids
    if missing:  # a case added by hand may rest (inactive): it is still on the agenda
        for case_id, reference, level in session.execute(
                select(Case.id, Case.reference, Case.risk_level).where(Case.id.in_(missing))).all():
            references[case_id] = reference
            levels[case_id] = level
    return AgendaFacts(
        levels=levels, references=references,
        new=frozenset(case_id for case_id, _, _, created in cases if since < created <= now),
        overdue_steps=frozenset(overdue_steps & ids), level_changed=frozenset(changed & ids),
        inactivation=frozenset(inactivation & ids), open_agreements=frozenset(open_agreements & ids),
        overdue_agreements=frozenset(overdue_agreements & ids), pinned=pinned, scale=current_levels(session),
    )


def agenda_entries(session: Session, mesa: Mesa, meeting: Meeting, now: datetime) -> list[AgendaEntry]:
    """Return the meeting's agenda: computed live while planned, as stored (and refreshed) once open."""
    if meeting.status == "planned":
        return build_agenda(agenda_facts(session, mesa, meeting, now))
    items = session.execute(select(AgendaItem, Case.risk_level, Case.reference)
                            .join(Case, Case.id == AgendaItem.case_id)
                            .where(AgendaItem.meeting_id == meeting.id)).all()
    facts = AgendaFacts(levels={item.case_id: level for item, level, _ in items},
                        references={item.case_id: ref for item, _, ref in items}, scale=current_levels(session))
    entries = [AgendaEntry(item.case_id, tuple(sorted({*(item.reasons or []), *([item.pinned] if item.pinned else [])},
                                                      key=_reason_order)))
               for item, _, _ in items]
    return sorted(entries, key=lambda e: (-_rank(facts, e.case_id), -len(e.reasons), facts.references[e.case_id]))


def _reason_order(reason: str) -> int:
    return REASONS.index(reason) if reason in REASONS else len(REASONS)


def _rank(facts: AgendaFacts, case_id: int) -> int:
    return facts.scale.rank(facts.levels.get(case_id))


# --- Extraordinary meetings ---------------------------------------------------------------------
@dataclass(frozen=True)
class Proposal:
    """A new incident or complaint in a case of the territory since the Mesa last met."""

    case_id: int
    reference: str
    trigger: str  # incident | complaint
    at: datetime


def proposals(session: Session, mesa: Mesa, now: datetime) -> list[Proposal]:
    """Derive the extraordinary meetings the system proposes from the task history (newest first).

    An incident started, or a complaint registered (the police report steps), for a followed case of
    the territory since the Mesa last met; a case already on a planned or open meeting's agenda
    (convened for it, or added by hand) needs no proposal.
    """
    since = last_held(session, mesa) or now - timedelta(days=mesa.meeting_interval_days)
    in_scope = (Case.territory_id == mesa.territory_id) & Case.status.in_(FOLLOWED)
    recent = (TaskEvent.at > since) & (TaskEvent.at <= now)
    # Two selects, each a range of the (action, element_id, at) index: process starts carry no element.
    started = (TaskEvent.action == "instance_started") & TaskEvent.element_id.is_(None)
    complained = (TaskEvent.action == "completed") & TaskEvent.element_id.in_(COMPLAINT_STEPS)
    columns = (TaskEvent.case_id, Case.reference, TaskEvent.action, TaskEvent.element_id, TaskEvent.data,
               TaskEvent.at, TaskEvent.id)
    events = union_all(*(select(*columns).join(Case, Case.id == TaskEvent.case_id).where(in_scope, recent, kind)
                         for kind in (started, complained))).subquery()
    rows = [row[:6] for row in session.execute(
        select(events).order_by(events.c.at.desc(), events.c.id.desc())).all()]
    scheduled = set(session.execute(
        select(AgendaItem.case_id).join(Meeting, Meeting.id == AgendaItem.meeting_id)
        .where(Meeting.mesa_id == mesa.id, Meeting.status.in_(("planned", "open")), AgendaItem.pinned.is_not(None))
    ).scalars())
    found: dict[int, Proposal] = {}
    for case_id, reference, action, _element, data, at in rows:
        if action == "instance_started" and (data or {}).get("process") != "incident":
            continue
        if case_id in scheduled or case_id in found:
            continue
        found[case_id] = Proposal(case_id, reference, "incident" if action == "instance_started" else "complaint", at)
    return list(found.values())


# --- Summaries ----------------------------------------------------------------------------------
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


# --- Minutes ------------------------------------------------------------------------------------
def attendance_of(session: Session, meeting: Meeting) -> dict[int, tuple[str, str | None]]:
    """Return the recorded attendance of a meeting: agency id -> (status, attendee)."""
    return {agency_id: (status, attendee) for agency_id, status, attendee in session.execute(
        select(Attendance.agency_id, Attendance.status, Attendance.attendee).where(Attendance.meeting_id == meeting.id)
    ).all()}


def minutes_of(session: Session, meeting: Meeting) -> MinutesVersion | None:
    """Return the closed minutes of a meeting, if it is closed."""
    return session.execute(select(MinutesVersion).where(MinutesVersion.meeting_id == meeting.id)).scalar_one_or_none()


def user_names(session: Session, user_ids: list[int | None]) -> dict[int, str]:
    """Return the display names of some users."""
    ids = [user_id for user_id in user_ids if user_id is not None]
    if not ids:
        return {}
    return dict(session.execute(select(UserAccount.id, UserAccount.display_name)
                                .where(UserAccount.id.in_(ids))).all())


def territory_name(session: Session, territory_id: int) -> str:
    """Return a territory's name."""
    return session.execute(select(Territory.name).where(Territory.id == territory_id)).scalar_one()


def territory_region(session: Session, territory_id: int) -> str | None:
    """Return the region whose holidays a territory keeps (None: national holidays only)."""
    return session.execute(select(Territory.region).where(Territory.id == territory_id)).scalar_one()


# --- Transfers ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TransferRow:
    """A transfer request, incoming or outgoing."""

    id: int
    case_id: int
    reference: str
    from_territory: str
    to_territory: str
    status: str
    reason: str
    requested_at: datetime
    decided_at: datetime | None


def transfers_of(session: Session, mesa: Mesa) -> list[TransferRow]:
    """List the transfers from or to the Mesa's territory, the latest first."""
    source = select(Territory.id, Territory.name).subquery()
    target = select(Territory.id, Territory.name).subquery()
    rows = session.execute(
        select(CaseTransfer, Case.reference, source.c.name, target.c.name)
        .join(Case, Case.id == CaseTransfer.case_id)
        .join(source, source.c.id == CaseTransfer.from_territory_id)
        .join(target, target.c.id == CaseTransfer.to_territory_id)
        .where((CaseTransfer.from_territory_id == mesa.territory_id)
               | (CaseTransfer.to_territory_id == mesa.territory_id))
        .order_by(CaseTransfer.requested_at.desc(), CaseTransfer.id.desc())
    ).all()
    return [TransferRow(t.id, t.case_id, reference, origin, destination, t.status, t.reason, t.requested_at,
                        t.decided_at) for t, reference, origin, destination in rows]


def followed_cases(session: Session, mesa: Mesa) -> list[tuple[int, str]]:
    """List the followed cases of the Mesa's territory (id, reference), by reference."""
    return [(case_id, reference) for case_id, reference in session.execute(
        select(Case.id, Case.reference).where(Case.territory_id == mesa.territory_id, Case.status.in_(FOLLOWED))
        .order_by(Case.reference)
    ).all()]


def other_mesas(session: Session, mesa: Mesa) -> list[tuple[int, str]]:
    """List the other active Mesas (id, name) a case can be transferred to."""
    return [(mesa_id, name) for mesa_id, name in session.execute(
        select(Mesa.id, Mesa.name).where(Mesa.id != mesa.id, Mesa.active.is_(True)).order_by(Mesa.name)
    ).all()]


def snapshot_detail(content: dict[str, Any]) -> list[int]:
    """Return the case ids a closed minutes snapshot is about (for the audit log)."""
    return sorted({int(item["case_id"]) for item in content.get("items", [])})
