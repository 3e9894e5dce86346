"""Administration of multi-factor sign-in (role admin): which roles require it, and resetting a user's."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import select

from engine.models import UserAccount, UserMfa
from webapp.admin.views import ROLE_LABELS, ConfirmForm, admins_only
from webapp.auth.mfa import POLICY_ROLES, required_roles, reset_mfa, set_role_policy
from webapp.auth.mfa_step import configured_roles
from webapp.extensions import db

bp = Blueprint("admin_mfa", __name__, template_folder="templates", url_prefix="/admin/doble-factor")
bp.before_request(admins_only)

POLICY_LABELS = {**ROLE_LABELS, "coordinator": _l("Coordinación de la Mesa")}


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    """Show which roles require a second factor and each user's state."""
    users = db.session.execute(
        select(UserAccount, UserMfa).outerjoin(UserMfa, UserMfa.user_id == UserAccount.id)
        .order_by(UserAccount.username)
    ).all()
    return render_template("admin/mfa.html", users=users, labels=POLICY_LABELS, roles=POLICY_ROLES,
                           required=required_roles(db.session(), configured_roles()), confirm=ConfirmForm())


@bp.post("/politica")
@login_required
def policy() -> ResponseReturnValue:
    """Record, for each role, whether its users must sign in with a second factor."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    chosen = set(request.form.getlist("required"))
    now = datetime.now(UTC)
    current = required_roles(db.session(), configured_roles())
    for role in POLICY_ROLES:
        if (role in chosen) != (role in current):
            set_role_policy(db.session(), role, role in chosen, now=now)
    flash(_("Política de verificación en dos pasos guardada."), "info")
    return redirect(url_for("admin_mfa.index"))


@bp.post("/usuarios/<id:user_id>/restablecer")
@login_required
def reset(user_id: int) -> ResponseReturnValue:
    """Remove a user's second factor (lost phone): she enrols again at her next sign-in if her role requires it."""
    user = db.session.get(UserAccount, user_id) or abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    reset_mfa(db.session(), user, now=datetime.now(UTC))
    flash(_("Segundo factor de %(username)s restablecido.", username=user.username), "info")
    return redirect(url_for("admin_mfa.index"))
