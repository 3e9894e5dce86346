"""Mesa pages: the Mesa and its meetings, the agenda with its summaries, the minutes, print and PDF, settings."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, NoReturn

from flask import Blueprint, Response, abort, flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from engine.errors import ConflictError, EngineError, NotFoundError, PermissionDeniedError
from engine.models import Case, CaseTransfer, Meeting, Mesa
from webapp import clock
from webapp.access import can_see_identity
from webapp.audit import audit, audit_now
from webapp.cases.queries import parties
from webapp.extensions import db
from webapp.form_html import local_to_iso
from webapp.mesa import labels
from webapp.mesa import operations as ops
from webapp.mesa.operations import InvalidMinutes
from webapp.mesa.pdf import minutes_pdf
from webapp.mesa.queries import (
    COORDINATOR,
    agency_members,
    agenda_entries,
    agenda_since,
    agreement_rows,
    attendance_of,
    followed_cases,
    item_summaries,
    meetings,
    mesa_of_territory,
    mesas_of,
    minutes_of,
    next_planned,
    other_mesas,
    proposals,
    role_in,
    seats,
    snapshot_detail,
    territory_name,
    transfers_of,
)

bp = Blueprint("mesa", __name__, template_folder="templates")
log = logging.getLogger(__name__)

LABELS = {"reasons": labels.REASON_LABELS, "attendance": labels.ATTENDANCE_LABELS, "kinds": labels.KIND_LABELS,
          "statuses": labels.STATUS_LABELS, "agreements": labels.AGREEMENT_LABELS, "outcomes": labels.OUTCOME_LABELS,
          "transfers": labels.TRANSFER_LABELS}


@bp.app_context_processor
def mesa_navigation() -> dict[str, Any]:
    """Give the header the Mesa link for those who sit at one, with the extraordinary meetings proposed."""
    if not current_user or not getattr(current_user, "is_authenticated", False) or current_user.agency_id is None:
        return {"mesa_nav": None}
    session = db.session()
    try:
        mine = mesas_of(session, current_user)
        now = clock.now()
        proposed = sum(len(proposals(session, mesa, now)) for mesa, role in mine if role == COORDINATOR)
    except SQLAlchemyError:  # an error page must still render when the database is what failed
        log.warning("could not read the user's Mesas", exc_info=True)
        return {"mesa_nav": None}
    return {"mesa_nav": {"proposed": proposed} if mine else None}


@bp.get("/mesa")
@login_required
def index() -> ResponseReturnValue:
    """List the Mesas the user coordinates or sits at (straight to it when there is one)."""
    mine = mesas_of(db.session(), current_user)
    if not mine:
        audit_now(db.session(), "mesa.read", outcome="denied")
        abort(403)
    if len(mine) == 1:
        return redirect(url_for("mesa.show", mesa_id=mine[0][0].id))
    return render_template("mesa/index.html", mesas=mine)


@bp.get("/mesa/<int:mesa_id>")
@login_required
def show(mesa_id: int) -> ResponseReturnValue:
    """Show a Mesa: next meeting, proposed extraordinary meetings, past meetings, members, transfers."""
    mesa, role = _mesa_and_role(mesa_id, "mesa.read")
    session, now = db.session(), clock.now()
    found = proposals(session, mesa, now) if role == COORDINATOR else []
    html = render_template(
        "mesa/show.html", mesa=mesa, role=role, territory=territory_name(session, mesa.territory_id),
        meetings=meetings(session, mesa), next_meeting=next_planned(session, mesa), proposals=found,
        seats=seats(session, mesa), transfers=transfers_of(session, mesa), labels=LABELS,
        default_when=ops.next_working_day_iso(session, mesa, now),
    )
    audit(session, "mesa.read", object_type="mesa", object_id=mesa.id,
          detail={"view": "mesa", "case_ids": sorted(p.case_id for p in found)})
    session.commit()
    return html


@bp.post("/mesa/<int:mesa_id>/extraordinarias")
@login_required
def convene(mesa_id: int) -> ResponseReturnValue:
    """Convene an extraordinary meeting for a proposed incident or complaint (the case on its agenda)."""
    mesa, _role = _mesa_and_role(mesa_id, "mesa.convene", coordinator=True)
    session, now = db.session(), clock.now()
    case = _case_of_form(mesa)
    when = _datetime_field("scheduled_at") or ops.next_working_day(session, mesa, now)
    try:
        meeting = ops.convene_extraordinary(session, mesa, case, request.form.get("trigger", ""), when,
                                            actor=current_user.actor, now=now)
    except InvalidMinutes as exc:
        return _invalid_redirect(exc, url_for("mesa.show", mesa_id=mesa.id))
    except ValueError:
        abort(400)
    audit(session, "mesa.convene", case_id=case.id, object_type="meeting", object_id=meeting.id)
    session.commit()
    flash(_("Reunión extraordinaria convocada; el caso %(reference)s está en su orden del día.",
            reference=case.reference), "info")
    return redirect(url_for("mesa.meeting", meeting_id=meeting.id))


@bp.post("/mesa/<int:mesa_id>/propuestas/incluir")
@login_required
def include_proposal(mesa_id: int) -> ResponseReturnValue:
    """Put a proposed case on the next planned meeting's agenda instead of convening one."""
    mesa, _role = _mesa_and_role(mesa_id, "mesa.agenda", coordinator=True)
    session, now = db.session(), clock.now()
    case = _case_of_form(mesa)
    meeting = ops.plan_next_meeting(session, mesa, now)
    ops.add_to_agenda(session, mesa, meeting, case.reference, actor=current_user.actor, now=now)
    audit(session, "mesa.agenda", case_id=case.id, object_type="meeting", object_id=meeting.id,
          detail={"added": "manual"})
    session.commit()
    flash(_("El caso %(reference)s está en el orden del día de la próxima reunión.", reference=case.reference), "info")
    return redirect(url_for("mesa.show", mesa_id=mesa.id))


