"""Status views: the overview page and the health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from flask.typing import ResponseReturnValue
from flask_login import login_required
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp.extensions import db
from webapp.status.queries import overview

bp = Blueprint("status", __name__, template_folder="templates")


@bp.get("/estado")
@login_required
def index() -> ResponseReturnValue:
    """Show the deployed definitions and how many cases and open tasks there are."""
    return render_template("status/index.html", overview=overview(db.session()))


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Tell a load balancer whether the app can reach its database."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return jsonify(status="error", database="error"), 503
    return jsonify(status="ok", database="ok")
