"""Case pages: registering a detection, the case page (risk, history, diagrams, need-to-know), new incidents."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from engine.models import Case, CaseParty, ProcessInstance
from tests.support.protocol import COMPLAINT, detection, risk_answers
from tests.support.web import Site, as_form
from webapp.extensions import db

MEDIUM_MEASURES = ["phone_contact", "self_protection_advice", "social_services_referral", "weapons_withdrawal",
                   "random_surveillance", "escort"]
VICTIM = {"name": "Persona ficticia V", "phone": "600000001", "address": "Calle Inventada 1"}
AGGRESSOR = {"name": "Persona ficticia A"}


def through_intake(site: Site, **detected: Any) -> int:
    """Register a case and take it through intake at level medio, the complaint filed late; return its id."""
    case_id = site.open_case(detection(**detected), victim=VICTIM, aggressor=AGGRESSOR)
    site.clock.advance(timedelta(hours=30))  # the complaint's deadline is 24 hours
    site.complete(case_id, "police_report_to_court", COMPLAINT)
    site.complete(case_id, "police_risk_assessment", risk_answers("medio"))
    site.complete(case_id, "reassessment_review", {"final_level": "medio", "especial_relevancia": False,
                                                 "minors_at_risk": False})
    site.complete(case_id, "apply_police_measures", {"measures_applied": MEDIUM_MEASURES, "weapons_withdrawn": True})
    site.complete(case_id, "personal_safety_plan", {
        "agreed_on": "2026-03-03", "emergency_contacts_set": True, "safe_places": True,
        "self_protection_advice": True, "plan_summary": "Plan acordado."})
    site.complete(case_id, "social_assessment_care_plan", {
        "assessed_on": "2026-03-03", "situation": "Vive con dos menores.", "atenpro": "requested",
        "psychological_care": True, "shelter": "none", "care_plan": "Seguimiento quincenal."}, username="social")
    return case_id


def diagram_state(html: str, instance_id: int) -> dict[str, list[str]]:
    block = html.split(f'id="diagram-{instance_id}"')[1].split(">")[0]
    return {key: json.loads(value) for key, value in re.findall(r"data-(completed|active|overdue)='([^']*)'", block)}


def instances(site: Site, case_id: int) -> list[tuple[int, str, str]]:
    with site.app.app_context():
        rows = db.session.execute(select(ProcessInstance).where(ProcessInstance.case_id == case_id)
                                  .order_by(ProcessInstance.id)).scalars()
        return [(r.id, r.process_key, r.status) for r in rows]


DETECTION_FORM = {"source_kind": "health_centre", "detected_on": "2026-03-02", "observed": "Lesiones en los brazos.",
                  "immediate_danger": False, "injuries": False, "minors_present": False, "wants_to_report": True,
                  "protection_order_requested": False, "consent_to_share": "yes"}


def test_registering_a_detection_opens_a_case_and_keeps_who_she_is_apart(site: Site) -> None:
    browser = site.browser("salud")
    page = browser.get("/casos/nuevo").get_data(as_text=True)
    assert f'<option value="{site.territories["here"]}" selected>Mancomunidad Vegas Bajas</option>' in page
    assert "Madrid Centro" not in page  # only the territories of one's agency
    assert re.findall(r'<fieldset class="form-section">\s*<legend>([^<]+)</legend>', page) == [
        "Territorio", "Detección", "Valoración inmediata", "Denuncia y consentimiento", "Víctima", "Agresor"]
    assert '<label for="id-victim_name">Nombre y apellidos</label>' in page
    response = browser.post("/casos", as_form(DETECTION_FORM, territory_id=site.territories["here"],
                                              victim_name=VICTIM["name"], victim_phone=VICTIM["phone"],
                                              aggressor_name=""))
    assert response.status_code == 302
    case_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with site.app.app_context():
        case = db.session.get_one(Case, case_id)
        identities = dict(db.session.execute(select(CaseParty.role, CaseParty.identity)
                                             .where(CaseParty.case_id == case_id)).all())
        states = [i.state for i in db.session.execute(select(ProcessInstance)
                                                      .where(ProcessInstance.case_id == case_id)).scalars()]
        reference = case.reference
    assert identities == {"victim": {"name": VICTIM["name"], "phone": VICTIM["phone"]}}
    assert len(states) > 1  # every line of work started at once
    assert all(VICTIM["name"] not in state for state in states)  # never in workflow data
    assert VICTIM["name"] not in response.headers["Location"]
    html = browser.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Detección registrada: caso {reference}." in html
    assert "<dd>Persona ficticia V</dd>" in html  # the registering agency may see her
    assert "Recoger la denuncia y remitir el atestado al juzgado" in html
    assert [(e.case_id, e.outcome) for e in site.audit("case.create")] == [(case_id, "ok")]


def test_a_detection_with_missing_answers_is_refused_next_to_each_field(site: Site) -> None:
    answers = {k: v for k, v in DETECTION_FORM.items() if k != "immediate_danger"}
    response = site.browser("salud").post("/casos", as_form(answers, territory_id=site.territories["there"],
                                                            victim_name="x" * 201))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert '<p class="field-error" id="f-immediate_danger-error">Responda a esta pregunta.</p>' in html
    assert '<p class="field-error" id="territory_id-error">Elija uno de los territorios de su organismo.</p>' in html
    assert '<p class="field-error" id="id-victim_name-error">El texto es demasiado largo' in html
    assert 'name="observed" required aria-describedby="f-observed-help" maxlength="4000" rows="5">Lesiones' in html
    with site.app.app_context():
        assert db.session.execute(select(func.count()).select_from(Case)).scalar() == 0


def test_the_case_page_shows_risk_and_why_history_and_the_next_reassessment(site: Site) -> None:
    case_id = through_intake(site)
    html = site.browser("policia").get(f"/casos/{case_id}").get_data(as_text=True)
    risk = html.split('<h2 id="risk-title">Riesgo</h2>')[1].split("</section>")[0]
    assert '<span class="badge risk-medio">Medio</span>' in risk
    assert "<dd>Puntuación de 8 a 17</dd>" in risk
    assert "<li>Historia de la violencia: Escalada de la violencia (+3)</li>" in risk
    assert "<li>Vulnerabilidad de la víctima: Teme por su vida (+3)</li>" in risk
    # Assessed on 3 March at 15:00 UTC, level medio: re-assessment 30 days later, shown in (summer) Madrid time.
    assert '<dt>Próxima revaloración</dt><dd><time datetime="2026-04-02T15:00:00+00:00">2/4/26, 17:00</time>' in risk
    assert "Estado: <strong>Activo</strong>" in html
    history = html.split('<h2 id="history-title">Historial</h2>')[1].split("</section>")[0]
    assert re.search(r"Paso completado: Recoger la denuncia y remitir el atestado al juzgado · Policía estatal "
                     r"\(Guardia Civil / Policía Nacional\) de Vegas Bajas · Policia \(prueba\) "
                     r'<span class="badge late">Fuera de plazo</span>', history)
    assert re.search(r'Paso completado: Valoración social y plan de atención · Servicios sociales de Vegas Bajas · '
                     r'Social \(prueba\) <span class="badge on-time">En plazo</span>', history)
    assert "Caso registrado · Centro de salud de Vegas Bajas · Salud (prueba)" in history
    steps = html.split('<h2 id="open-title">')[1].split("</section>")[0]
    assert "Revaloración policial del riesgo" in steps
    assert "Seguimiento de servicios sociales" in steps
    assert "Servicios sociales de Vegas Bajas" in steps
    assert [(e.case_id, e.outcome) for e in site.audit("case.read")] == [(case_id, "ok")]


def test_every_agency_of_the_case_reads_what_the_detection_recorded(site: Site) -> None:
    case_id = through_intake(site, minors_present=True, minors_count=2, observed="Moratones y relato de control.")
    html = site.browser("social").get(f"/casos/{case_id}").get_data(as_text=True)
    record = html.split('<h2 id="record-1-title">Registro de detección</h2>')[1].split("</section>")[0]
    assert "<dt>Qué se ha observado</dt>\n        <dd>Moratones y relato de control.</dd>" in record
    assert "<dt>Quién detecta</dt>\n        <dd>Centro de salud</dd>" in record
    assert "<dt>Hay menores a su cargo</dt>\n        <dd>Sí</dd>" in record
    assert "Centro de salud de Vegas Bajas" in record


def test_the_diagram_of_each_running_process_marks_done_active_and_overdue_steps(site: Site) -> None:
    case_id = site.open_case()
    [instance_id] = [i for i, key, _ in instances(site, case_id) if key == "police_response"]
    browser = site.browser("policia")
    html = browser.get(f"/casos/{case_id}").get_data(as_text=True)
    assert f'data-src="/casos/{case_id}/diagrama/{instance_id}.bpmn"' in html
    state = diagram_state(html, instance_id)
    assert "police_response_started" in state["completed"]
    assert (state["active"], state["overdue"]) == (["police_report_to_court"], [])
    assert '<script src="/vendor/bpmn-js/bpmn-viewer.production.min.js"></script>' in html
    assert '<script src="/static/case_diagram.js"></script>' in html
    assert '<link rel="stylesheet" href="/vendor/bpmn-js/assets/bpmn-js.css">' in html
    site.clock.advance(timedelta(hours=25))
    late = diagram_state(browser.get(f"/casos/{case_id}").get_data(as_text=True), instance_id)
    assert (late["active"], late["overdue"]) == ([], ["police_report_to_court"])
    source = browser.get(f"/casos/{case_id}/diagrama/{instance_id}.bpmn")
    assert source.status_code == 200
    assert source.mimetype == "application/xml"
    assert 'id="police_report_to_court"' in source.get_data(as_text=True)
    other_case = site.open_case()
    other_instance = instances(site, other_case)[0][0]
    assert browser.get(f"/casos/{case_id}/diagrama/{other_instance}.bpmn").status_code == 404  # not this case's
    assert site.browser("colegio").get(f"/casos/{case_id}/diagrama/{instance_id}.bpmn").status_code == 404
    assert site.audit("diagram.read", outcome="denied")[0].username == "colegio"


def test_the_viewer_is_served_by_the_app_from_node_modules(site: Site) -> None:
    browser = site.browser("policia")
    with browser.get("/vendor/bpmn-js/bpmn-viewer.production.min.js") as bundle:
        assert bundle.status_code == 200
        assert "javascript" in bundle.mimetype
        assert len(bundle.get_data()) > 100_000
    with browser.get("/vendor/bpmn-js/assets/bpmn-js.css") as css:
        assert (css.status_code, css.mimetype) == (200, "text/css")
    assert browser.get("/vendor/bpmn-js/../package.json").status_code == 404
    with browser.get("/static/case_diagram.js") as script:
        code = script.get_data(as_text=True)
    assert "canvas.addMarker(id, pair[1])" in code
    assert "state-overdue" in code


def test_who_she_is_is_shown_only_to_agencies_that_need_to_know(site: Site) -> None:
    case_id = through_intake(site)
    police = site.browser("policia").get(f"/casos/{case_id}").get_data(as_text=True)
    assert "<dd>Persona ficticia V</dd>" in police
    assert "<dd>Calle Inventada 1</dd>" in police
    equality = site.browser("igualdad").get(f"/casos/{case_id}")  # it has a follow-up step, without identity
    assert equality.status_code == 200
    html = equality.get_data(as_text=True)
    assert "Persona ficticia" not in html
    assert "Su organismo no tiene ningún paso que necesite saber quién es" in html
    assert site.audit("case.read", username="igualdad")[0].detail == {"identity": False}
    assert site.audit("case.read", username="policia")[0].detail == {"identity": True}


def test_without_her_consent_only_the_agency_that_registered_her_sees_who_she_is(site: Site) -> None:
    case_id = site.open_case(detection(consent_to_share="no"), victim=VICTIM)
    assert "Persona ficticia V" not in site.browser("policia").get(f"/casos/{case_id}").get_data(as_text=True)
    assert "Persona ficticia V" in site.browser("salud").get(f"/casos/{case_id}").get_data(as_text=True)


def test_a_case_the_agency_has_nothing_to_do_with_is_a_404_and_the_refusal_is_audited(site: Site) -> None:
    case_id = site.open_case()
    for username in ("colegio", "policia.madrid"):
        response = site.browser(username).get(f"/casos/{case_id}")
        assert response.status_code == 404
        assert "VG-" not in response.get_data(as_text=True)
    assert [(e.username, e.case_id) for e in site.audit("case.read", outcome="denied")] == [
        ("colegio", case_id), ("policia.madrid", case_id)]
    assert site.browser("colegio").get(f"/casos/{case_id}/incidentes/nuevo").status_code == 404
    assert site.browser("colegio").post(f"/casos/{case_id}/incidentes", {}).status_code == 404


def police_line(site: Site, case_id: int) -> list[tuple[str, str]]:
    """The case's intake, incident and police risk-line instances with their status, oldest first."""
    return [(key, status) for _, key, status in instances(site, case_id) if key in ("intake", "incident", "followup")]