@bp.route("/mesa/<int:mesa_id>/ajustes", methods=["GET", "POST"])
@login_required
def settings(mesa_id: int) -> ResponseReturnValue:
    """Change the meeting interval and the representatives of the member agencies (the coordinator)."""
    mesa, _role = _mesa_and_role(mesa_id, "mesa.settings", coordinator=True)
    session = db.session()
    members = seats(session, mesa)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        interval = request.form.get("interval", "")
        representatives = {seat.agency_id: _int_or_none(request.form.get(f"rep-{seat.agency_id}")) for seat in members}
        try:
            ops.update_settings(session, mesa, interval_days=int(interval) if interval.isdigit() else 0,
                                representatives=representatives, expected_version=_version())
        except InvalidMinutes as exc:
            session.rollback()
            errors, status = exc.errors, 422
        except ConflictError:
            session.rollback()
            flash(_("Otra persona ha cambiado los ajustes de la Mesa mientras tanto: revise los datos."), "error")
            status = 409
        else:
            audit(session, "mesa.settings", object_type="mesa", object_id=mesa.id)
            session.commit()
            flash(_("Ajustes de la Mesa guardados."), "info")
            return redirect(url_for("mesa.show", mesa_id=mesa.id))
        mesa = session.get(Mesa, mesa_id) or mesa
        members = seats(session, mesa)
    return render_template("mesa/settings.html", mesa=mesa, seats=members, errors=errors,
                           people=agency_members(session, [s.agency_id for s in members])), status


# --- Meetings -----------------------------------------------------------------------------------
@bp.get("/mesa/reuniones/<int:meeting_id>")
@login_required
def meeting(meeting_id: int) -> ResponseReturnValue:
    """Show a meeting: its agenda with a summary of each case, and the minutes (editable while open)."""
    meeting, mesa, role = _meeting_and_role(meeting_id, "mesa.read")
    return _meeting_page(meeting, mesa, role)


