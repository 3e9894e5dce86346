"""Meeting pages: a meeting with its agenda summaries, and the coordinator's edits of its minutes.

Every edit runs as the coordinator: 403 for others (audited), 409 if the minutes are stale or closed,
422 with the page and the fields to correct if what was written cannot be stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from flask import flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine.errors import ConflictError, EngineError, NotFoundError, PermissionDeniedError
from engine.models import Meeting, Mesa
from webapp import clock
from webapp.audit import audit, audit_page_events
from webapp.extensions import db
from webapp.limits import parse_id
from webapp.mesa import operations as ops
from webapp.mesa.minutes import close_meeting, minutes_of, snapshot_detail
from webapp.mesa.queries import COORDINATOR, agenda_entries, agenda_since, attendance_of, seats, territory_name
from webapp.mesa.summaries import agreement_rows, item_summaries
from webapp.mesa.views.blueprint import LABELS, bp
from webapp.mesa.views.common import meeting_and_role, posted_date
from webapp.requests import act_as, posted_version
from webapp.transaction import discard
from webapp.validation import InvalidInput


@bp.get("/mesa/reuniones/<id:meeting_id>")
@login_required
def meeting(meeting_id: int) -> ResponseReturnValue:
    """Show a meeting: its agenda with a summary of each case, and the minutes (editable while open)."""
    meeting, mesa, role = meeting_and_role(meeting_id, "mesa.read")
    return _meeting_page(meeting, mesa, role)


@bp.post("/mesa/reuniones/<id:meeting_id>/abrir")
@login_required
def open_meeting(meeting_id: int) -> ResponseReturnValue:
    """Open the meeting: the agenda is generated and stored, and the minutes can be taken."""
    return _edit(meeting_id, "mesa.open", lambda m, mesa, now: ops.open_meeting(
        db.session(), mesa, m, expected_version=posted_version(), now=now),
        _("Reunión abierta: orden del día generado."))


@bp.post("/mesa/reuniones/<id:meeting_id>/orden-del-dia")
@login_required
def refresh(meeting_id: int) -> ResponseReturnValue:
    """Refresh the open meeting's agenda from the rules (cases added by hand stay)."""
    return _edit(meeting_id, "mesa.agenda", lambda m, mesa, now: ops.refresh_open_agenda(
        db.session(), mesa, m, expected_version=posted_version(), now=now), _("Orden del día actualizado."))


@bp.post("/mesa/reuniones/<id:meeting_id>/casos")
@login_required
def add_case(meeting_id: int) -> ResponseReturnValue:
    """Add a case of the territory to the agenda by its reference (any member, until the meeting closes)."""
    meeting, mesa, role = meeting_and_role(meeting_id, "mesa.agenda")
    session, now = db.session(), clock.now()
    try:
        case = ops.add_to_agenda(session, mesa, meeting, request.form.get("reference", ""), actor=current_user.actor,
                                 now=now)
    except InvalidInput as exc:
        discard()
        return _meeting_page(meeting, mesa, role, errors=exc.errors, status=422)
    except ConflictError:
        return _conflict(meeting_id, "mesa.agenda")
    audit(session, "mesa.agenda", case_id=case.id, object_type="meeting", object_id=meeting.id,
          detail={"added": "manual"})
    flash(_("Caso %(reference)s añadido al orden del día.", reference=case.reference), "info")
    return redirect(url_for("mesa.meeting", meeting_id=meeting.id, _anchor=f"case-{case.id}"))


@bp.post("/mesa/reuniones/<id:meeting_id>/asistencia")
@login_required
def attendance(meeting_id: int) -> ResponseReturnValue:
    """Record the attendance of every member agency."""
    def record(m: Meeting, mesa: Mesa, _now: datetime) -> None:
        answers = {seat.agency_id: (request.form.get(f"att-{seat.agency_id}", ""),
                                    request.form.get(f"who-{seat.agency_id}", ""))
                   for seat in seats(db.session(), mesa)}
        ops.record_attendance(db.session(), mesa, m, answers, expected_version=posted_version())
    return _edit(meeting_id, "mesa.attendance", record, _("Asistencia guardada."), anchor="attendance")


@bp.post("/mesa/reuniones/<id:meeting_id>/notas/<id:case_id>")
@login_required
def note(meeting_id: int, case_id: int) -> ResponseReturnValue:
    """Write the minutes' note on one case."""
    return _edit(meeting_id, "mesa.note", lambda m, _mesa, now: ops.save_note(
        db.session(), m, case_id, request.form.get("note", ""), expected_version=posted_version(),
        actor=current_user.actor, now=now), _("Nota guardada."), case_id=case_id, anchor=f"case-{case_id}")


@bp.post("/mesa/reuniones/<id:meeting_id>/acuerdos/<id:case_id>")
@login_required
def agreement(meeting_id: int, case_id: int) -> ResponseReturnValue:
    """Record an agreement for one agency: it becomes a step in that agency's worklist."""
    return _edit(meeting_id, "mesa.agreement", lambda m, mesa, now: ops.add_agreement(
        db.session(), mesa, m, case_id, parse_id(request.form.get("agency")) or 0, request.form.get("action", ""),
        posted_date("due_on"), expected_version=posted_version(), actor=current_user.actor, now=now),
        _("Acuerdo registrado: ya está en la lista de trabajo del organismo."), case_id=case_id,
        anchor=f"case-{case_id}")


