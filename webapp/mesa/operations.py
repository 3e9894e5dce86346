"""Mesa operations: plan, open and close meetings, the agenda, minutes, agreements, settings and transfers.

Each function works in the caller's transaction and only flushes; the view or CLI command commits.
Minutes are edited only while the meeting is open: every edit checks the meeting's version (a form
posted on an older one is refused, 409) and bumps it, and a closed meeting refuses every edit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.calendar import working_day_on_or_after
from engine.db import is_postgresql
from engine.errors import ConflictError, PermissionDeniedError
from engine.execution import start_process
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
    UserAccount,
    agency_territory,
)
from engine.models.mesa import ATTENDANCE_STATUSES, DEFAULT_MEETING_INTERVAL_DAYS
from engine.persistence import check_version, lock_case
from engine.transfer import transfer_case
from webapp.cases.queries import open_steps
from webapp.mesa.agenda import AgendaEntry, build_agenda
from webapp.mesa.queries import (
    AGREEMENT_PROCESS,
    agenda_entries,
    agenda_facts,
    agreement_rows,
    attendance_of,
    mesa_of_territory,
    seats,
    territory_name,
    territory_region,
    user_names,
)

MADRID = ZoneInfo("Europe/Madrid")
MEETING_HOUR = time(10, 0)  # meetings are planned at 10:00 Madrid time unless the coordinator says otherwise
ACTION_MAX, NOTE_MAX, REASON_MAX = 2000, 4000, 1000
MAX_INTERVAL_DAYS = 90
DEFAULT_AGREEMENT_DAYS = 7


class InvalidMinutes(Exception):  # noqa: N818 - named for what the user did, like the engine's errors
    """Something the coordinator wrote cannot be stored; `errors` maps each field to Spanish messages."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in self.errors.items()))


# --- Mesas and their schedule -------------------------------------------------------------------
def create_mesa(session: Session, territory_id: int, *, now: datetime, name: str | None = None,
                interval_days: int = DEFAULT_MEETING_INTERVAL_DAYS) -> Mesa:
    """Create a territory's Mesa: coordinated by its mesa_coordinator agency, every other agency a member.

    Each member's first professional (by name) represents it until the coordinator says otherwise;
    the first ordinary meeting is planned for the next working day of the territory's region at 10:00.
    """
    if mesa_of_territory(session, territory_id) is not None:
        raise ConflictError("the territory already has a Mesa")
    agencies = session.execute(
        select(Agency).join(agency_territory, agency_territory.c.agency_id == Agency.id)
        .where(agency_territory.c.territory_id == territory_id, Agency.active.is_(True)).order_by(Agency.id)
    ).scalars().all()
    coordinator = next((a for a in agencies if a.kind == "mesa_coordinator"), None)
    if coordinator is None:
        raise ConflictError("the territory has no agency of kind mesa_coordinator to coordinate its Mesa")
    default_name = f"Mesa de Coordinación — {territory_name(session, territory_id)}"
    mesa = Mesa(territory_id=territory_id, name=name or default_name,
                coordinator_agency_id=coordinator.id, meeting_interval_days=interval_days, active=True,
                created_at=now, version=1)
    session.add(mesa)
    session.flush()
    for agency in agencies:
        if agency.id == coordinator.id:
            continue
        representative = session.execute(
            select(UserAccount.id).where(UserAccount.agency_id == agency.id, UserAccount.active.is_(True))
            .order_by(UserAccount.id).limit(1)
        ).scalar_one_or_none()
        session.add(MesaMember(mesa_id=mesa.id, agency_id=agency.id, representative_id=representative))
    when = _next_day_at(now, 1, territory_region(session, territory_id))
    session.add(Meeting(mesa_id=mesa.id, scheduled_at=when, kind="ordinary", status="planned",
                        created_at=now, version=1))
    session.flush()
    return mesa


def _next_day_at(now: datetime, days: int, region: str | None, at: time = MEETING_HOUR) -> datetime:
    """Return 10:00 Madrid time `days` days after `now`, or on the first working day of the region after it."""
    return on_working_day(datetime.combine(now.astimezone(MADRID).date() + timedelta(days=days), at, MADRID), region)