@bp.post("/mesa/reuniones/<int:meeting_id>/abrir")
@login_required
def open_meeting(meeting_id: int) -> ResponseReturnValue:
    """Open the meeting: the agenda is generated and stored, and the minutes can be taken."""
    return _edit(meeting_id, "mesa.open", lambda m, mesa, now: ops.open_meeting(
        db.session(), mesa, m, expected_version=_version(), now=now), _("Reunión abierta: orden del día generado."))


@bp.post("/mesa/reuniones/<int:meeting_id>/orden-del-dia")
@login_required
def refresh(meeting_id: int) -> ResponseReturnValue:
    """Refresh the open meeting's agenda from the rules (cases added by hand stay)."""
    return _edit(meeting_id, "mesa.agenda", lambda m, mesa, now: ops.refresh_open_agenda(
        db.session(), mesa, m, expected_version=_version(), now=now), _("Orden del día actualizado."))


@bp.post("/mesa/reuniones/<int:meeting_id>/casos")
@login_required
def add_case(meeting_id: int) -> ResponseReturnValue:
    """Add a case of the territory to the agenda by its reference (any member, until the meeting closes)."""
    meeting, mesa, role = _meeting_and_role(meeting_id, "mesa.agenda")
    session, now = db.session(), clock.now()
    try:
        case = ops.add_to_agenda(session, mesa, meeting, request.form.get("reference", ""), actor=current_user.actor,
                                 now=now)
    except InvalidMinutes as exc:
        session.rollback()
        return _meeting_page(meeting, mesa, role, errors=exc.errors, status=422)
    except ConflictError:
        return _conflict(meeting_id, "mesa.agenda")
    audit(session, "mesa.agenda", case_id=case.id, object_type="meeting", object_id=meeting.id,
          detail={"added": "manual"})
    session.commit()
    flash(_("Caso %(reference)s añadido al orden del día.", reference=case.reference), "info")
    return redirect(url_for("mesa.meeting", meeting_id=meeting.id, _anchor=f"case-{case.id}"))


@bp.post("/mesa/reuniones/<int:meeting_id>/asistencia")
@login_required
def attendance(meeting_id: int) -> ResponseReturnValue:
    """Record the attendance of every member agency."""
    def record(m: Meeting, mesa: Mesa, _now: datetime) -> None:
        answers = {seat.agency_id: (request.form.get(f"att-{seat.agency_id}", ""),
                                    request.form.get(f"who-{seat.agency_id}", ""))
                   for seat in seats(db.session(), mesa)}
        ops.record_attendance(db.session(), mesa, m, answers, expected_version=_version())
    return _edit(meeting_id, "mesa.attendance", record, _("Asistencia guardada."), anchor="attendance")


@bp.post("/mesa/reuniones/<int:meeting_id>/notas/<int:case_id>")
@login_required
def note(meeting_id: int, case_id: int) -> ResponseReturnValue:
    """Write the minutes' note on one case."""
    return _edit(meeting_id, "mesa.note", lambda m, _mesa, now: ops.save_note(
        db.session(), m, case_id, request.form.get("note", ""), expected_version=_version(), actor=current_user.actor,
        now=now), _("Nota guardada."), case_id=case_id, anchor=f"case-{case_id}")


@bp.post("/mesa/reuniones/<int:meeting_id>/acuerdos/<int:case_id>")
@login_required
def agreement(meeting_id: int, case_id: int) -> ResponseReturnValue:
    """Record an agreement for one agency: it becomes a step in that agency's worklist."""
    agency = request.form.get("agency", "")
    return _edit(meeting_id, "mesa.agreement", lambda m, mesa, now: ops.add_agreement(
        db.session(), mesa, m, case_id, int(agency) if agency.isdigit() else 0, request.form.get("action", ""),
        _date_field("due_on"), expected_version=_version(), actor=current_user.actor, now=now),
        _("Acuerdo registrado: ya está en la lista de trabajo del organismo."), case_id=case_id,
        anchor=f"case-{case_id}")


@bp.post("/mesa/reuniones/<int:meeting_id>/cerrar")
@login_required
def close(meeting_id: int) -> ResponseReturnValue:
    """Close the minutes: they are frozen and can no longer be edited."""
    return _edit(meeting_id, "mesa.close", lambda m, mesa, now: ops.close_meeting(
        db.session(), mesa, m, expected_version=_version(), actor=current_user.actor, now=now),
        _("Acta cerrada: ya no se puede modificar."))


