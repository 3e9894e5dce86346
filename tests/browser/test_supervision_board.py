"""The supervisor's board in a real browser (Playwright driving Debian's chromium) over a generated history.

`flask demo generate` builds months of history on a stopped clock; the Guardia Civil's supervisor
opens the board, finds a late step of her agency under her agency's name, opens its case, comes back
and reassigns the step to a named member through the bulk reassignment; the charts are drawn.
The screenshot goes to test-artifacts/supervision-board.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.clock import FakeClock
from engine.models import Agency, AuditEvent, Case, OpenTask, UserAccount
from tests.support.browser import ARTIFACTS, live_app, sign_in
from webapp.extensions import db

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # the board's "now": where the simulated history ends
SUPERVISOR, MEMBER = "gc.puebla.jefa", "gc.puebla"
AGENCY = "Guardia Civil — Puebla de la Calzada"

@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """Serve the app (migrated SQLite, the protocol, a generated history) on a clock stopped at NOW."""
    history = ["demo", "generate", "--cases", "30", "--days", "60", "--seed", "5"]
    with live_app(tmp_path, [history], npm_package="chart.js", CLOCK=FakeClock(NOW)) as served:
        yield served


def late_step_of_the_agency(app: Any) -> tuple[int, str, str]:
    """Return the most overdue open step of the Guardia Civil of Puebla: task id, case reference, step."""
    with app.app_context():
        row = db.session.execute(
            select(OpenTask.id, Case.reference, OpenTask.name)
            .join(Case, Case.id == OpenTask.case_id).join(Agency, Agency.id == OpenTask.agency_id)
            .where(Agency.name == AGENCY, OpenTask.due_at < NOW).order_by(OpenTask.due_at).limit(1)
        ).one_or_none()
    assert row is not None, "the generated history leaves a late step for the Guardia Civil"
    return row[0], row[1], row[2]


def test_the_supervisor_finds_a_late_step_and_reassigns_it(server: tuple[str, Any], browser: Any) -> None:
    base, app = server
    task_id, reference, step = late_step_of_the_agency(app)

    # 1. The supervisor opens the board from the navigation; the late step is listed under her agency.
    page = sign_in(browser, base, SUPERVISOR)
    page.get_by_role("link", name="Supervisión").click()
    page.wait_for_url(re.compile(r".*/supervision$"))
    row = page.locator(f'#late-steps tr[data-task="{task_id}"]')
    assert row.locator("td").nth(0).inner_text() == reference
    assert row.locator("td").nth(1).inner_text() == step
    assert row.locator("td").nth(2).inner_text() == AGENCY
    assert float(row.locator("td").nth(4).inner_text().replace(",", ".")) > 0

    # 2. The charts are drawn: one Chart.js instance per canvas, each with painted pixels.
    page.wait_for_function("window.Chart && Object.keys(window.Chart.instances).length === "
                           "document.querySelectorAll('canvas[data-chart]').length")
    painted = page.evaluate("""() => Array.from(document.querySelectorAll('canvas[data-chart]')).map((canvas) => {
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let drawn = 0;
        for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] > 0) { drawn += 1; } }
        return [canvas.dataset.chart, drawn];
    })""")
    assert {name for name, _ in painted} == {"overdue_by_agency", "load_by_agency", "risk_levels", "on_time_by_step"}
    assert all(drawn > 500 for _, drawn in painted), painted
    page.screenshot(path=str(ARTIFACTS / "supervision-board.png"), full_page=True)

    # 3. She opens the case, then comes back to the board.
    row.get_by_role("link", name=reference).click()
    page.wait_for_url(re.compile(r".*/casos/\d+$"))
    assert reference in page.content()
    page.go_back()
    page.wait_for_url(re.compile(r".*/supervision$"))

    # 4. Bulk reassignment: she ticks the step and gives it to a named member of her agency.
    page.check(f"#task-{task_id}")
    page.select_option("#assignee", label=f"Profesional demo ({AGENCY})")
    page.get_by_role("button", name="Asignar los pasos marcados").click()
    page.wait_for_url(re.compile(r".*/supervision$"))
    assert page.get_by_text(f"Pasos asignados a Profesional demo ({AGENCY}): 1.").is_visible()
    mine = page.locator(f'form.reassign tr[data-task="{task_id}"]')
    assert mine.locator("td").nth(4).inner_text() == f"Profesional demo ({AGENCY})"
    page.context.close()

    with app.app_context():
        member = db.session.execute(select(UserAccount.id).where(UserAccount.username == MEMBER)).scalar_one()
        assert db.session.get(OpenTask, task_id).assignee_id == member
        [event] = db.session.execute(select(AuditEvent).where(AuditEvent.action == "supervision.reassign")).scalars()
        assert (event.username, event.outcome, event.detail["assigned"]) == (SUPERVISOR, "ok", [task_id])