def test_any_agency_of_the_case_reports_a_new_incident_which_replaces_the_followup(site: Site) -> None:
    case_id = through_intake(site)
    assert police_line(site, case_id) == [("intake", "completed"), ("followup", "completed"), ("followup", "running")]
    browser = site.browser("social")
    form = browser.get(f"/casos/{case_id}/incidentes/nuevo").get_data(as_text=True)
    assert "<h1>Comunicar un nuevo incidente</h1>" in form
    assert '<label for="f-occurred_on">' in form
    incident = {"reported_by_kind": "social_services", "occurred_on": "2026-03-04",
                "description": "Nuevo episodio de amenazas.", "complaint_filed": False, "immediate_danger": False}
    missing = browser.post(f"/casos/{case_id}/incidentes", as_form({**incident, "description": ""}))
    assert missing.status_code == 422
    assert '<p class="field-error" id="f-description-error">Este dato es obligatorio.</p>' in missing.get_data(
        as_text=True)
    response = browser.post(f"/casos/{case_id}/incidentes", as_form(incident))
    assert response.status_code == 302
    assert response.headers["Location"] == f"/casos/{case_id}"
    assert police_line(site, case_id) == [("intake", "completed"), ("followup", "completed"), ("followup", "cancelled"),
                                          ("incident", "completed"), ("followup", "running")]
    assert "incident_reassessment" in site.tasks(case_id)
    html = browser.get(f"/casos/{case_id}").get_data(as_text=True)
    assert "Incidente comunicado" in html
    assert "Revaloración inmediata tras el incidente" in html
    assert [e.username for e in site.audit("case.incident")] == ["social"]