@bp.get("/mesa/reuniones/<int:meeting_id>/acta")
@login_required
def minutes(meeting_id: int) -> ResponseReturnValue:
    """Show the closed minutes ready to print (references only unless identity is asked for and allowed)."""
    meeting, mesa, _role = _meeting_and_role(meeting_id, "mesa.minutes")
    content, names = _closed_content(meeting)
    html = render_template("mesa/minutes.html", content=content, minutes=minutes_of(db.session(), meeting),
                           meeting=meeting, mesa=mesa, names=names, labels=LABELS)
    _audit_minutes(meeting, content, names, "html")
    return html


@bp.get("/mesa/reuniones/<int:meeting_id>/acta.pdf")
@login_required
def minutes_pdf_view(meeting_id: int) -> ResponseReturnValue:
    """Download the closed minutes as PDF (references only unless identity is asked for and allowed)."""
    meeting, _mesa, _role = _meeting_and_role(meeting_id, "mesa.minutes")
    content, names = _closed_content(meeting)
    minutes = minutes_of(db.session(), meeting)
    assert minutes is not None  # _closed_content checked it
    data = minutes_pdf(content, minutes.sha256, names)
    _audit_minutes(meeting, content, names, "pdf")
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="acta-reunion-{meeting.id}.pdf"'})


# --- Transfers ----------------------------------------------------------------------------------
@bp.post("/mesa/<int:mesa_id>/traslados")
@login_required
def request_transfer(mesa_id: int) -> ResponseReturnValue:
    """Ask another territory's Mesa to take a case (the victim moved)."""
    mesa, _role = _mesa_and_role(mesa_id, "mesa.transfer", coordinator=True)
    session, now = db.session(), clock.now()
    target = _int_or_none(request.form.get("to_mesa"))
    to_mesa = session.get(Mesa, target) if target else None
    case_id = _int_or_none(request.form.get("case_id")) or 0
    if to_mesa is None:
        return _invalid_redirect(InvalidMinutes({"to_mesa": [_("Elija la Mesa de otro territorio.")]}),
                                 url_for("mesa.show", mesa_id=mesa.id, _anchor="transfers"))
    try:
        transfer = ops.request_transfer(session, mesa, case_id, to_mesa, request.form.get("reason", ""),
                                        actor=current_user.actor, now=now)
    except InvalidMinutes as exc:
        return _invalid_redirect(exc, url_for("mesa.show", mesa_id=mesa.id, _anchor="transfers"))
    audit(session, "case.transfer", case_id=case_id, object_type="case_transfer", object_id=transfer.id,
          detail={"step": "requested", "to_territory_id": to_mesa.territory_id})
    session.commit()
    flash(_("Traslado solicitado: la coordinación de %(mesa)s debe aceptarlo.", mesa=to_mesa.name), "info")
    return redirect(url_for("mesa.show", mesa_id=mesa.id, _anchor="transfers"))


@bp.post("/mesa/traslados/<int:transfer_id>/<any(aceptar, rechazar):decision>")
@login_required
def decide_transfer(transfer_id: int, decision: str) -> ResponseReturnValue:
    """Accept or reject a transfer to our territory (the receiving Mesa's coordinator)."""
    session, now = db.session(), clock.now()
    transfer = session.get(CaseTransfer, transfer_id)
    receiving = _mesa_of_territory_or_404(transfer.to_territory_id if transfer else None)
    _require(receiving, "case.transfer", coordinator=True)
    assert transfer is not None  # _mesa_of_territory_or_404 refused a missing one
    try:
        result = ops.decide_transfer(session, transfer, decision == "aceptar", actor=current_user.actor, now=now)
    except ConflictError:
        session.rollback()
        flash(_("Ese traslado ya se ha decidido o el caso ha cambiado de territorio."), "error")
        return redirect(url_for("mesa.show", mesa_id=receiving.id, _anchor="transfers"))
    audit(session, "case.transfer", case_id=transfer.case_id, object_type="case_transfer", object_id=transfer.id,
          detail={"step": result.transfer.status, "moved_tasks": result.moved_tasks})
    session.commit()
    if result.transfer.status == "accepted":
        flash(_("Traslado aceptado: el caso y sus %(count)s pasos abiertos pasan a los organismos de este territorio.",
                count=result.moved_tasks), "info")
    else:
        flash(_("Traslado rechazado."), "info")
    return redirect(url_for("mesa.show", mesa_id=receiving.id, _anchor="transfers"))


