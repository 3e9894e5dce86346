"""A meeting of the Mesa de Coordinación in a real browser (Playwright driving Debian's chromium).

Over a generated history on a stopped clock, the coordinator of Vegas Bajas opens the next meeting:
the agenda lists an extreme case, a case with a late step and a new case, each with its reasons. She
records the attendance and an agreement for social services due in 7 days, and closes the minutes.
Social services find the agreement in their worklist; 8 days later (the clock moved, a deadline pass
run) it is overdue on their supervisor's board and on the next meeting's agenda; the closed minutes
refuse an edit. Screenshots go to test-artifacts/mesa-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.clock import FakeClock
from engine.models import Agreement, Case, Meeting, OpenTask, ProcessInstance, Territory
from tests.support.browser import ARTIFACTS, live_app, sign_in
from webapp.extensions import db

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # a Friday: the next meeting is on Monday
COORDINATOR, SOCIAL, SOCIAL_BOSS = "mesa.vegas", "ssb.vegas", "ssb.vegas.jefa"
SOCIAL_AGENCY = "Servicio Social de Base — Vegas Bajas"
AGREEMENT = "Visita de seguimiento y valoración de ATENPRO"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Any, FakeClock]]:
    """Serve the app (migrated SQLite, the protocol, a generated history) on a clock stopped at NOW."""
    clock = FakeClock(NOW)
    history = ["demo", "generate", "--cases", "16", "--days", "60", "--seed", "5"]
    with live_app(tmp_path, [history], npm_package="bpmn-js", CLOCK=clock) as (base, app):
        yield base, app, clock


def agenda_material(app: Any) -> dict[str, tuple[int, str]]:
    """Find in the generated data an extreme case, a case with a late step and a new case of Vegas Bajas."""
    with app.app_context():
        session = db.session()
        territory = session.execute(select(Territory.id).where(Territory.code == "vegas-bajas")).scalar_one()
        mine = (Case.territory_id == territory) & (Case.status == "active")
        extreme = session.execute(select(Case.id, Case.reference).where(mine, Case.risk_level == "extremo")
                                  .order_by(Case.id).limit(1)).one()
        late = session.execute(
            select(Case.id, Case.reference).join(OpenTask, OpenTask.case_id == Case.id)
            .join(ProcessInstance, ProcessInstance.id == OpenTask.instance_id)
            .where(mine, OpenTask.due_at < NOW, ProcessInstance.process_key != "agreement", Case.id != extreme[0])
            .order_by(OpenTask.due_at).limit(1)).one()
        new = session.execute(select(Case.id, Case.reference).where(mine, Case.created_at > NOW - timedelta(days=10),
                                                                    Case.id.not_in((extreme[0], late[0])))
                              .order_by(Case.created_at.desc()).limit(1)).one()
    return {"high_risk": (extreme[0], extreme[1]), "overdue_steps": (late[0], late[1]), "new": (new[0], new[1])}


def reasons(page: Any, case_id: int) -> list[str]:
    """Return the reasons shown for a case on the agenda."""
    return page.locator(f"#case-{case_id} [data-reason]").evaluate_all("els => els.map(e => e.dataset.reason)")


def test_a_meeting_of_the_mesa_from_agenda_to_an_overdue_agreement(server: tuple[str, Any, FakeClock],
                                                                  browser: Any) -> None:
    base, app, clock = server
    material = agenda_material(app)
    extreme_id, extreme_ref = material["high_risk"]

    # 1. The coordinator opens the next meeting from her Mesa's page; the agenda is generated.
    page = sign_in(browser, base, COORDINATOR)
    page.get_by_role("link", name=re.compile(r"^Mesa")).click()
    page.wait_for_url(re.compile(r".*/mesa/\d+$"))
    page.locator("#next-meeting").click()
    page.get_by_role("button", name="Abrir la reunión").click()
    page.wait_for_url(re.compile(r".*/mesa/reuniones/\d+$"))
    meeting_url = page.url
    assert page.locator("#meeting-status").inner_text() == "En curso"
    for reason, (case_id, ref) in material.items():
        assert page.locator(f"#case-title-{case_id}").inner_text().startswith(ref)
        assert reason in reasons(page, case_id), (reason, ref, reasons(page, case_id))
    page.locator(f"#case-{extreme_id}").screenshot(path=str(ARTIFACTS / "mesa-agenda.png"))

    # 2. Attendance: every member agency present.
    for select_box in page.locator('select[name^="att-"]').all():
        select_box.select_option("present")
    page.get_by_role("button", name="Guardar la asistencia").click()
    page.wait_for_url(re.compile(r".*/mesa/reuniones/\d+#attendance$"))
    assert page.get_by_text("Asistencia guardada.").is_visible()

    # 3. An agreement for social services on the extreme case, due in 7 days (the form's default).
    form = page.locator(f"#case-{extreme_id} form.agreement-form")
    form.get_by_label("Organismo responsable").select_option(label=SOCIAL_AGENCY)
    form.get_by_label("Qué se acuerda").fill(AGREEMENT)
    due = form.get_by_label("Fecha límite").input_value()
    assert due == (NOW.date() + timedelta(days=7)).isoformat()
    form.get_by_role("button", name="Registrar el acuerdo").click()
    page.wait_for_url(re.compile(rf".*#case-{extreme_id}$"))
    assert AGREEMENT in page.locator(f"#case-{extreme_id} ul.agreements").inner_text()

    # 4. She closes the minutes.
    page.get_by_label("Confirmo que el acta está completa").check()
    page.get_by_role("button", name="Cerrar el acta").click()
    assert page.get_by_text("Acta cerrada: ya no se puede modificar.").is_visible()
    assert page.locator("#meeting-status").inner_text() == "Acta cerrada"
    page.screenshot(path=str(ARTIFACTS / "mesa-minutes-closed.png"), full_page=False)

    # 5. Social services find the agreement in their worklist and open it.
    social = sign_in(browser, base, SOCIAL)
    social.get_by_role("link", name="Mi organismo").click()
    row = social.locator("tr", has_text="Cumplir el acuerdo de la Mesa").filter(has_text=extreme_ref)
    assert row.count() == 1
    row.get_by_role("link", name="Cumplir el acuerdo de la Mesa").click()
    assert AGREEMENT in social.locator("#agreement").inner_text()
    social.screenshot(path=str(ARTIFACTS / "mesa-agreement-task.png"), full_page=False)
    social.context.close()

    # 6. Eight days later the agreement is overdue: on the supervisor's board ...
    clock.advance(timedelta(days=8))
    result = app.test_cli_runner().invoke(args=["deadlines", "run"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        agreement = db.session.execute(select(Agreement)).scalar_one()
        task_id = db.session.execute(select(OpenTask.id).where(OpenTask.instance_id == agreement.instance_id)
                                     ).scalar_one()
        held = db.session.get(Meeting, agreement.meeting_id)
        assert held is not None
        following = db.session.execute(select(Meeting.id).where(Meeting.status == "planned",
                                                                Meeting.mesa_id == held.mesa_id)
                                       .order_by(Meeting.scheduled_at).limit(1)).scalar_one()
    boss = sign_in(browser, base, SOCIAL_BOSS)
    boss.get_by_role("link", name="Supervisión").click()
    late = boss.locator(f'#late-steps tr[data-task="{task_id}"]')
    assert late.locator("td").nth(0).inner_text() == extreme_ref
    assert late.locator("td").nth(1).inner_text() == "Cumplir el acuerdo de la Mesa"
    assert late.locator("td").nth(2).inner_text() == SOCIAL_AGENCY
    boss.screenshot(path=str(ARTIFACTS / "mesa-board-overdue-agreement.png"), full_page=False)
    boss.context.close()

    # ... and on the next meeting's agenda.
    page.goto(f"{base}/mesa/reuniones/{following}")
    assert "overdue_agreement" in reasons(page, extreme_id)
    assert "Vencida" in page.locator(f"#case-{extreme_id} ul.agreements").inner_text()

    # 7. The closed minutes cannot be edited: no form, and a forged edit is refused (409).
    page.goto(meeting_url)
    assert page.locator("textarea").count() == 0
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    refused = page.request.post(f"{meeting_url}/notas/{extreme_id}",
                                form={"csrf_token": token or "", "version": "99", "note": "Cambio posterior"})
    assert refused.status == 409
    assert "El acta está cerrada" in refused.text()
    page.context.close()
