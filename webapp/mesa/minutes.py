"""The minutes of a meeting: closing freezes them as a snapshot with its sha256, which print and PDF read.

A snapshot holds references only: no name or contact data of victim or aggressor ever goes into it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.models import Case, Meeting, MeetingNote, Mesa, MinutesVersion
from webapp.cases.queries import open_steps
from webapp.mesa.operations import editable
from webapp.mesa.queries import agenda_entries, attendance_of, seats, territory_name, user_names
from webapp.mesa.schedule import plan_next_meeting
from webapp.mesa.summaries import agreement_rows
from webapp.validation import InvalidInput


def close_meeting(session: Session, mesa: Mesa, meeting: Meeting, *, expected_version: int, actor: Actor,
                  now: datetime, confirmed: bool) -> MinutesVersion:
    """Close the minutes: freeze them as a snapshot with its sha256, and plan the next ordinary meeting.

    The coordinator must have confirmed that the minutes are complete (`confirmed`): closing cannot be undone.
    """
    editable(meeting, expected_version)
    if not confirmed:
        raise InvalidInput({"confirm": [_("Confirme que el acta está completa antes de cerrarla.")]})
    recorded = attendance_of(session, meeting)
    missing = [seat.agency for seat in seats(session, mesa) if seat.agency_id not in recorded]
    if missing:
        raise InvalidInput({"attendance": [_("Falta la asistencia de: %(agencies)s.", agencies=", ".join(missing))]})
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


def minutes_of(session: Session, meeting: Meeting) -> MinutesVersion | None:
    """Return the closed minutes of a meeting, if it is closed."""
    return session.execute(select(MinutesVersion).where(MinutesVersion.meeting_id == meeting.id)).scalar_one_or_none()


def snapshot_detail(content: Mapping[str, Any]) -> list[int]:
    """Return the case ids a closed minutes snapshot is about (for the audit log)."""
    return sorted({int(item["case_id"]) for item in content.get("items", [])})