@bp.get("/mesa/<int:mesa_id>/traslados")
@login_required
def transfers(mesa_id: int) -> ResponseReturnValue:
    """Show the transfer form and the transfers from and to the territory."""
    mesa, role = _mesa_and_role(mesa_id, "mesa.read", coordinator=True)
    session = db.session()
    preselected = request.args.get("caso", "")
    html = render_template("mesa/transfers.html", mesa=mesa, role=role, cases=followed_cases(session, mesa),
                           mesas=other_mesas(session, mesa), transfers=transfers_of(session, mesa), labels=LABELS,
                           preselected=int(preselected) if preselected.isdigit() else None)
    audit(session, "mesa.read", object_type="mesa", object_id=mesa.id, detail={"view": "transfers"})
    session.commit()
    return html


# --- Helpers ------------------------------------------------------------------------------------
def _deny(action: str, status: int, **kwargs: Any) -> NoReturn:
    db.session.rollback()
    audit_now(db.session(), action, outcome="denied", **kwargs)
    abort(status)


def _require(mesa: Mesa, action: str, *, coordinator: bool = False) -> str:
    """Return the user's role at the Mesa; 403 (audited) for anyone else, or a member where a coordinator must act."""
    role = role_in(db.session(), current_user, mesa)
    if role is None or (coordinator and role != COORDINATOR):
        _deny(action, 403, object_type="mesa", object_id=mesa.id)
    return role


def _mesa_and_role(mesa_id: int, action: str, *, coordinator: bool = False) -> tuple[Mesa, str]:
    mesa = db.session.get(Mesa, mesa_id)
    if mesa is None:
        abort(404)
    return mesa, _require(mesa, action, coordinator=coordinator)


def _mesa_of_territory_or_404(territory_id: int | None) -> Mesa:
    mesa = mesa_of_territory(db.session(), territory_id) if territory_id else None
    if mesa is None:
        abort(404)
    return mesa


def _meeting_and_role(meeting_id: int, action: str, *, coordinator: bool = False) -> tuple[Meeting, Mesa, str]:
    meeting = db.session.get(Meeting, meeting_id)
    mesa = db.session.get(Mesa, meeting.mesa_id) if meeting else None
    if meeting is None or mesa is None:
        abort(404)
    return meeting, mesa, _require(mesa, action, coordinator=coordinator)


def _version() -> int:
    value = request.form.get("version", "")
    if not value.isdigit():
        abort(400)
    return int(value)


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _date_field(name: str) -> date | None:
    try:
        return date.fromisoformat(request.form.get(name, "").strip())
    except ValueError:
        return None


def _datetime_field(name: str) -> datetime | None:
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    try:
        return datetime.fromisoformat(local_to_iso(raw))
    except ValueError:
        return None


def _case_of_form(mesa: Mesa) -> Case:
    case_id = _int_or_none(request.form.get("case_id"))
    case = db.session.get(Case, case_id) if case_id else None
    if case is None or case.territory_id != mesa.territory_id:
        abort(404)
    return case


def _invalid_redirect(exc: InvalidMinutes, to: str) -> ResponseReturnValue:
    db.session.rollback()
    for messages in exc.errors.values():
        for message in messages:
            flash(message, "error")
    return redirect(to)