def on_working_day(when: datetime, region: str | None) -> datetime:
    """Move `when` to the region's first working day on or after its Madrid date, keeping its wall-clock time."""
    local = when.astimezone(MADRID)
    day = working_day_on_or_after(local.date(), region)
    return datetime.combine(day, local.time(), MADRID).astimezone(UTC)


def next_working_day(session: Session, mesa: Mesa, now: datetime) -> datetime:
    """Return the Mesa's next working day at 10:00 Madrid time (when an extraordinary meeting is proposed for)."""
    return _next_day_at(now, 1, territory_region(session, mesa.territory_id))


def next_working_day_iso(session: Session, mesa: Mesa, now: datetime) -> str:
    """Return `next_working_day` as a datetime-local value (Madrid time)."""
    return next_working_day(session, mesa, now).astimezone(MADRID).strftime("%Y-%m-%dT%H:%M")


def today_iso(now: datetime) -> str:
    """Return today's date in Madrid (ISO)."""
    return now.astimezone(MADRID).date().isoformat()


def default_due_on(now: datetime) -> str:
    """Return the date an agreement is due by default: in a week (ISO)."""
    return (now.astimezone(MADRID).date() + timedelta(days=DEFAULT_AGREEMENT_DAYS)).isoformat()


def plan_next_meeting(session: Session, mesa: Mesa, now: datetime) -> Meeting:
    """Return the next planned ordinary meeting, planning it (last ordinary meeting + interval, moved to a working
    day of the territory's region) if there is none."""
    planned = session.execute(
        select(Meeting).where(Meeting.mesa_id == mesa.id, Meeting.kind == "ordinary", Meeting.status == "planned")
        .order_by(Meeting.scheduled_at).limit(1)
    ).scalar_one_or_none()
    if planned is not None:
        return planned
    last = session.execute(
        select(Meeting.scheduled_at).where(Meeting.mesa_id == mesa.id, Meeting.kind == "ordinary")
        .order_by(Meeting.scheduled_at.desc()).limit(1)
    ).scalar_one_or_none()
    interval = timedelta(days=mesa.meeting_interval_days)
    when = (last or now) + interval
    while when <= now:
        when += interval
    when = on_working_day(when, territory_region(session, mesa.territory_id))
    meeting = Meeting(mesa_id=mesa.id, scheduled_at=when, kind="ordinary", status="planned", created_at=now, version=1)
    session.add(meeting)
    session.flush()
    return meeting


def update_settings(
    session: Session, mesa: Mesa, *, interval_days: int, representatives: Mapping[int, int | None],
    expected_version: int,
) -> None:
    """Change the Mesa's meeting interval and its members' representatives (each a member of her agency)."""
    check_version(mesa.version, expected_version, "the Mesa")
    if not 1 <= interval_days <= MAX_INTERVAL_DAYS:
        raise InvalidMinutes({"interval": [_("Escriba un número de días entre 1 y %(max)s.", max=MAX_INTERVAL_DAYS)]})
    members = {m.agency_id: m
               for m in session.execute(select(MesaMember).where(MesaMember.mesa_id == mesa.id)).scalars()}
    for agency_id, user_id in representatives.items():
        member = members.get(agency_id)
        if member is None:
            continue
        if user_id is not None:
            user = session.get(UserAccount, user_id)
            if user is None or user.agency_id != agency_id or not user.active:
                raise InvalidMinutes({f"rep-{agency_id}": [_("Elija a una persona de ese organismo.")]})
        member.representative_id = user_id
    if interval_days != mesa.meeting_interval_days:
        mesa.meeting_interval_days = interval_days
        _reschedule_planned(session, mesa)
    mesa.version += 1
    session.flush()


def _reschedule_planned(session: Session, mesa: Mesa) -> None:
    """Move the planned ordinary meeting to the last held ordinary meeting plus the new interval (a working day)."""
    last_held = session.execute(
        select(Meeting.scheduled_at).where(Meeting.mesa_id == mesa.id, Meeting.kind == "ordinary",
                                           Meeting.status != "planned")
        .order_by(Meeting.scheduled_at.desc()).limit(1)
    ).scalar_one_or_none()
    if last_held is None:
        return
    for meeting in session.execute(select(Meeting).where(Meeting.mesa_id == mesa.id, Meeting.kind == "ordinary",
                                                         Meeting.status == "planned")).scalars():
        meeting.scheduled_at = on_working_day(last_held + timedelta(days=mesa.meeting_interval_days),
                                              territory_region(session, mesa.territory_id))
        meeting.version += 1


