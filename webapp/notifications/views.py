"""Notification pages: the bell's count in every header, the list of notices, e-mail preferences."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_required
from sqlalchemy.exc import SQLAlchemyError

from engine.models.notification import NOTIFICATION_KINDS
from engine.notifications import email_preferences, mark_all_read, mark_read, set_email_preferences
from webapp import clock
from webapp.extensions import db
from webapp.limits import parse_id
from webapp.navigation import safe_next
from webapp.notifications.queries import email_address, notice_page, target, unread_count

bp = Blueprint("notifications", __name__, template_folder="templates")
log = logging.getLogger(__name__)

KIND_LABELS = {
    "reminder": _l("El plazo se acerca"),
    "agency": _l("Paso vencido"),
    "supervisor": _l("Paso vencido sin atender (supervisión)"),
    "coordinator": _l("Paso vencido sin atender (coordinación de la Mesa)"),
    "invariant": _l("Garantía del protocolo incumplida"),
}
PREFERENCE_LABELS = {
    "reminder": _l("Recordatorios antes del plazo de un paso"),
    "agency": _l("Pasos vencidos de mi organismo o asignados a mí"),
    "supervisor": _l("Pasos de mi organismo que siguen sin atender (si superviso)"),
    "coordinator": _l("Pasos escalados a la coordinación de la Mesa (si la coordino)"),
    "invariant": _l("Garantías del protocolo incumplidas en un caso (si superviso o coordino)"),
}


@bp.app_context_processor
def bell() -> dict[str, Any]:
    """Give every page the signed-in user's unread count for the bell in the header."""
    if not current_user or not getattr(current_user, "is_authenticated", False):
        return {"unread_notifications": 0}
    try:
        return {"unread_notifications": unread_count(db.session(), current_user.user_id)}
    except SQLAlchemyError:  # an error page must still render when the database is what failed
        log.warning("could not count unread notifications", exc_info=True)
        return {"unread_notifications": 0}


@bp.get("/avisos")
@login_required
def index() -> ResponseReturnValue:
    """List the user's notices, newest first."""
    page_number = parse_id(request.args.get("page")) or 1
    page = notice_page(db.session(), current_user.user_id, page_number)
    return render_template("notifications/index.html", page=page, kind_labels=KIND_LABELS,
                           back=request.full_path.rstrip("?"))


@bp.get("/avisos/<id:notification_id>")
@login_required
def open_notice(notification_id: int) -> ResponseReturnValue:
    """Mark a notice read and go to the task or case it is about."""
    notice = mark_read(db.session(), current_user.user_id, notification_id, clock.now())
    if notice is None:
        abort(404)
    endpoint, values = target(notice)
    return redirect(url_for(endpoint, **values))


@bp.post("/avisos/<id:notification_id>/leido")
@login_required
def read(notification_id: int) -> ResponseReturnValue:
    """Mark one notice read."""
    if mark_read(db.session(), current_user.user_id, notification_id, clock.now()) is None:
        abort(404)
    return redirect(safe_next(request.form.get("next"), url_for("notifications.index")))


@bp.post("/avisos/leidos")
@login_required
def read_all() -> ResponseReturnValue:
    """Mark every notice of the user read."""
    count = mark_all_read(db.session(), current_user.user_id, clock.now())
    flash(ngettext("%(num)d aviso marcado como leído.", "%(num)d avisos marcados como leídos.", count))
    return redirect(safe_next(request.form.get("next"), url_for("notifications.index")))


@bp.route("/avisos/preferencias", methods=["GET", "POST"])
@login_required
def preferences() -> ResponseReturnValue:
    """Choose which notices also come by e-mail (in the app they always show)."""
    if request.method == "POST":
        wanted = {kind: request.form.get(f"email_{kind}") == "on" for kind in NOTIFICATION_KINDS}
        set_email_preferences(db.session(), current_user.user_id, wanted)
        flash(_("Preferencias guardadas."))
        return redirect(url_for("notifications.preferences"))
    return render_template("notifications/preferences.html", labels=PREFERENCE_LABELS,
                           wanted=email_preferences(db.session(), current_user.user_id),
                           address=email_address(db.session(), current_user.user_id))