def _conflict(meeting_id: int, action: str) -> ResponseReturnValue:
    """Answer an edit of stale or closed minutes: 409 with the current meeting page, audited."""
    db.session.rollback()
    meeting, mesa, role = _meeting_and_role(meeting_id, action)
    if meeting.status == "closed":
        flash(_("El acta está cerrada: ya no se puede modificar."), "error")
    else:
        flash(_("Otra persona ha modificado el acta mientras la tenía abierta: esta es su situación actual."), "error")
    audit(db.session(), action, object_type="meeting", object_id=meeting.id, outcome="failed",
          detail={"reason": "closed" if meeting.status == "closed" else "conflict"})
    return _meeting_page(meeting, mesa, role, status=409)


def _edit(meeting_id: int, action: str, change: Any, message: str, *, case_id: int | None = None,
          anchor: str | None = None) -> ResponseReturnValue:
    """Run one change of the minutes as the coordinator: 403 for others, 409 if stale or closed, 422 if invalid."""
    meeting, mesa, _role = _meeting_and_role(meeting_id, action, coordinator=True)
    session, now = db.session(), clock.now()
    locked = ops.lock_meeting(session, meeting.id)
    assert locked is not None  # it was just read
    try:
        change(locked, mesa, now)
    except InvalidMinutes as exc:
        session.rollback()
        audit(session, action, case_id=case_id, object_type="meeting", object_id=meeting_id, outcome="failed",
              detail={"fields": sorted(exc.errors)})
        return _meeting_page(locked, mesa, COORDINATOR, errors=exc.errors, status=422)
    except ConflictError:
        return _conflict(meeting_id, action)
    except (PermissionDeniedError, NotFoundError):
        _deny(action, 403, object_type="meeting", object_id=meeting_id)
    except EngineError as exc:  # the agreement process refused to start: say so, store nothing
        session.rollback()
        return _meeting_page(locked, mesa, COORDINATOR, errors={"(form)": [str(exc)]}, status=422)
    audit(session, action, case_id=case_id, object_type="meeting", object_id=meeting_id)
    session.commit()
    flash(message, "info")
    return redirect(url_for("mesa.meeting", meeting_id=meeting_id, _anchor=anchor) if anchor
                    else url_for("mesa.meeting", meeting_id=meeting_id))


def _meeting_page(meeting: Meeting, mesa: Mesa, role: str, *, errors: Mapping[str, Sequence[str]] | None = None,
                  status: int = 200) -> ResponseReturnValue:
    """Render a meeting; every case summary shown is audited as a read via the Mesa."""
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
    for case_id in case_ids:
        audit(session, "case.read", case_id=case_id, object_type="case", object_id=case_id,
              detail={"via": "mesa", "meeting_id": meeting.id})
    audit(session, "mesa.read", object_type="meeting", object_id=meeting.id, detail={"view": "meeting"})
    session.commit()
    return make_response(html, status)


def _closed_content(meeting: Meeting) -> tuple[dict[str, Any], dict[int, str]]:
    """Return a closed meeting's snapshot, and the victims' names the viewer asked for and may see."""
    minutes = minutes_of(db.session(), meeting)
    if minutes is None:
        abort(404)
    content = dict(minutes.content)
    names: dict[int, str] = {}
    if request.args.get("identidad") == "1":
        names = _allowed_names(db.session(), snapshot_detail(content))
    return content, names


def _allowed_names(session: Session, case_ids: list[int]) -> dict[int, str]:
    names = {}
    for case in session.execute(select(Case).where(Case.id.in_(case_ids))).scalars():
        if can_see_identity(session, current_user, case):
            name = (parties(session, case.id).get("victim") or {}).get("name")
            if name:
                names[case.id] = str(name)
    return names


def _audit_minutes(meeting: Meeting, content: Mapping[str, Any], names: Mapping[int, str], form: str) -> None:
    session = db.session()
    for case_id in snapshot_detail(dict(content)):
        audit(session, "case.read", case_id=case_id, object_type="case", object_id=case_id,
              detail={"via": "mesa", "minutes": form, "identity": case_id in names})
    audit(session, "mesa.minutes", object_type="meeting", object_id=meeting.id, detail={"format": form})
    session.commit()