@bp.post("/mesa/reuniones/<id:meeting_id>/cerrar")
@login_required
def close(meeting_id: int) -> ResponseReturnValue:
    """Close the minutes: they are frozen and can no longer be edited."""
    return _edit(meeting_id, "mesa.close", lambda m, mesa, now: close_meeting(
        db.session(), mesa, m, expected_version=posted_version(), actor=current_user.actor, now=now,
        confirmed=request.form.get("confirm") == "yes"),
        _("Acta cerrada: ya no se puede modificar."))


def _conflict(meeting_id: int, action: str) -> ResponseReturnValue:
    """Answer an edit of stale or closed minutes: 409 with the current meeting page, the failure audited."""
    discard()  # show the minutes as stored, not as the refused edit left them
    meeting, mesa, role = meeting_and_role(meeting_id, action)
    if meeting.status == "closed":
        flash(_("El acta está cerrada: ya no se puede modificar."), "error")
    else:
        flash(_("Otra persona ha modificado el acta mientras la tenía abierta: esta es su situación actual."), "error")
    failure = (action, {"object_type": "meeting", "object_id": meeting.id, "outcome": "failed",
                        "detail": {"reason": "closed" if meeting.status == "closed" else "conflict"}})
    return _meeting_page(meeting, mesa, role, status=409, failure=failure)


def _edit(meeting_id: int, action: str, change: Callable[[Meeting, Mesa, datetime], object], message: str, *,
          case_id: int | None = None, anchor: str | None = None) -> ResponseReturnValue:
    """Run one change of the minutes as the coordinator: 403 for others, 409 if stale or closed, 422 if invalid.

    Only the Mesa's own answers are here (the meeting page with the fields to correct, or as it now stands);
    a refusal of the engine (403/404) is the app-wide handler's, audited under `action`.
    """
    act_as(action)
    meeting, mesa, _role = meeting_and_role(meeting_id, action, coordinator=True)
    session, now = db.session(), clock.now()
    locked = ops.lock_meeting(session, meeting.id)
    assert locked is not None  # it was just read
    try:
        change(locked, mesa, now)
    except InvalidInput as exc:
        discard()  # show the minutes as stored, not as the refused edit left them
        failure = (action, {"case_id": case_id, "object_type": "meeting", "object_id": meeting_id,
                            "outcome": "failed", "detail": {"fields": sorted(exc.errors)}})
        return _meeting_page(locked, mesa, COORDINATOR, errors=exc.errors, status=422, failure=failure)
    except ConflictError:
        return _conflict(meeting_id, action)
    except (PermissionDeniedError, NotFoundError):
        raise
    except EngineError as exc:  # the agreement process refused to start: say so, store nothing
        discard()
        return _meeting_page(locked, mesa, COORDINATOR, errors={"(form)": [str(exc)]}, status=422)
    audit(session, action, case_id=case_id, object_type="meeting", object_id=meeting_id)
    flash(message, "info")
    return redirect(url_for("mesa.meeting", meeting_id=meeting_id, _anchor=anchor) if anchor
                    else url_for("mesa.meeting", meeting_id=meeting_id))


def _meeting_page(meeting: Meeting, mesa: Mesa, role: str, *, errors: Mapping[str, Sequence[str]] | None = None,
                  status: int = 200, failure: tuple[str, Mapping[str, Any]] | None = None) -> ResponseReturnValue:
    """Render a meeting; every case summary shown is audited as a read via the Mesa, after the `failure` it answers.

    On an error answer (which rolls the request back) the audit is written apart, so it is kept.
    """
    session, now = db.session(), clock.now()
    closed = meeting.status == "closed"
    content = minutes_of(session, meeting).content if closed else None  # type: ignore[union-attr]
    summaries = []
    if not closed:
        entries = agenda_entries(session, mesa, meeting, now)
        summaries = item_summaries(session, current_user, meeting, entries, now, agenda_since(session, meeting, mesa))
    members = seats(session, mesa)
    html = render_template(
        "mesa/meeting.html", meeting=meeting, mesa=mesa, role=role, summaries=summaries, content=content,
        seats=members, attendance=attendance_of(session, meeting), labels=LABELS, errors=errors or {},
        agreements=agreement_rows(session, now, meeting_id=meeting.id),
        default_due=ops.default_due_on(now), today=ops.today_iso(now),
        territory=territory_name(session, mesa.territory_id),
    )
    case_ids = snapshot_detail(content) if content else [s.case_id for s in summaries]
    events = [failure] if failure else []
    events += [("case.read", {"case_id": case_id, "object_type": "case", "object_id": case_id,
                              "detail": {"via": "mesa", "meeting_id": meeting.id}}) for case_id in case_ids]
    events.append(("mesa.read", {"object_type": "meeting", "object_id": meeting.id, "detail": {"view": "meeting"}}))
    audit_page_events(session, status, events)
    return make_response(html, status)
