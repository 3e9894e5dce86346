"""What every Mesa page does first: load the Mesa or meeting and the user's role there, and read posted fields.

Anyone without a role at the Mesa (or a member where a coordinator must act) is refused 403, audited.
"""

from __future__ import annotations

from datetime import date, datetime

from flask import abort, flash, redirect, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from engine.models import Case, Meeting, Mesa
from webapp.extensions import db
from webapp.form_html import local_to_iso
from webapp.mesa.queries import COORDINATOR, mesa_of_territory, role_in
from webapp.requests import deny, posted_int
from webapp.transaction import discard
from webapp.validation import InvalidInput


def require_role(mesa: Mesa, action: str, *, coordinator: bool = False) -> str:
    """Return the user's role at the Mesa; 403 (audited) for anyone else, or a member where a coordinator must act."""
    role = role_in(db.session(), current_user, mesa)
    if role is None or (coordinator and role != COORDINATOR):
        deny(403, action=action, object_type="mesa", object_id=mesa.id)
    return role


def mesa_and_role(mesa_id: int, action: str, *, coordinator: bool = False) -> tuple[Mesa, str]:
    """Load a Mesa (404) and the user's role at it (403)."""
    mesa = db.session.get(Mesa, mesa_id)
    if mesa is None:
        abort(404)
    return mesa, require_role(mesa, action, coordinator=coordinator)


def mesa_of_territory_or_404(territory_id: int | None) -> Mesa:
    """Load the Mesa of a territory, 404 if there is none."""
    mesa = mesa_of_territory(db.session(), territory_id) if territory_id else None
    if mesa is None:
        abort(404)
    return mesa


def meeting_and_role(meeting_id: int, action: str, *, coordinator: bool = False) -> tuple[Meeting, Mesa, str]:
    """Load a meeting and its Mesa (404) and the user's role at the Mesa (403)."""
    meeting = db.session.get(Meeting, meeting_id)
    mesa = db.session.get(Mesa, meeting.mesa_id) if meeting else None
    if meeting is None or mesa is None:
        abort(404)
    return meeting, mesa, require_role(mesa, action, coordinator=coordinator)


def posted_date(name: str) -> date | None:
    """Return a posted ISO date, or None if it is missing or not a date."""
    try:
        return date.fromisoformat(request.form.get(name, "").strip())
    except ValueError:
        return None


def posted_datetime(name: str) -> datetime | None:
    """Return a posted datetime-local value (local time) as an aware datetime, or None."""
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    try:
        return datetime.fromisoformat(local_to_iso(raw))
    except ValueError:
        return None


def posted_case(mesa: Mesa) -> Case:
    """Return the posted case of the Mesa's territory (404 for any other)."""
    case_id = posted_int("case_id")
    case = db.session.get(Case, case_id) if case_id else None
    if case is None or case.territory_id != mesa.territory_id:
        abort(404)
    return case


def invalid_redirect(exc: InvalidInput, to: str) -> ResponseReturnValue:
    """Discard the refused change (the redirect commits), flash each message of the invalid input, go back to `to`."""
    discard()
    for messages in exc.errors.values():
        for message in messages:
            flash(message, "error")
    return redirect(to)