def convene_extraordinary(
    session: Session, mesa: Mesa, case: Case, trigger: str, scheduled_at: datetime, *, actor: Actor, now: datetime,
) -> Meeting:
    """Convene an extraordinary meeting for a new incident or complaint; the case is on its agenda."""
    if case.territory_id != mesa.territory_id:
        raise PermissionDeniedError("the case is not of the Mesa's territory")
    if trigger not in ("incident", "complaint"):
        raise ValueError(f"unknown trigger {trigger!r}")
    if scheduled_at < now - timedelta(hours=1):
        raise InvalidMinutes({"scheduled_at": [_("La reunión no puede convocarse en el pasado.")]})
    what = _("Nuevo incidente") if trigger == "incident" else _("Nueva denuncia")
    meeting = Meeting(mesa_id=mesa.id, scheduled_at=scheduled_at, kind="extraordinary", status="planned",
                      reason=f"{what}: {case.reference}", created_at=now, created_by_id=actor.user_id, version=1)
    session.add(meeting)
    session.flush()
    session.add(AgendaItem(meeting_id=meeting.id, case_id=case.id, reasons=[], pinned=trigger,
                           added_by_id=actor.user_id, added_at=now))
    session.flush()
    return meeting


# --- The agenda ---------------------------------------------------------------------------------
def lock_meeting(session: Session, meeting_id: int) -> Meeting | None:
    """Load a meeting for update (a row lock on PostgreSQL; SQLite holds the write lock already)."""
    query = select(Meeting).where(Meeting.id == meeting_id)
    if is_postgresql(session):
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def _editable(meeting: Meeting, expected_version: int | None, *, statuses: tuple[str, ...] = ("open",)) -> None:
    if meeting.status == "closed":
        raise ConflictError("the minutes are closed: they cannot be changed")
    if meeting.status not in statuses:
        raise ConflictError(f"the meeting is {meeting.status}")
    check_version(meeting.version, expected_version, "the minutes")


def add_to_agenda(session: Session, mesa: Mesa, meeting: Meeting, reference: str, *, actor: Actor,
                  now: datetime) -> Case:
    """Put a case of the territory on a planned or open meeting's agenda by hand (kept on every refresh)."""
    _editable(meeting, None, statuses=("planned", "open"))
    case = session.execute(select(Case).where(Case.reference == reference.strip().upper())).scalar_one_or_none()
    if case is None or case.territory_id != mesa.territory_id:
        raise InvalidMinutes({"reference": [_("No hay ningún caso con esa referencia en el territorio de la Mesa.")]})
    item = session.execute(select(AgendaItem).where(AgendaItem.meeting_id == meeting.id,
                                                    AgendaItem.case_id == case.id)).scalar_one_or_none()
    if item is None:
        session.add(AgendaItem(meeting_id=meeting.id, case_id=case.id, reasons=[], pinned="manual",
                               added_by_id=actor.user_id, added_at=now))
    elif item.pinned is None:
        item.pinned = "manual"
        item.added_by_id = actor.user_id
    meeting.version += 1
    session.flush()
    return case


def refresh_agenda(session: Session, mesa: Mesa, meeting: Meeting, now: datetime) -> list[AgendaEntry]:
    """Store the agenda the rules give now; pinned items stay, items no rule keeps any more go."""
    entries = _computed(session, mesa, meeting, now)
    items = {item.case_id: item for item in session.execute(
        select(AgendaItem).where(AgendaItem.meeting_id == meeting.id)).scalars()}
    wanted = {entry.case_id: entry for entry in entries}
    for case_id, item in items.items():
        if case_id not in wanted and item.pinned is None:
            session.delete(item)
    for case_id, entry in wanted.items():
        existing = items.get(case_id)
        if existing is None:
            session.add(AgendaItem(meeting_id=meeting.id, case_id=case_id, reasons=list(entry.rule_reasons),
                                   pinned=None, added_at=now))
        else:
            existing.reasons = list(entry.rule_reasons)
    meeting.agenda_refreshed_at = now
    meeting.version += 1
    session.flush()
    return entries


