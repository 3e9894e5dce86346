"""The resources directory: the services of the user's territories; the Mesa's coordinator edits them."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from engine.errors import ConflictError
from engine.models import Resource, Territory
from engine.resource_kinds import RESOURCE_KINDS
from webapp import clock
from webapp.audit import audit
from webapp.extensions import db
from webapp.limits import parse_id
from webapp.mesa.labels import RESOURCE_KIND_LABELS
from webapp.requests import deny, posted_int
from webapp.resources.operations import LIMITS, save_resource, withdraw_resource
from webapp.resources.queries import can_edit, directory
from webapp.validation import InvalidInput

bp = Blueprint("resources", __name__, template_folder="templates")


@bp.get("/recursos")
@login_required
def index() -> ResponseReturnValue:
    """List the services of the user's territories (or the one chosen), by kind."""
    territories = _territories()
    chosen = request.args.get("territory", "")
    shown = [t for t in territories if str(t[0]) == chosen] or territories
    session = db.session()
    editable = {territory_id for territory_id, _name in shown if can_edit(session, current_user, territory_id)}
    return render_template("resources/index.html", territories=shown,
                           resources=directory(session, [t[0] for t in shown]), editable=editable,
                           kinds=RESOURCE_KIND_LABELS)


@bp.route("/recursos/nuevo", methods=["GET", "POST"])
@login_required
def new() -> ResponseReturnValue:
    """Add a service to a territory's directory (its Mesa's coordinator)."""
    territory_id = parse_id(request.values.get("territory")) or 0
    _require_editor(territory_id)
    return _form(None, territory_id)


@bp.route("/recursos/<id:resource_id>", methods=["GET", "POST"])
@login_required
def edit(resource_id: int) -> ResponseReturnValue:
    """Change a service of the directory (its Mesa's coordinator)."""
    resource = db.session.get(Resource, resource_id)
    if resource is None or not resource.active:
        abort(404)
    _require_editor(resource.territory_id)
    return _form(resource, resource.territory_id)


@bp.post("/recursos/<id:resource_id>/baja")
@login_required
def withdraw(resource_id: int) -> ResponseReturnValue:
    """Take a service out of the directory."""
    resource = db.session.get(Resource, resource_id)
    if resource is None or not resource.active:
        abort(404)
    _require_editor(resource.territory_id)
    try:
        withdraw_resource(db.session(), resource, expected_version=posted_int("version", -1),
                          actor=current_user.actor, now=clock.now())
    except ConflictError:  # refused before any change: nothing to undo
        flash(_("Otra persona ha cambiado este recurso mientras tanto: revise los datos."), "error")
        return redirect(url_for("resources.edit", resource_id=resource_id)), 303
    audit(db.session(), "resource.withdraw", object_type="resource", object_id=resource_id)
    flash(_("Recurso dado de baja."), "info")
    return redirect(url_for("resources.index", territory=resource.territory_id))


def _form(resource: Resource | None, territory_id: int) -> ResponseReturnValue:
    errors: dict[str, list[str]] = {}
    values = {field: getattr(resource, field) for field in ("kind", *LIMITS)} if resource else {"kind": "other"}
    status = 200
    if request.method == "POST":
        values = {field: request.form.get(field, "") for field in ("kind", *LIMITS)}
        try:
            saved = save_resource(db.session(), resource, territory_id, values,
                                  expected_version=posted_int("version"), actor=current_user.actor, now=clock.now())
        except InvalidInput as exc:  # the 4xx answers roll the request back
            errors, status = exc.errors, 422
        except ConflictError:  # refused before any change: the form shows the resource as it is now
            flash(_("Otra persona ha cambiado este recurso mientras tanto: revise los datos."), "error")
            status = 409
        else:
            audit(db.session(), "resource.save", object_type="resource", object_id=saved.id)
            flash(_("Recurso guardado."), "info")
            return redirect(url_for("resources.index", territory=territory_id))
    return render_template("resources/form.html", resource=resource, territory_id=territory_id, values=values,
                           errors=errors, kinds=[(k, RESOURCE_KIND_LABELS[k]) for k in RESOURCE_KINDS]), status


def _territories() -> list[tuple[int, str]]:
    return [(territory_id, name) for territory_id, name in db.session.execute(
        select(Territory.id, Territory.name).where(Territory.id.in_(current_user.territory_ids))
        .order_by(Territory.name)
    ).all()]


def _require_editor(territory_id: int) -> None:
    if not territory_id or not can_edit(db.session(), current_user, territory_id):
        deny(403, action="resource.save", object_type=None, detail={"territory_id": territory_id})
