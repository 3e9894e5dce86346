"""People walking the protocol in a real browser (Playwright driving Debian's chromium).

A health-centre professional registers a detection; the police officer finds the steps in *Mi
organismo*, claims them, submits the risk form with an answer missing, sees the error next to the
question, answers it and completes; social services then find their step; the case page shows the
diagram with the active step highlighted; a user of an unrelated agency gets no access, and the
attempt is in the audit log. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.models import AuditEvent, UserAccount
from tests.support.browser import ARTIFACTS, ROOT, live_app, sign_in
from webapp.extensions import db

RISK_FORM = json.loads((ROOT / "forms" / "risk_assessment.json").read_text(encoding="utf-8"))
INDICATORS = [name for section in RISK_FORM["ui"]["sections"] if section["title"] != "Seguimiento"
              for name in section["fields"]]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, object]]:
    """Serve the app on 127.0.0.1 with a migrated SQLite database, the protocol and the demo data."""
    with live_app(tmp_path, [["demo", "seed"]], npm_package="bpmn-js") as served:
        yield served


def answer_yes_no(page: object, name: str, value: bool) -> None:
    page.check(f'input[name="{name}"][value="{"true" if value else "false"}"]')  # type: ignore[attr-defined]


def test_the_protocol_walked_by_health_police_and_social_services(server: tuple[str, object], browser: object) -> None:
    base, app = server

    # 1. The health centre registers a detection.
    health = sign_in(browser, base, "cs.puebla")
    health.get_by_role("link", name="Registrar detección").click()
    health.select_option("#territory_id", label="Mancomunidad Integral de Servicios Vegas Bajas")
    health.select_option('select[name="source_kind"]', "health_centre")
    health.fill('input[name="detected_on"]', "2026-11-20")
    health.fill('textarea[name="observed"]', "Hematomas en brazos; relata control del móvil y del dinero.")
    for name, value in (("immediate_danger", False), ("injuries", False), ("minors_present", False),
                        ("wants_to_report", True), ("protection_order_requested", False)):
        answer_yes_no(health, name, value)
    health.check('input[name="consent_to_share"][value="yes"]')
    health.get_by_role("button", name="Registrar la detección").click()
    health.wait_for_url(re.compile(r".*/casos/\d+$"))
    case_url = health.url
    reference = re.search(r"VG-\d{4}-\d{6}", health.content()).group(0)  # type: ignore[union-attr]
    health.context.close()

    # 2. The police find the complaint step in "Mi organismo", claim it and complete it.
    police = sign_in(browser, base, "gc.puebla")
    police.get_by_role("link", name=re.compile("Mi organismo")).click()
    row = police.locator("tr", has_text=reference).filter(has_text="Recoger la denuncia")
    row.get_by_role("button", name=re.compile("Asignármela")).click()
    police.get_by_role("link", name=re.compile("Mis tareas")).click()
    police.locator("tr", has_text=reference).get_by_role("link", name=re.compile("Recoger la denuncia")).click()
    police.fill('input[name="complaint_received_at"]', "2026-11-20T10:30")
    police.fill('input[name="report_number"]', "AT-2026-0042")
    answer_yes_no(police, "sent_to_court", True)
    police.get_by_role("button", name="Completar el paso").click()
    police.wait_for_url(case_url)

    # 3. The risk assessment: claim it, submit with one answer missing, see the error by the question.
    police.goto(f"{base}/?tab=agency")
    police.locator("tr", has_text=reference).filter(has_text="Valoración policial del riesgo") \
        .get_by_role("button", name=re.compile("Asignármela")).click()
    police.get_by_role("link", name=re.compile("Mis tareas")).click()
    police.locator("tr", has_text=reference).get_by_role("link", name=re.compile("Valoración policial")).click()
    for name in INDICATORS:
        if name != "strangulation":
            answer_yes_no(police, name, name in ("physical_violence", "escalation", "victim_fears_for_life"))
    answer_yes_no(police, "in_person_contact", True)
    answer_yes_no(police, "court_measure_in_force", False)
    police.get_by_role("button", name="Completar el paso").click()
    error = police.locator("#f-strangulation-error")
    error.wait_for()
    assert error.is_visible()
    assert police.locator("#f-strangulation-field").get_attribute("class") == "field invalid choices"
    police.screenshot(path=str(ARTIFACTS / "risk-form-error.png"), full_page=True)
    answer_yes_no(police, "strangulation", False)
    police.get_by_role("button", name="Completar el paso").click()
    police.wait_for_url(case_url)

    # 4. The officer confirms the computed level (medio).
    police.goto(f"{base}/?tab=agency")
    police.locator("tr", has_text=reference).filter(has_text="Revisar el nivel de riesgo") \
        .get_by_role("button", name=re.compile("Asignármela")).click()
    police.get_by_role("link", name=re.compile("Mis tareas")).click()
    police.locator("tr", has_text=reference).get_by_role("link", name=re.compile("Revisar el nivel")).click()
    police.check('input[name="final_level"][value="medio"]')
    answer_yes_no(police, "especial_relevancia", False)
    answer_yes_no(police, "minors_at_risk", False)
    police.get_by_role("button", name="Completar el paso").click()
    police.wait_for_url(case_url)
    police.context.close()

    # 5. Social services now have their step.
    social = sign_in(browser, base, "ssb.vegas")
    social.goto(f"{base}/?tab=agency")
    assert social.locator("tr", has_text=reference).filter(has_text="Valoración social y plan de atención").count() == 1

    # 6. The case page shows the diagram with the active steps highlighted.
    social.goto(case_url)
    social.locator(".djs-element.state-active").first.wait_for(timeout=15000)
    assert social.locator(".djs-element.state-completed").count() > 0
    assert "Medio" in social.content() or "medio" in social.content()
    social.screenshot(path=str(ARTIFACTS / "case-diagram.png"), full_page=True)
    social.context.close()

    # 7. A school of another territory has no business with this case: 404, and the attempt is audited.
    outsider = sign_in(browser, base, "ies.sanvicente")
    response = outsider.goto(case_url)
    assert response is not None
    assert response.status == 404
    assert reference not in outsider.content()
    outsider.context.close()
    with app.app_context():  # type: ignore[attr-defined]
        school = db.session.execute(select(UserAccount.id).where(UserAccount.username == "ies.sanvicente")).scalar()
        denied = db.session.execute(select(AuditEvent).where(
            AuditEvent.user_id == school, AuditEvent.outcome == "denied")).scalars().all()
    assert [(row.object_type, row.case_id) for row in denied] == [("case", int(case_url.rsplit("/", 1)[1]))]
