"""Reads of the Mesa de Coordinación: who sits at it, its meetings, the facts its agenda rules use, proposals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, union_all
from sqlalchemy.orm import Session

from engine.levels import current_levels
from engine.models import (
    Agency,
    AgendaItem,
    Agreement,
    Attendance,
    Case,
    Meeting,
    Mesa,
    MesaMember,
    OpenTask,
    ProcessInstance,
    TaskEvent,
    Territory,
    UserAccount,
)
from webapp.auth.principal import ROLE_PROFESSIONAL, ROLE_SUPERVISOR, Principal
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


# --- Minutes ------------------------------------------------------------------------------------
def attendance_of(session: Session, meeting: Meeting) -> dict[int, tuple[str, str | None]]:
    """Return the recorded attendance of a meeting: agency id -> (status, attendee)."""
    return {agency_id: (status, attendee) for agency_id, status, attendee in session.execute(
        select(Attendance.agency_id, Attendance.status, Attendance.attendee).where(Attendance.meeting_id == meeting.id)
    ).all()}


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