def _computed(session: Session, mesa: Mesa, meeting: Meeting, now: datetime) -> list[AgendaEntry]:
    return build_agenda(agenda_facts(session, mesa, meeting, now))


def open_meeting(session: Session, mesa: Mesa, meeting: Meeting, *, expected_version: int, now: datetime) -> None:
    """Open a planned meeting: its agenda is generated and stored; minutes can be taken."""
    _editable(meeting, expected_version, statuses=("planned",))
    meeting.status = "open"
    meeting.opened_at = now
    refresh_agenda(session, mesa, meeting, now)


def refresh_open_agenda(session: Session, mesa: Mesa, meeting: Meeting, *, expected_version: int,
                        now: datetime) -> None:
    """Refresh the agenda of an open meeting (manual items kept)."""
    _editable(meeting, expected_version)
    refresh_agenda(session, mesa, meeting, now)


# --- Minutes ------------------------------------------------------------------------------------
def record_attendance(
    session: Session, mesa: Mesa, meeting: Meeting, answers: Mapping[int, tuple[str, str]], *, expected_version: int,
) -> None:
    """Record, for every member agency, whether it came (present, absent, excused) and who came."""
    _editable(meeting, expected_version)
    member_ids = [seat.agency_id for seat in seats(session, mesa)]
    errors: dict[str, list[str]] = {}
    for agency_id in member_ids:
        status, _attendee = answers.get(agency_id, ("", ""))
        if status not in ATTENDANCE_STATUSES:
            errors[f"att-{agency_id}"] = [_("Indique si el organismo asistió.")]
    if errors:
        raise InvalidMinutes(errors)
    existing = {a.agency_id: a for a in session.execute(
        select(Attendance).where(Attendance.meeting_id == meeting.id)).scalars()}
    for agency_id in member_ids:
        status, attendee = answers[agency_id]
        row = existing.get(agency_id) or Attendance(meeting_id=meeting.id, agency_id=agency_id)
        row.status = status
        row.attendee = attendee.strip()[:200] or None if status == "present" else None
        session.add(row)
    meeting.version += 1
    session.flush()


def save_note(session: Session, meeting: Meeting, case_id: int, text: str, *, expected_version: int, actor: Actor,
              now: datetime) -> None:
    """Write the minutes' note on one agenda case (an empty note removes it)."""
    _editable(meeting, expected_version)
    _on_agenda(session, meeting, case_id)
    if len(text) > NOTE_MAX:
        raise InvalidMinutes({f"note-{case_id}": [_("El texto es demasiado largo (como máximo %(count)s caracteres).",
                                                     count=NOTE_MAX)]})
    note = session.execute(select(MeetingNote).where(MeetingNote.meeting_id == meeting.id,
                                                     MeetingNote.case_id == case_id)).scalar_one_or_none()
    if not text.strip():
        if note is not None:
            session.delete(note)
    elif note is None:
        session.add(MeetingNote(meeting_id=meeting.id, case_id=case_id, text=text.strip(), updated_by_id=actor.user_id,
                                updated_at=now))
    else:
        note.text, note.updated_by_id, note.updated_at = text.strip(), actor.user_id, now
    meeting.version += 1
    session.flush()


def _on_agenda(session: Session, meeting: Meeting, case_id: int) -> None:
    found = session.execute(select(AgendaItem.id).where(AgendaItem.meeting_id == meeting.id,
                                                        AgendaItem.case_id == case_id)).first()
    if found is None:
        raise InvalidMinutes({"case": [_("Ese caso no está en el orden del día.")]})


def due_end_of_day(day: date) -> datetime:
    """Return the deadline of an agreement due on `day`: the end of that day, Madrid time (in UTC)."""
    return datetime.combine(day, time(23, 59), MADRID).astimezone(UTC)


