"""The `mesa` blueprint, the labels its pages show, and the header's Mesa link."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from webapp import clock
from webapp.extensions import db
from webapp.mesa import labels
from webapp.mesa.queries import COORDINATOR, mesas_of, proposals

bp = Blueprint("mesa", __name__, template_folder="../templates")
log = logging.getLogger(__name__)

LABELS = {"reasons": labels.REASON_LABELS, "attendance": labels.ATTENDANCE_LABELS, "kinds": labels.KIND_LABELS,
          "statuses": labels.STATUS_LABELS, "agreements": labels.AGREEMENT_LABELS, "outcomes": labels.OUTCOME_LABELS,
          "transfers": labels.TRANSFER_LABELS}


@bp.app_context_processor
def mesa_navigation() -> dict[str, Any]:
    """Give the header the Mesa link for those who sit at one, with the extraordinary meetings proposed."""
    if not current_user or not getattr(current_user, "is_authenticated", False) or current_user.agency_id is None:
        return {"mesa_nav": None}
    session = db.session()
    try:
        mine = mesas_of(session, current_user)
        now = clock.now()
        proposed = sum(len(proposals(session, mesa, now)) for mesa, role in mine if role == COORDINATOR)
    except SQLAlchemyError:  # an error page must still render when the database is what failed
        log.warning("could not read the user's Mesas", exc_info=True)
        return {"mesa_nav": None}
    return {"mesa_nav": {"proposed": proposed} if mine else None}
