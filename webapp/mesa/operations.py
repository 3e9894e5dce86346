"""Mesa meeting operations: open a meeting and keep its agenda, and take the minutes (attendance, notes, agreements).

Each function works in the caller's transaction and only flushes; the view commits. Minutes are edited only
while the meeting is open: every edit checks the meeting's version (a form posted on an older one is refused,
409) and bumps it, and a closed meeting refuses every edit. Closing the minutes is in `webapp.mesa.minutes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.db import is_postgresql
from engine.errors import ConflictError
from engine.execution import start_process
from engine.localtime import LOCAL_TZ
from engine.models import AgendaItem, Agreement, Attendance, Case, Meeting, MeetingNote, Mesa
from engine.models.mesa import ATTENDANCE_STATUSES
from engine.persistence import check_version, lock_case
from webapp.mesa.agenda import AgendaEntry, build_agenda
from webapp.mesa.queries import AGREEMENT_PROCESS, agenda_facts, seats
from webapp.validation import InvalidInput

ACTION_MAX, NOTE_MAX = 2000, 4000
DEFAULT_AGREEMENT_DAYS = 7


# --- The agenda ---------------------------------------------------------------------------------
def lock_meeting(session: Session, meeting_id: int) -> Meeting | None:
    """Load a meeting for update (a row lock on PostgreSQL; SQLite holds the write lock already)."""
    query = select(Meeting).where(Meeting.id == meeting_id)
    if is_postgresql(session):
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def editable(meeting: Meeting, expected_version: int | None, *, statuses: tuple[str, ...] = ("open",)) -> None:
    """Refuse (409) a change unless the meeting is in one of `statuses` and at `expected_version` (None: any)."""
    if meeting.status == "closed":
        raise ConflictError("the minutes are closed: they cannot be changed")
    if meeting.status not in statuses:
        raise ConflictError(f"the meeting is {meeting.status}")
    check_version(meeting.version, expected_version, "the minutes")


def add_to_agenda(session: Session, mesa: Mesa, meeting: Meeting, reference: str, *, actor: Actor,
                  now: datetime) -> Case:
    """Put a case of the territory on a planned or open meeting's agenda by hand (kept on every refresh)."""
    editable(meeting, None, statuses=("planned", "open"))
    case = session.execute(select(Case).where(Case.reference == reference.strip().upper())).scalar_one_or_none()
    if case is None or case.territory_id != mesa.territory_id:
        raise InvalidInput({"reference": [_("No hay ningún caso con esa referencia en el territorio de la Mesa.")]})
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
    editable(meeting, expected_version, statuses=("planned",))
    meeting.status = "open"
    meeting.opened_at = now
    refresh_agenda(session, mesa, meeting, now)


def refresh_open_agenda(session: Session, mesa: Mesa, meeting: Meeting, *, expected_version: int,
                        now: datetime) -> None:
    """Refresh the agenda of an open meeting (manual items kept)."""
    editable(meeting, expected_version)
    refresh_agenda(session, mesa, meeting, now)


# --- Minutes ------------------------------------------------------------------------------------
def record_attendance(
    session: Session, mesa: Mesa, meeting: Meeting, answers: Mapping[int, tuple[str, str]], *, expected_version: int,
) -> None:
    """Record, for every member agency, whether it came (present, absent, excused) and who came."""
    editable(meeting, expected_version)
    member_ids = [seat.agency_id for seat in seats(session, mesa)]
    errors: dict[str, list[str]] = {}
    for agency_id in member_ids:
        status, _attendee = answers.get(agency_id, ("", ""))
        if status not in ATTENDANCE_STATUSES:
            errors[f"att-{agency_id}"] = [_("Indique si el organismo asistió.")]
    if errors:
        raise InvalidInput(errors)
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
    editable(meeting, expected_version)
    _on_agenda(session, meeting, case_id)
    if len(text) > NOTE_MAX:
        raise InvalidInput({f"note-{case_id}": [_("El texto es demasiado largo (como máximo %(count)s caracteres).",
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
        raise InvalidInput({"case": [_("Ese caso no está en el orden del día.")]})


def today_iso(now: datetime) -> str:
    """Return today's local date (ISO)."""
    return now.astimezone(LOCAL_TZ).date().isoformat()


def default_due_on(now: datetime) -> str:
    """Return the date an agreement is due by default: in a week (ISO)."""
    return (now.astimezone(LOCAL_TZ).date() + timedelta(days=DEFAULT_AGREEMENT_DAYS)).isoformat()


def due_end_of_day(day: date) -> datetime:
    """Return the deadline of an agreement due on `day`: the end of that day, local time (in UTC)."""
    return datetime.combine(day, time(23, 59), LOCAL_TZ).astimezone(UTC)


def add_agreement(
    session: Session, mesa: Mesa, meeting: Meeting, case_id: int, agency_id: int, action: str, due_on: date | None, *,
    expected_version: int, actor: Actor, now: datetime,
) -> Agreement:
    """Record an agreement for one member agency and start the `agreement` process that puts it in its worklist."""
    editable(meeting, expected_version)
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
    elif due_on < now.astimezone(LOCAL_TZ).date():
        errors[f"{prefix}-due"] = [_("La fecha límite no puede ser anterior a hoy.")]
    if errors or due_on is None:
        raise InvalidInput(errors)
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