def add_agreement(
    session: Session, mesa: Mesa, meeting: Meeting, case_id: int, agency_id: int, action: str, due_on: date | None, *,
    expected_version: int, actor: Actor, now: datetime,
) -> Agreement:
    """Record an agreement for one member agency and start the `agreement` process that puts it in its worklist."""
    _editable(meeting, expected_version)
    _on_agenda(session, meeting, case_id)
    prefix = f"agr-{case_id}"
    errors: dict[str, list[str]] = {}
    if agency_id not in {seat.agency_id for seat in seats(session, mesa)}:
        errors[f"{prefix}-agency"] = [_("Elija uno de los organismos de la Mesa.")]
    if not action.strip():
        errors[f"{prefix}-action"] = [_("Escriba qué se acuerda.")]
    elif len(action) > ACTION_MAX:
        errors[f"{prefix}-action"] = [_("El texto es demasiado largo (como máximo %(count)s caracteres).",
                                        count=ACTION_MAX)]
    if due_on is None:
        errors[f"{prefix}-due"] = [_("Escriba una fecha válida.")]
    elif due_on < now.astimezone(MADRID).date():
        errors[f"{prefix}-due"] = [_("La fecha límite no puede ser anterior a hoy.")]
    if errors or due_on is None:
        raise InvalidMinutes(errors)
    case = lock_case(session, case_id)
    due_at = due_end_of_day(due_on)
    agreement = Agreement(meeting_id=meeting.id, case_id=case.id, agency_id=agency_id, action=action.strip(),
                          due_at=due_at, created_by_id=actor.user_id, created_at=now)
    session.add(agreement)
    session.flush()
    instance = start_process(session, case, AGREEMENT_PROCESS,
                             {"agreement_id": agreement.id, "agency_id": agency_id, "due_at": due_at.isoformat()},
                             now=now, actor=actor)
    agreement.instance_id = instance.id
    meeting.version += 1
    session.flush()
    return agreement


def close_meeting(session: Session, mesa: Mesa, meeting: Meeting, *, expected_version: int, actor: Actor,
                  now: datetime) -> MinutesVersion:
    """Close the minutes: freeze them as a snapshot with its sha256, and plan the next ordinary meeting."""
    _editable(meeting, expected_version)
    recorded = attendance_of(session, meeting)
    missing = [seat.agency for seat in seats(session, mesa) if seat.agency_id not in recorded]
    if missing:
        raise InvalidMinutes({"attendance": [_("Falta la asistencia de: %(agencies)s.", agencies=", ".join(missing))]})
    meeting.status, meeting.closed_at, meeting.closed_by_id = "closed", now, actor.user_id
    meeting.version += 1
    content = minutes_content(session, mesa, meeting, now)
    minutes = MinutesVersion(meeting_id=meeting.id, content=content, sha256=content_digest(content),
                             closed_by_id=actor.user_id, closed_at=now)
    session.add(minutes)
    session.flush()
    if meeting.kind == "ordinary":
        plan_next_meeting(session, mesa, now)
    return minutes


