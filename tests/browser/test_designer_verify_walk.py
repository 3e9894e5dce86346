"""The designer verifies a draft that re-adds a blocking join, is refused the deploy, and overrides it (audited).

Playwright drives Debian's chromium. The drafts: an intake whose follow-up starts only after social
services finish their care plan (uploaded through the page), with its follow-up, forms and period
table. Screenshot: test-artifacts/designer-verify.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.drafts import save_draft
from engine.models import AuditEvent
from tests.support.browser import ARTIFACTS, live_app, sign_in
from webapp.extensions import db

BLOCKING = Path(__file__).resolve().parents[1] / "webapp" / "blocking_protocol"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """Serve the app (the protocol deployed, the demo accounts), verifying deploys on a few short histories."""
    with live_app(tmp_path, [["demo", "seed"]], npm_package="bpmn-js", DESIGNER_VERIFY_BEFORE_DEPLOY=True,
                  DESIGNER_VERIFY_HISTORIES=4, DESIGNER_VERIFY_DAYS=30) as served:
        yield served


def test_verify_shows_the_blocking_join_and_the_deploy_needs_an_audited_override(
    server: tuple[str, Any], browser: Any
) -> None:
    base, app = server
    with app.app_context():
        for path in sorted(BLOCKING.iterdir()):
            if path.name != "intake.bpmn":
                save_draft(db.session(), path.name, path.read_text(encoding="utf-8"), expected_version=None,
                           actor="disenadora", now=datetime.now(UTC))
        db.session.commit()
    page = sign_in(browser, base, "disenadora")
    page.goto(f"{base}/designer")
    page.set_input_files("#upload-file", str(BLOCKING / "intake.bpmn"))
    page.get_by_role("button", name="Subir como borrador").click()
    page.wait_for_url(re.compile(r".*/designer/editar/intake\.bpmn$"))

    page.goto(f"{base}/designer")
    page.get_by_role("link", name="Verificar los borradores").click()
    page.get_by_role("button", name="Verificar").click()
    finding = page.locator('.finding[data-invariant="police_reassessment_pending"]')
    finding.wait_for(timeout=120_000)
    told = finding.inner_text()
    assert "Incumplida: Revaloración policial pendiente y a tiempo" in told
    assert "día 0, 08:00: detección registrada, «Detección»" in told
    assert "completa «Valorar el riesgo»" in told
    assert "se incumple «Revaloración policial pendiente y a tiempo»" in told
    assert "«Plan de atención social» (Servicios sociales)" in told
    page.screenshot(path=str(ARTIFACTS / "designer-verify.png"), full_page=True)

    page.goto(f"{base}/designer")
    page.get_by_label("Comentario de la versión (qué cambia y por qué)").fill("Plan social antes del seguimiento")
    page.get_by_role("button", name="Desplegar los borradores").click()
    page.get_by_text("No se ha desplegado: la verificación de los borradores incumple invariantes").wait_for()
    page.get_by_label(re.compile("Desplegar a pesar de la verificación: motivo")).fill("Piloto autorizado por la Mesa")
    page.get_by_role("button", name="Desplegar a pesar de la verificación").click()
    page.get_by_text(re.compile("Desplegado. Versiones nuevas: .*intake v2")).wait_for()

    with app.app_context():
        actions = db.session.execute(select(AuditEvent.action, AuditEvent.outcome, AuditEvent.detail).where(
            AuditEvent.action.in_(("definition.verify", "definition.deploy", "definition.deploy_override")))
            .order_by(AuditEvent.id)).all()
    assert [(a, o) for a, o, _d in actions][:3] == [("definition.verify", "failed"), ("definition.deploy", "refused"),
                                                     ("definition.deploy_override", "ok")]
    override = actions[2][2]
    assert override["reason"] == "Piloto autorizado por la Mesa"
    assert "police_reassessment_pending" in override["broken"]
