"""The supervisor's board: late steps, load per agency and professional, risk, re-assessments, timings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, send_from_directory, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from engine.models import Territory
from webapp import clock
from webapp.audit import audit
from webapp.auth.principal import ROLE_SUPERVISOR
from webapp.extensions import db
from webapp.limits import parse_id
from webapp.requests import deny
from webapp.supervision.charts import chart_data
from webapp.supervision.export import TABLES, export_table, to_csv
from webapp.supervision.operations import parse_selection, reassign_tasks
from webapp.supervision.queries import EXPORT_LIMIT, LIST_LIMIT, PERIODS, BoardFilters, board, members

bp = Blueprint("supervision", __name__, template_folder="templates")

# Chart.js comes from the npm package the repository pins (package-lock.json): no CDN.
CHART_JS_DIST = Path(__file__).resolve().parents[2] / "node_modules" / "chart.js" / "dist"


@bp.get("/supervision")
@login_required
def index() -> ResponseReturnValue:
    """Show the board for the supervisor's territories (or the one chosen) and period."""
    _require_supervisor("supervision.read")
    filters = BoardFilters.from_args(request.args, current_user)
    data = board(db.session(), current_user, filters, clock.now())
    territories = db.session.execute(select(Territory.id, Territory.name)
                                     .where(Territory.id.in_(current_user.territory_ids)).order_by(Territory.name)).all()
    html = render_template(
        "supervision/index.html", board=data, filters=filters, periods=PERIODS, territories=territories,
        members=members(db.session(), current_user.agency_id), charts=chart_data(data), limit=LIST_LIMIT,
        export_limit=EXPORT_LIMIT,
    )
    audit(db.session(), "supervision.read", detail={"view": "board", **filters.as_args(), "case_ids": data.case_ids()})
    return html


@bp.get("/supervision/export/<name>.csv")
@login_required
def export(name: str) -> ResponseReturnValue:
    """Download one of the board's tables as CSV, with the board's filters."""
    _require_supervisor("supervision.read")
    if name not in TABLES:
        abort(404)
    filters = BoardFilters.from_args(request.args, current_user)
    table = export_table(db.session(), current_user, filters, name, clock.now())
    audit(db.session(), "supervision.read", detail={"view": "export", "table": name, **filters.as_args(),
                                                    "case_ids": table.case_ids})
    return Response(to_csv(table), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="supervision-{name}.csv"'})


@bp.post("/supervision/reasignar")
@login_required
def reassign() -> ResponseReturnValue:
    """Assign the checked steps of the supervisor's agency to one of its members."""
    _require_supervisor("supervision.reassign")
    filters: dict[str, Any] = BoardFilters.from_args(request.form, current_user).as_args()
    back = url_for("supervision.index", **filters)
    selection = parse_selection(request.form.getlist("task"))
    assignee = parse_id(request.form.get("assignee"))
    team = dict(members(db.session(), current_user.agency_id))
    if not selection or assignee is None or assignee not in team:
        flash(_("Marque al menos un paso y elija a una persona de su organismo."), "error")
        return redirect(back)
    report = reassign_tasks(db.session(), current_user, selection, assignee, now=clock.now())
    audit(db.session(), "supervision.reassign", object_type="user_account", object_id=assignee,
          outcome="ok" if report.assigned else "denied" if report.refused else "failed",
          detail={"assigned": report.assigned, "conflicts": report.conflicts, "refused": report.refused})
    if report.assigned:
        flash(_("Pasos asignados a %(name)s: %(count)s.", name=team[assignee], count=len(report.assigned)), "info")
    if report.conflicts:
        flash(_("Estos pasos han cambiado mientras tanto y no se han asignado: %(cases)s. Revise la lista.",
                cases=", ".join(report.labels(report.conflicts))), "error")
    if report.refused:
        flash(_("Estos pasos no son de su organismo y no se han asignado: %(cases)s.",
                cases=", ".join(report.labels(report.refused))), "error")
    return redirect(back)


@bp.get("/vendor/chart.js/<path:filename>")
@login_required
def chart_js(filename: str) -> ResponseReturnValue:
    """Serve the Chart.js bundle from the repository's node_modules."""
    return send_from_directory(CHART_JS_DIST, filename, max_age=86400)


def _require_supervisor(action: str) -> None:
    """Only supervisors see the board: anyone else gets 403, and the refusal is audited."""
    if not current_user.has_role(ROLE_SUPERVISOR):
        deny(403, action=action)