def content_digest(content: Mapping[str, Any]) -> str:
    """Return the sha256 of a minutes snapshot in its canonical JSON form."""
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def minutes_content(session: Session, mesa: Mesa, meeting: Meeting, now: datetime) -> dict[str, Any]:
    """Build the minutes snapshot: attendance, each agenda case (reasons, level, late steps, note, agreements).

    References only: no name or contact data of victim or aggressor ever goes into the minutes.
    """
    recorded = attendance_of(session, meeting)
    names = user_names(session, [meeting.closed_by_id])
    notes = dict(session.execute(select(MeetingNote.case_id, MeetingNote.text)
                                 .where(MeetingNote.meeting_id == meeting.id)).all())
    agreements = agreement_rows(session, now, meeting_id=meeting.id)
    entries = agenda_entries(session, mesa, meeting, now)
    cases = {c.id: c for c in session.execute(select(Case).where(Case.id.in_([e.case_id for e in entries]))).scalars()}
    items = []
    for entry in entries:
        case = cases[entry.case_id]
        late = [s for s in open_steps(session, case.id, now) if s.overdue]
        items.append({
            "case_id": case.id, "reference": case.reference, "reasons": list(entry.reasons),
            "risk_level": case.risk_level, "level_rule": (case.facts or {}).get("level_rule"),
            "late_steps": [{"step": s.name, "agency": s.agency_name, "due_at": _iso(s.due_at)} for s in late],
            "note": notes.get(case.id, ""),
            "agreements": [a.id for a in agreements if a.case_id == case.id],
        })
    return {
        "mesa": mesa.name, "territory": territory_name(session, mesa.territory_id),
        "meeting": {"id": meeting.id, "kind": meeting.kind, "reason": meeting.reason,
                    "scheduled_at": _iso(meeting.scheduled_at), "opened_at": _iso(meeting.opened_at),
                    "closed_at": _iso(meeting.closed_at)},
        "closed_by": names.get(meeting.closed_by_id or 0, ""),
        "attendance": [{"agency_id": seat.agency_id, "agency": seat.agency, "status": recorded[seat.agency_id][0],
                        "attendee": recorded[seat.agency_id][1]} for seat in seats(session, mesa)],
        "items": items,
        "agreements": [{"id": a.id, "case_id": a.case_id, "reference": a.reference, "agency": a.agency,
                        "action": a.action, "due_at": _iso(a.due_at)} for a in agreements],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- Transfers ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TransferDecision:
    """What deciding a transfer did."""

    transfer: CaseTransfer
    moved_tasks: int


def request_transfer(session: Session, mesa: Mesa, case_id: int, to_mesa: Mesa, reason: str, *, actor: Actor,
                     now: datetime) -> CaseTransfer:
    """Ask another territory's Mesa to take a case of ours (the victim moved); its coordinator decides."""
    case = session.get(Case, case_id)
    if case is None or case.territory_id != mesa.territory_id:
        raise InvalidMinutes({"case": [_("Elija un caso del territorio de la Mesa.")]})
    if to_mesa.id == mesa.id or not to_mesa.active:
        raise InvalidMinutes({"to_mesa": [_("Elija la Mesa de otro territorio.")]})
    if len(reason) > REASON_MAX:
        raise InvalidMinutes({"reason": [_("El texto es demasiado largo (como máximo %(count)s caracteres).",
                                           count=REASON_MAX)]})
    pending = session.execute(select(CaseTransfer.id).where(CaseTransfer.case_id == case_id,
                                                            CaseTransfer.status == "requested")).first()
    if pending is not None:
        raise InvalidMinutes({"case": [_("Ese caso ya tiene un traslado pendiente.")]})
    transfer = CaseTransfer(case_id=case_id, from_territory_id=mesa.territory_id, to_territory_id=to_mesa.territory_id,
                            status="requested", reason=reason.strip(), requested_by_id=actor.user_id, requested_at=now)
    session.add(transfer)
    session.flush()
    return transfer


def decide_transfer(session: Session, transfer: CaseTransfer, accept: bool, *, actor: Actor,
                    now: datetime) -> TransferDecision:
    """Accept (move the case and its open steps) or reject a transfer request, in the caller's transaction."""
    if transfer.status != "requested":
        raise ConflictError(f"the transfer was {transfer.status} already")
    case = lock_case(session, transfer.case_id)
    if case.territory_id != transfer.from_territory_id:
        raise ConflictError("the case moved meanwhile")
    transfer.status, transfer.decided_by_id, transfer.decided_at = ("accepted" if accept else "rejected",
                                                                    actor.user_id, now)
    moved = 0
    if accept:
        moved = len(session.execute(select(OpenTask.id).where(OpenTask.case_id == case.id)).all())
        transfer_case(session, case.id, transfer.to_territory_id, now=now, actor=actor)
        # The old Mesa's planned agendas no longer list the case; its closed minutes keep it.
        session.execute(delete(AgendaItem).where(
            AgendaItem.case_id == case.id,
            AgendaItem.meeting_id.in_(select(Meeting.id).where(Meeting.status == "planned",
                                                               Meeting.mesa_id.in_(select(Mesa.id).where(
                                                                   Mesa.territory_id == transfer.from_territory_id))))),
            execution_options={"synchronize_session": "fetch"})
    session.flush()
    return TransferDecision(transfer, moved)
