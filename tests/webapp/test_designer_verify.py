"""The designer's "Verificar" on a draft that re-adds a blocking join; a deploy refused unless overridden."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from engine.drafts import save_draft
from engine.models import Definition
from tests.support.web import Site
from webapp.extensions import db

BLOCKING = Path(__file__).parent / "blocking_protocol"  # intake waits for social services before follow-up starts


def blocking_drafts(site: Site) -> None:
    """Make the blocking intake, its follow-up, forms and period table the drafts, and verify deploys."""
    site.app.config["DESIGNER_VERIFY_BEFORE_DEPLOY"] = True
    with site.app.app_context():
        for path in sorted(BLOCKING.iterdir()):
            save_draft(db.session(), path.name, path.read_text(encoding="utf-8"), expected_version=None,
                       actor="disenadora", now=site.clock.now())
        db.session.commit()


def deployed_versions(site: Site) -> list[tuple[str, int]]:
    with site.app.app_context():
        return sorted((k, v) for k, v in db.session.execute(select(Definition.key, Definition.version)))


def test_verify_shows_the_broken_invariant_and_its_shortest_sequence_in_spanish(site: Site) -> None:
    blocking_drafts(site)
    designer = site.browser("disenadora")
    page = designer.post("/designer/verificar", {})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Incumplida: Revaloración policial pendiente y a tiempo" in html
    assert "día 0, 08:00: detección registrada, «Detección»" in html
    assert "completa «Valorar el riesgo»" in html
    assert "«Plan de atención social» (Servicios sociales)" in html  # the step the join waits for
    [event] = site.audit("definition.verify")
    assert event.outcome == "failed"
    assert "police_reassessment_pending" in event.detail["broken"]


def test_a_deploy_that_fails_verification_is_refused_then_deployed_with_an_audited_override(site: Site) -> None:
    blocking_drafts(site)
    before = deployed_versions(site)
    designer = site.browser("disenadora")
    refused = designer.post("/designer/desplegar", {"comment": "Plan social antes del seguimiento"})
    assert refused.status_code == 422
    assert "No se ha desplegado: la verificación de los borradores incumple invariantes" in refused.get_data(
        as_text=True)
    assert deployed_versions(site) == before
    assert [e.outcome for e in site.audit("definition.deploy")] == ["refused"]

    done = designer.post("/designer/desplegar", {"comment": "Plan social antes del seguimiento",
                                                  "override_reason": "Prueba piloto autorizada por la Mesa"})
    assert done.status_code == 302
    assert deployed_versions(site) != before
    [override] = site.audit("definition.deploy_override")
    assert override.username == "disenadora"
    assert override.detail["reason"] == "Prueba piloto autorizada por la Mesa"
    assert "police_reassessment_pending" in override.detail["broken"]
