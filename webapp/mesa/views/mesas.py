"""Mesa pages: the user's Mesas, a Mesa with its meetings and proposals, convening, and its settings."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine.errors import ConflictError
from engine.models import Mesa
from webapp import clock
from webapp.audit import audit
from webapp.extensions import db
from webapp.mesa import operations as ops
from webapp.mesa.queries import (
    COORDINATOR,
    agency_members,
    meetings,
    mesas_of,
    next_planned,
    proposals,
    seats,
    territory_name,
)
from webapp.mesa.schedule import convene_extraordinary, next_working_day, next_working_day_iso, plan_next_meeting
from webapp.mesa.settings import update_settings
from webapp.mesa.views.blueprint import LABELS, bp
from webapp.mesa.views.common import invalid_redirect, mesa_and_role, posted_case, posted_datetime
from webapp.requests import deny, posted_int, posted_version
from webapp.transaction import discard
from webapp.transfers.queries import transfers_of
from webapp.validation import InvalidInput


@bp.get("/mesa")
@login_required
def index() -> ResponseReturnValue:
    """List the Mesas the user coordinates or sits at (straight to it when there is one)."""
    mine = mesas_of(db.session(), current_user)
    if not mine:
        deny(403, action="mesa.read")
    if len(mine) == 1:
        return redirect(url_for("mesa.show", mesa_id=mine[0][0].id))
    return render_template("mesa/index.html", mesas=mine)


@bp.get("/mesa/<id:mesa_id>")
@login_required
def show(mesa_id: int) -> ResponseReturnValue:
    """Show a Mesa: next meeting, proposed extraordinary meetings, past meetings, members, transfers."""
    mesa, role = mesa_and_role(mesa_id, "mesa.read")
    session, now = db.session(), clock.now()
    found = proposals(session, mesa, now) if role == COORDINATOR else []
    html = render_template(
        "mesa/show.html", mesa=mesa, role=role, territory=territory_name(session, mesa.territory_id),
        meetings=meetings(session, mesa), next_meeting=next_planned(session, mesa), proposals=found,
        seats=seats(session, mesa), transfers=transfers_of(session, mesa), labels=LABELS,
        default_when=next_working_day_iso(session, mesa, now),
    )
    audit(session, "mesa.read", object_type="mesa", object_id=mesa.id,
          detail={"view": "mesa", "case_ids": sorted(p.case_id for p in found)})
    return html


@bp.post("/mesa/<id:mesa_id>/extraordinarias")
@login_required
def convene(mesa_id: int) -> ResponseReturnValue:
    """Convene an extraordinary meeting for a proposed incident or complaint (the case on its agenda)."""
    mesa, _role = mesa_and_role(mesa_id, "mesa.convene", coordinator=True)
    session, now = db.session(), clock.now()
    case = posted_case(mesa)
    when = posted_datetime("scheduled_at") or next_working_day(session, mesa, now)
    try:
        meeting = convene_extraordinary(session, mesa, case, request.form.get("trigger", ""), when,
                                        actor=current_user.actor, now=now)
    except InvalidInput as exc:
        return invalid_redirect(exc, url_for("mesa.show", mesa_id=mesa.id))
    except ValueError:
        abort(400)
    audit(session, "mesa.convene", case_id=case.id, object_type="meeting", object_id=meeting.id)
    flash(_("Reunión extraordinaria convocada; el caso %(reference)s está en su orden del día.",
            reference=case.reference), "info")
    return redirect(url_for("mesa.meeting", meeting_id=meeting.id))


@bp.post("/mesa/<id:mesa_id>/propuestas/incluir")
@login_required
def include_proposal(mesa_id: int) -> ResponseReturnValue:
    """Put a proposed case on the next planned meeting's agenda instead of convening one."""
    mesa, _role = mesa_and_role(mesa_id, "mesa.agenda", coordinator=True)
    session, now = db.session(), clock.now()
    case = posted_case(mesa)
    meeting = plan_next_meeting(session, mesa, now)
    ops.add_to_agenda(session, mesa, meeting, case.reference, actor=current_user.actor, now=now)
    audit(session, "mesa.agenda", case_id=case.id, object_type="meeting", object_id=meeting.id,
          detail={"added": "manual"})
    flash(_("El caso %(reference)s está en el orden del día de la próxima reunión.", reference=case.reference), "info")
    return redirect(url_for("mesa.show", mesa_id=mesa.id))


@bp.route("/mesa/<id:mesa_id>/ajustes", methods=["GET", "POST"])
@login_required
def settings(mesa_id: int) -> ResponseReturnValue:
    """Change the meeting interval and the representatives of the member agencies (the coordinator)."""
    mesa, _role = mesa_and_role(mesa_id, "mesa.settings", coordinator=True)
    session = db.session()
    members = seats(session, mesa)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        representatives = {seat.agency_id: posted_int(f"rep-{seat.agency_id}") for seat in members}
        try:
            update_settings(session, mesa, interval_days=posted_int("interval", 0),
                            representatives=representatives, expected_version=posted_version())
        except InvalidInput as exc:
            discard()  # show the settings as stored
            errors, status = exc.errors, 422
        except ConflictError:
            discard()
            flash(_("Otra persona ha cambiado los ajustes de la Mesa mientras tanto: revise los datos."), "error")
            status = 409
        else:
            audit(session, "mesa.settings", object_type="mesa", object_id=mesa.id)
            flash(_("Ajustes de la Mesa guardados."), "info")
            return redirect(url_for("mesa.show", mesa_id=mesa.id))
        mesa = session.get(Mesa, mesa_id) or mesa
        members = seats(session, mesa)
    return render_template("mesa/settings.html", mesa=mesa, seats=members, errors=errors,
                           people=agency_members(session, [s.agency_id for s in members])), status
