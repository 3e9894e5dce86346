"""Transfer pages: the transfer form of a Mesa, requesting a transfer, and the receiving coordinator's decision.

The URLs stay under /mesa/: a transfer is asked and decided by the coordinators of the two Mesas.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine.errors import ConflictError
from engine.models import CaseTransfer, Mesa
from webapp import clock
from webapp.audit import audit
from webapp.extensions import db
from webapp.limits import parse_id
from webapp.mesa.views.blueprint import LABELS
from webapp.mesa.views.common import invalid_redirect, mesa_and_role, mesa_of_territory_or_404, require_role
from webapp.requests import posted_int
from webapp.transaction import discard
from webapp.transfers import operations as ops
from webapp.transfers.queries import followed_cases, other_mesas, transfers_of
from webapp.validation import InvalidInput

bp = Blueprint("transfers", __name__, template_folder="templates")


@bp.get("/mesa/<id:mesa_id>/traslados")
@login_required
def index(mesa_id: int) -> ResponseReturnValue:
    """Show the transfer form and the transfers from and to the territory."""
    mesa, role = mesa_and_role(mesa_id, "mesa.read", coordinator=True)
    session = db.session()
    preselected = request.args.get("caso", "")
    html = render_template("transfers/index.html", mesa=mesa, role=role, cases=followed_cases(session, mesa),
                           mesas=other_mesas(session, mesa), transfers=transfers_of(session, mesa), labels=LABELS,
                           preselected=parse_id(preselected))
    audit(session, "mesa.read", object_type="mesa", object_id=mesa.id, detail={"view": "transfers"})
    return html


@bp.post("/mesa/<id:mesa_id>/traslados")
@login_required
def create(mesa_id: int) -> ResponseReturnValue:
    """Ask another territory's Mesa to take a case (the victim moved)."""
    mesa, _role = mesa_and_role(mesa_id, "mesa.transfer", coordinator=True)
    session, now = db.session(), clock.now()
    target = posted_int("to_mesa")
    to_mesa = session.get(Mesa, target) if target else None
    case_id = posted_int("case_id", 0)
    if to_mesa is None:
        return invalid_redirect(InvalidInput({"to_mesa": [_("Elija la Mesa de otro territorio.")]}),
                                url_for("mesa.show", mesa_id=mesa.id, _anchor="transfers"))
    try:
        transfer = ops.request_transfer(session, mesa, case_id, to_mesa, request.form.get("reason", ""),
                                        actor=current_user.actor, now=now)
    except InvalidInput as exc:
        return invalid_redirect(exc, url_for("mesa.show", mesa_id=mesa.id, _anchor="transfers"))
    audit(session, "case.transfer", case_id=case_id, object_type="case_transfer", object_id=transfer.id,
          detail={"step": "requested", "to_territory_id": to_mesa.territory_id})
    flash(_("Traslado solicitado: la coordinación de %(mesa)s debe aceptarlo.", mesa=to_mesa.name), "info")
    return redirect(url_for("mesa.show", mesa_id=mesa.id, _anchor="transfers"))


@bp.post("/mesa/traslados/<id:transfer_id>/<any(aceptar, rechazar):decision>")
@login_required
def decide(transfer_id: int, decision: str) -> ResponseReturnValue:
    """Accept or reject a transfer to our territory (the receiving Mesa's coordinator)."""
    session, now = db.session(), clock.now()
    transfer = session.get(CaseTransfer, transfer_id)
    receiving = mesa_of_territory_or_404(transfer.to_territory_id if transfer else None)
    require_role(receiving, "case.transfer", coordinator=True)
    assert transfer is not None  # mesa_of_territory_or_404 refused a missing one
    try:
        result = ops.decide_transfer(session, transfer, decision == "aceptar", actor=current_user.actor, now=now)
    except ConflictError:
        discard()  # the redirect commits: keep nothing of the refused decision
        flash(_("Ese traslado ya se ha decidido o el caso ha cambiado de territorio."), "error")
        return redirect(url_for("mesa.show", mesa_id=receiving.id, _anchor="transfers"))
    audit(session, "case.transfer", case_id=transfer.case_id, object_type="case_transfer", object_id=transfer.id,
          detail={"step": result.transfer.status, "moved_tasks": result.moved_tasks})
    if result.transfer.status == "accepted":
        flash(_("Traslado aceptado: el caso y sus %(count)s pasos abiertos pasan a los organismos de este territorio.",
                count=result.moved_tasks), "info")
    else:
        flash(_("Traslado rechazado."), "info")
    return redirect(url_for("mesa.show", mesa_id=receiving.id, _anchor="transfers"))
