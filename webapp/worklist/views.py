"""The worklist page: my tasks, my agency's queue and what comes next, most urgent first."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from engine.levels import current_levels
from engine.models import Territory
from webapp import clock
from webapp.audit import audit
from webapp.extensions import db
from webapp.limits import parse_id
from webapp.worklist.queries import PER_PAGE, TABS, Filters, step_choices, tab_counts, worklist
from webapp.worklist.timeleft import time_left

bp = Blueprint("worklist", __name__, template_folder="templates")

TAB_LABELS = {"mine": _l("Mis tareas"), "agency": _l("Mi organismo"), "upcoming": _l("Próximas")}
DUE_LABELS = {"overdue": _l("Vencidas"), "today": _l("Vencen en 24 horas"), "week": _l("Vencen en 7 días")}


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    """Show one tab of the worklist with its filters and page; the first visit opens the busiest useful tab."""
    now = clock.now()
    counts = tab_counts(db.session(), current_user, now)
    tab = request.args.get("tab")
    if tab not in TABS:
        tab = "mine" if counts["mine"] else "agency"
    scale = current_levels(db.session())
    filters = Filters.from_args(request.args, scale.codes)
    page_number = parse_id(request.args.get("page")) or 1
    per_page = int(current_app.config.get("WORKLIST_PER_PAGE", PER_PAGE))
    page = worklist(db.session(), current_user, tab, filters, page=page_number, per_page=per_page, now=now)
    territories = db.session.execute(
        select(Territory.id, Territory.name).where(Territory.id.in_(current_user.territory_ids))
        .order_by(Territory.name)
    ).all()
    html = render_template(
        "worklist/index.html", tab=tab, counts=counts, page=page, filters=filters, tab_labels=TAB_LABELS,
        due_labels=DUE_LABELS, risk_levels=tuple(reversed(scale.codes)), steps=step_choices(db.session(), current_user),
        territories=territories, back=request.full_path.rstrip("?"), time_left=time_left, now=now,
    )
    audit(db.session(), "worklist.read", detail={"tab": tab, "case_ids": sorted({row.case_id for row in page.rows})})
    return html
