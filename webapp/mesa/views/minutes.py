"""The closed minutes, to print and as PDF: references only unless identity is asked for and allowed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Case, Meeting
from webapp.access import can_see_identity
from webapp.audit import audit
from webapp.cases.queries import parties
from webapp.extensions import db
from webapp.mesa.minutes import minutes_of, snapshot_detail
from webapp.mesa.pdf import minutes_pdf
from webapp.mesa.views.blueprint import LABELS, bp
from webapp.mesa.views.common import meeting_and_role


@bp.get("/mesa/reuniones/<id:meeting_id>/acta")
@login_required
def minutes(meeting_id: int) -> ResponseReturnValue:
    """Show the closed minutes ready to print (references only unless identity is asked for and allowed)."""
    meeting, mesa, _role = meeting_and_role(meeting_id, "mesa.minutes")
    content, names = _closed_content(meeting)
    html = render_template("mesa/minutes.html", content=content, minutes=minutes_of(db.session(), meeting),
                           meeting=meeting, mesa=mesa, names=names, labels=LABELS)
    _audit_minutes(meeting, content, names, "html")
    return html


@bp.get("/mesa/reuniones/<id:meeting_id>/acta.pdf")
@login_required
def minutes_pdf_view(meeting_id: int) -> ResponseReturnValue:
    """Download the closed minutes as PDF (references only unless identity is asked for and allowed)."""
    meeting, _mesa, _role = meeting_and_role(meeting_id, "mesa.minutes")
    content, names = _closed_content(meeting)
    minutes = minutes_of(db.session(), meeting)
    assert minutes is not None  # _closed_content checked it
    data = minutes_pdf(content, minutes.sha256, names)
    _audit_minutes(meeting, content, names, "pdf")
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="acta-reunion-{meeting.id}.pdf"'})


def _closed_content(meeting: Meeting) -> tuple[dict[str, Any], dict[int, str]]:
    """Return a closed meeting's snapshot, and the victims' names the viewer asked for and may see."""
    minutes = minutes_of(db.session(), meeting)
    if minutes is None:
        abort(404)
    content = dict(minutes.content)
    names: dict[int, str] = {}
    if request.args.get("identidad") == "1":
        names = _allowed_names(db.session(), snapshot_detail(content))
    return content, names


def _allowed_names(session: Session, case_ids: list[int]) -> dict[int, str]:
    names = {}
    for case in session.execute(select(Case).where(Case.id.in_(case_ids))).scalars():
        if can_see_identity(session, current_user, case):
            name = (parties(session, case.id).get("victim") or {}).get("name")
            if name:
                names[case.id] = str(name)
    return names


def _audit_minutes(meeting: Meeting, content: Mapping[str, Any], names: Mapping[int, str], form: str) -> None:
    session = db.session()
    for case_id in snapshot_detail(dict(content)):
        audit(session, "case.read", case_id=case_id, object_type="case", object_id=case_id,
              detail={"via": "mesa", "minutes": form, "identity": case_id in names})
    audit(session, "mesa.minutes", object_type="meeting", object_id=meeting.id, detail={"format": form})
