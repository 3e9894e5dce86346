"""The protocol designer in a real browser (Playwright driving Debian's chromium).

A case reaches its periodic follow-up at level *medio* (30 days to the re-assessment). The designer
opens the follow-up process in the bpmn-js modeller, goes from its decision step to the DMN table,
changes the *medio* period from 30 to 21 days in dmn-js, adds a field to the social services'
follow-up form in the form editor (seeing it in the preview), validates, tries the drafts (21 days
in the report) and deploys them with a comment. A case whose follow-up starts afterwards gets 21
days and the new form field; the case that was already in follow-up keeps 30 days and its form.
Screenshots go to test-artifacts/designer-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.actor import Actor
from engine.definitions import task_form
from engine.execution import complete_task, start_case
from engine.models import Agency, AuditEvent, Case, OpenTask, ProcessInstance, Territory, UserAccount, agency_territory
from engine.persistence import load_run
from tests.support.browser import ARTIFACTS, live_app, sign_in
from tests.support.protocol import COMPLAINT, detection, risk_answers
from webapp.extensions import db

DESIGNER = "disenadora"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """Serve the app (migrated SQLite, the protocol deployed from files, the demo accounts)."""
    # The deploy verifies the drafts first (a short verification here: the walk is about the editors).
    with live_app(tmp_path, [["demo", "seed"]], npm_package="dmn-js", DESIGNER_VERIFY_HISTORIES=4,
                  DESIGNER_VERIFY_DAYS=30) as served:
        yield served


def case_in_followup(app: Any, level: str = "medio") -> int:
    """Drive a new case through intake with the engine, as the agencies would, until its follow-up starts."""
    with app.app_context():
        session = db.session()
        territory = session.execute(select(Territory.id).where(Territory.code == "vegas-bajas")).scalar_one()

        def actor(kind: str) -> Actor:
            user = session.execute(
                select(UserAccount).join(Agency, Agency.id == UserAccount.agency_id)
                .join(agency_territory, agency_territory.c.agency_id == Agency.id)
                .where(Agency.kind == kind, agency_territory.c.territory_id == territory).order_by(UserAccount.id)
                .limit(1)).scalar_one()
            return Actor(user_id=user.id, name=user.username, agency_id=user.agency_id, roles=frozenset(user.roles))

        now = datetime.now(UTC)
        case, _ = start_case(session, territory_id=territory, process_key="intake", data=detection(), now=now,
                             actor=actor("health_centre"), check_form=True)
        session.commit()

        def complete(element_id: str, data: dict[str, Any]) -> None:
            task = session.execute(select(OpenTask).where(OpenTask.case_id == case.id,
                                                          OpenTask.element_id == element_id)).scalar_one()
            complete_task(session, task.id, data, expected_version=task.version, now=now,
                          actor=actor(task.agency_kind or ""))
            session.commit()

        def step_data(element_id: str) -> dict[str, Any]:
            task = session.execute(select(OpenTask).where(OpenTask.case_id == case.id,
                                                          OpenTask.element_id == element_id)).scalar_one()
            return load_run(session, session.get_one(ProcessInstance, task.instance_id))[0].task_data(task.task_guid)

        today = now.date().isoformat()
        complete("police_report_to_court", COMPLAINT)
        complete("police_risk_assessment", risk_answers(level))
        complete("reassessment_review", {"final_level": level, "especial_relevancia": False, "minors_at_risk": False})
        complete("apply_police_measures", {"measures_applied": step_data("apply_police_measures")["required_measures"],
                                           "weapons_withdrawn": True})
        complete("personal_safety_plan", {"agreed_on": today, "emergency_contacts_set": True, "safe_places": True,
                                          "self_protection_advice": True, "plan_summary": "Plan acordado."})
        complete("social_assessment_care_plan", {"assessed_on": today, "situation": "Sintético.",
                                                 "atenpro": "requested", "psychological_care": True, "shelter": "none",
                                                 "care_plan": "Seguimiento quincenal."})
        return case.id


def reassessment(app: Any, case_id: int) -> tuple[timedelta, list[str]]:
    """Return how long after the assessment the case's police re-assessment is due, and its social form's fields."""
    with app.app_context():
        session = db.session()
        case = session.get_one(Case, case_id)
        query = select(OpenTask).where(OpenTask.case_id == case_id)
        tasks = {t.element_id: t for t in session.execute(query).scalars()}
        assessed = datetime.fromisoformat(case.facts["last_assessment_at"])
        police = tasks["police_reassessment"]
        assert police.due_at is not None
        form = task_form(session, tasks["social_services_followup"])
        assert form is not None
        return police.due_at - assessed, list(form.schema["properties"])


def test_the_designer_changes_the_medium_period_and_a_form_and_only_new_cases_get_them(
    server: tuple[str, Any], browser: Any
) -> None:
    base, app = server
    before = case_in_followup(app)
    assert reassessment(app, before)[0] == timedelta(days=30)

    # 1. The designer opens the follow-up process in the modeller, from the definitions page.
    page = sign_in(browser, base, DESIGNER)
    page.get_by_role("link", name="Diseño del protocolo").click()
    page.wait_for_url(re.compile(r".*/designer$"))
    page.locator("#def-process-followup").get_by_role("link", name=re.compile("Editar")).click()
    page.wait_for_selector('#canvas .djs-element[data-element-id="reassessment_period_rule"]')
    assert page.locator(".bjs-powered-by").is_visible()  # the bpmn.io watermark stays
    page.locator('#canvas [data-element-id="police_reassessment"]').first.click()
    assert page.locator('#panel select[name="prop-form"]').input_value() == "risk_assessment"
    assert "parse_datetime(assessed_from)" in page.locator('#panel input[name="prop-due"]').input_value()
    assert page.locator('.djs-palette [aria-label="Activar la herramienta de mano"]').count() == 1  # bpmn-js-i18n

    # A step without a form: validation pins the problem on the step (marker and message), then it is undone.
    page.select_option('#panel select[name="prop-form"]', "")
    page.get_by_role("button", name="Guardar y validar").click()
    note = page.locator('.problem-overlay[data-element="police_reassessment"]')
    note.wait_for()
    assert "user task names no form" in note.inner_text()
    assert page.locator('.djs-element.coordina-problem[data-element-id="police_reassessment"]').count() == 1
    assert "police_reassessment" in page.locator("#validation").inner_text()
    page.screenshot(path=str(ARTIFACTS / "designer-modeller.png"), full_page=True)
    page.select_option('#panel select[name="prop-form"]', "risk_assessment")

    # The police line's lane names an agency kind from a list; the change can be undone.
    page.evaluate("() => { const m = window.coordinaModeler; "
                  "m.get('selection').select(m.get('elementRegistry').get('followup_lane_0')); }")
    lane = page.locator('#panel select[name="lane-kind"]')
    police = "Policía estatal (Guardia Civil / Policía Nacional)"
    assert lane.input_value() == police
    lane.select_option("Centro de salud")
    exported = "() => window.coordinaModeler.saveXML().then((r) => r.xml)"
    assert 'id="followup_lane_0" name="Centro de salud"' in page.evaluate(exported)
    page.get_by_role("button", name="Deshacer").click()
    assert f'id="followup_lane_0" name="{police}"' in page.evaluate(exported)
    page.get_by_role("button", name="Guardar borrador").click()
    page.get_by_text("Borrador guardado (versión 2).").wait_for()

    # 2. From the decision step of the process to its table, in dmn-js: medio from P30D to P21D.
    page.locator('#canvas [data-element-id="reassessment_period_rule"]').first.click()
    page.get_by_role("link", name=re.compile("Editar la tabla de decisión")).click()
    page.wait_for_url(re.compile(r".*/designer/editar/reassessment_period\.dmn$"))
    cell = page.locator('td[data-element-id="period_medium_out0"]')
    cell.wait_for()
    assert cell.inner_text().strip() == '"P30D"'
    assert page.get_by_text("Política de coincidencia:").is_visible()  # dmn-js in Spanish (dmn-js-es.js)
    cell.locator("[contenteditable]").first.click()
    page.keyboard.press("Control+A")
    page.keyboard.type('"P21D"')
    page.get_by_role("button", name="Guardar borrador").click()
    page.get_by_text("Borrador guardado (versión 1).").wait_for()
    page.screenshot(path=str(ARTIFACTS / "designer-dmn.png"), full_page=True)

    # 3. A new field in the social services' follow-up form, seen in the live preview.
    page.get_by_role("link", name="Volver a las definiciones").click()
    page.locator("#def-form-followup_social").get_by_role("link", name=re.compile("Editar")).click()
    page.wait_for_url(re.compile(r".*/designer/editar/followup_social\.json$"))
    page.fill("#field-name", "next_contact_on")
    page.fill("#field-title", "Fecha prevista del próximo contacto")
    page.select_option("#field-type", "date")
    page.select_option("#field-section", "Seguimiento")
    page.get_by_role("button", name="Añadir el campo").click()
    page.locator("#preview").get_by_label("Fecha prevista del próximo contacto").wait_for()
    page.get_by_role("button", name="Guardar borrador").click()
    page.get_by_text("Borrador guardado (versión 1).").wait_for()
    page.screenshot(path=str(ARTIFACTS / "designer-form.png"), full_page=True)

    # 4. Validate every draft, then try them: the report shows the 21-day deadline.
    page.get_by_role("button", name="Guardar y validar").click()
    page.get_by_text("Los borradores son válidos").first.wait_for()
    page.get_by_role("link", name="Probar", exact=True).click()
    page.wait_for_url(re.compile(r".*/designer/probar$"))
    page.select_option("#process", "followup")
    page.select_option("#territory", page.locator("#territory option", has_text="Vegas Bajas").get_attribute("value"))
    page.get_by_role("button", name="Probar", exact=True).click()
    row = page.locator('#trial-tasks tr[data-element="police_reassessment"]')
    row.wait_for()
    assert row.get_attribute("data-due-days") == "21.0"
    assert "Guardia Civil" in row.inner_text()
    page.screenshot(path=str(ARTIFACTS / "designer-try.png"), full_page=True)

    # 5. Deploy with a comment.
    page.goto(f"{base}/designer")
    page.fill("#comment", "Medio: revaloración cada 21 días; próximo contacto en el seguimiento social")
    page.get_by_role("button", name="Desplegar los borradores").click()
    page.get_by_text(re.compile("Desplegado. Versiones nuevas")).wait_for()
    assert page.locator("#drafts").count() == 0
    page.context.close()

    # 6. A case whose follow-up starts now gets 21 days and the new field; the earlier one keeps its own.
    after = case_in_followup(app)
    period, fields = reassessment(app, after)
    assert period == timedelta(days=21)
    assert "next_contact_on" in fields
    period, fields = reassessment(app, before)
    assert period == timedelta(days=30)
    assert "next_contact_on" not in fields
    with app.app_context():
        actions = {e.action for e in db.session.execute(select(AuditEvent).where(AuditEvent.username == DESIGNER))
                   .scalars()}
    assert {"draft.save", "definition.validate", "definition.try", "definition.deploy"} <= actions
