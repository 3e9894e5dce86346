"""Case pages: register a detection, the case page with its diagrams, report a new incident."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, send_from_directory, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from engine.errors import NotFoundError, TaskDataError
from engine.execution import start_case, start_process
from engine.forms import FormDefinition, validate_data
from engine.models import Case, Definition, ProcessInstance, Territory
from engine.persistence import lock_case
from webapp import clock, form_html
from webapp.access import can_see_case, can_see_identity
from webapp.audit import audit, audit_page
from webapp.cases.queries import diagrams, parties, start_records, summary, timeline
from webapp.cases.starting import identity_form, split_identity, start_form
from webapp.extensions import db
from webapp.limits import parse_id
from webapp.requests import deny

bp = Blueprint("cases", __name__, template_folder="templates")

INTAKE, INCIDENT = "intake", "incident"
# The bpmn-js viewer comes from the npm package the repository pins (package-lock.json): no CDN.
BPMN_JS_DIST = Path(__file__).resolve().parents[2] / "node_modules" / "bpmn-js" / "dist"
IDENTITY_PREFIX = "id"


@bp.get("/casos/nuevo")
@login_required
def new() -> ResponseReturnValue:
    """Show the detection form: territory, what was detected, optional identifying data."""
    _require_agency("case.create")
    return _detection_page()


@bp.post("/casos")
@login_required
def create() -> ResponseReturnValue:
    """Register a detection: open a case and start its first process."""
    _require_agency("case.create")
    form, identity = _start_form_or_503(INTAKE), identity_form()
    data, who = form_html.parse(form, request.form), form_html.parse(identity, request.form)
    territory = request.form.get("territory_id", "")
    errors = _detection_errors(form, data, identity, who, territory)
    if errors:
        return _detection_page(data, who, errors, territory, status=422)
    parties_data = split_identity(who)
    try:
        case, _instance = start_case(
            db.session(), territory_id=int(territory), process_key=INTAKE, data=data, now=clock.now(),
            actor=current_user.actor, victim=parties_data["victim"], aggressor=parties_data["aggressor"],
            check_form=True,
        )
    except TaskDataError as exc:
        return _detection_page(data, who, form_html.messages(form, exc.errors, data), territory, status=422)
    audit(db.session(), "case.create", case_id=case.id, object_type="case", object_id=case.id)
    flash(_("Detección registrada: caso %(reference)s.", reference=case.reference), "info")
    return redirect(url_for("cases.show", case_id=case.id))


@bp.get("/casos/<id:case_id>")
@login_required
def show(case_id: int) -> ResponseReturnValue:
    """Show a case: status, risk and why, open steps, history, diagrams; who she is only on need-to-know."""
    case = _case_or_404(case_id, "case.read")
    now = clock.now()
    identity = can_see_identity(db.session(), current_user, case)
    running = diagrams(db.session(), case.id, now)
    names = dict(db.session.execute(
        select(ProcessInstance.id, Definition.name).join(Definition, Definition.id == ProcessInstance.definition_id)
        .where(ProcessInstance.id.in_([d.instance_id for d in running]))
    ).all())
    html = render_template(
        "cases/show.html", case=summary(db.session(), case, now), history=timeline(db.session(), case.id),
        diagrams=running, process_names=names, parties=parties(db.session(), case.id) if identity else None,
        records=start_records(db.session(), case.id),
    )
    audit(db.session(), "case.read", case_id=case.id, object_type="case", object_id=case.id,
          detail={"identity": identity})
    return html


@bp.get("/casos/<id:case_id>/diagrama/<id:instance_id>.bpmn")
@login_required
def diagram(case_id: int, instance_id: int) -> ResponseReturnValue:
    """Return the BPMN of a process of a case (the version it runs on) for the diagram viewer."""
    _case_or_404(case_id, "diagram.read")
    source = db.session.execute(
        select(Definition.source).join(ProcessInstance, ProcessInstance.definition_id == Definition.id)
        .where(ProcessInstance.id == instance_id, ProcessInstance.case_id == case_id)
    ).scalar_one_or_none()
    if source is None:
        abort(404)
    audit(db.session(), "diagram.read", case_id=case_id, object_type="process_instance", object_id=instance_id)
    return Response(source, mimetype="application/xml")


@bp.get("/casos/<id:case_id>/incidentes/nuevo")
@login_required
def new_incident(case_id: int) -> ResponseReturnValue:
    """Show the form to report a new incident in a case."""
    case = _case_or_404(case_id, "case.incident")
    _require_agency("case.incident")
    return _incident_page(case)


@bp.post("/casos/<id:case_id>/incidentes")
@login_required
def report_incident(case_id: int) -> ResponseReturnValue:
    """Report a new incident: start the incident process (it replaces the pending follow-up)."""
    _case_or_404(case_id, "case.incident")
    _require_agency("case.incident")
    form = _start_form_or_503(INCIDENT)
    data = form_html.parse(form, request.form)
    case = lock_case(db.session(), case_id)
    try:
        start_process(db.session(), case, INCIDENT, data, now=clock.now(), actor=current_user.actor, check_form=True)
    except TaskDataError as exc:
        return _incident_page(case, data, form_html.messages(form, exc.errors, data), status=422)
    audit(db.session(), "case.incident", case_id=case_id, object_type="case", object_id=case_id)
    flash(_("Incidente comunicado: la policía revalorará el riesgo de inmediato."), "info")
    return redirect(url_for("cases.show", case_id=case_id))


@bp.get("/vendor/bpmn-js/<path:filename>")
@login_required
def bpmn_js(filename: str) -> ResponseReturnValue:
    """Serve the bpmn-js viewer bundle and its CSS and fonts from the repository's node_modules."""
    return send_from_directory(BPMN_JS_DIST, filename, max_age=86400)


