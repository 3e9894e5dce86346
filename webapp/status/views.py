"""Status views: the overview page and the health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp.auth.principal import ROLE_ADMIN
from webapp.extensions import db
from webapp.status.queries import overview

bp = Blueprint("status", __name__, template_folder="templates")


@bp.get("/estado")
@login_required
def index() -> ResponseReturnValue:
    """Show the deployed definitions and how many cases and open tasks the user's territories have (admins: all)."""
    territories = None if current_user.has_role(ROLE_ADMIN) else current_user.territory_ids
    return render_template("status/index.html", overview=overview(db.session(), territories))


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Tell a load balancer whether the app can reach its database."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return jsonify(status="error", database="error"), 503
    return jsonify(status="ok", database="ok")
