"""Mis sesiones: one's open sessions (browsers and API tokens), and closing all but this one."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import ngettext
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from webapp.audit import audit
from webapp.auth.sessions import current_session_id, lifetimes, open_sessions, revoke_all
from webapp.extensions import db

bp = Blueprint("sessions", __name__, template_folder="templates", url_prefix="/sesiones")


class CloseOthersForm(FlaskForm):  # type: ignore[misc]
    """The "close the others" button: only its CSRF token."""


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    """List the signed-in user's open sessions, this one marked."""
    rows = open_sessions(db.session(), current_user.user_id, now=datetime.now(UTC), lifetimes=lifetimes())
    return render_template("auth/sessions.html", sessions=rows, current_id=current_session_id(),
                           form=CloseOthersForm())


@bp.post("/cerrar-las-demas")
@login_required
def close_others() -> ResponseReturnValue:
    """End every other session and API token of the signed-in user."""
    if not CloseOthersForm().validate_on_submit():
        return redirect(url_for("sessions.index"))
    closed = revoke_all(db.session(), current_user.user_id, now=datetime.now(UTC), reason="closed",
                        keep=current_session_id())
    audit(db.session(), "session.close_others", object_type="user", object_id=current_user.user_id,
          detail={"closed": closed})
    flash(ngettext("Se ha cerrado %(num)d sesión.", "Se han cerrado %(num)d sesiones.", closed), "info")
    return redirect(url_for("sessions.index"))