# --- Helpers ------------------------------------------------------------------------------------
def _case_or_404(case_id: int, action: str) -> Case:
    case = db.session.get(Case, case_id) if can_see_case(db.session(), current_user, case_id) else None
    if case is None:
        deny(404, action=action)  # never reveal that the case exists
    return case


def _require_agency(action: str) -> None:
    """Only members of an agency register detections and incidents (the engine records the agency)."""
    if current_user.agency_id is None:
        deny(403, action=action, object_type=None)


def _start_form_or_503(process_key: str) -> FormDefinition:
    try:
        return start_form(db.session(), process_key)
    except NotFoundError:
        abort(503)


def _detection_errors(
    form: FormDefinition, data: Mapping[str, Any], identity: FormDefinition, who: Mapping[str, Any], territory: str,
) -> dict[str, list[str]]:
    """Check the whole page at once: territory, the detection form, the identifying data."""
    errors = form_html.messages(form, validate_data(form, data), data)
    errors.update(form_html.messages(identity, validate_data(identity, who), who))
    if parse_id(territory) not in current_user.territory_ids:
        errors["territory_id"] = [_("Elija uno de los territorios de su organismo.")]
    return errors


def _detection_page(
    data: Mapping[str, Any] | None = None, who: Mapping[str, Any] | None = None,
    errors: Mapping[str, Sequence[str]] | None = None, territory: str = "", *, status: int = 200,
) -> ResponseReturnValue:
    form, identity, errors = _start_form_or_503(INTAKE), identity_form(), errors or {}
    territories = db.session.execute(
        select(Territory.id, Territory.name).where(Territory.id.in_(current_user.territory_ids))
        .order_by(Territory.name)
    ).all()
    anchors = {f.name: (form_html.anchor(f), f.label) for f in form_html.fields_of(form)}
    anchors.update({f.name: (form_html.anchor(f, IDENTITY_PREFIX), f.label)
                    for f in form_html.fields_of(identity)})
    anchors["territory_id"] = ("territory_id", _("Territorio"))
    if not territory and len(territories) == 1:
        territory = str(territories[0][0])
    return render_template(
        "cases/new.html", form=form, form_html=form_html.render(form, data, errors), identity=identity,
        identity_html=form_html.render(identity, who, errors, prefix=IDENTITY_PREFIX), errors=errors,
        anchors=anchors, territories=territories, territory=territory,
    ), status


def _incident_page(
    case: Case, data: Mapping[str, Any] | None = None, errors: Mapping[str, Sequence[str]] | None = None,
    *, status: int = 200,
) -> ResponseReturnValue:
    form = _start_form_or_503(INCIDENT)
    anchors = {f.name: (form_html.anchor(f), f.label) for f in form_html.fields_of(form)}
    html = render_template(
        "cases/incident.html", case=case, form=form, form_html=form_html.render(form, data, errors),
        errors=errors or {}, anchors=anchors,
    )
    audit_page(db.session(), "case.read", status, case_id=case.id, object_type="case", object_id=case.id)
    return html, status
