"""Risk levels in the pages come from the deployed scale: labels, badge colours, filters, board, Mesa agenda."""

from __future__ import annotations

import io

from sqlalchemy import select

from engine.deploy import deploy
from engine.execution import start_case
from engine.levels import SHIPPED, RiskLevel, RiskScale
from engine.models import Case, Definition
from tests.engine.levels.files import (
    SPLIT_RULES,
    SPLIT_SCALE,
    level_table,
    review_files,
    scale_file,
    shipped_table_split,
)
from tests.support.web import Site
from webapp.extensions import db
from webapp.mesa.agenda import AgendaFacts, build_agenda
from webapp.supervision.queries import risk_levels

REVIEW = {"especial_relevancia": False, "minors_at_risk": False}


def reviewed_case(site: Site, score: int, level: str) -> int:
    """Open a case of the review process with a score, review it at `level`; return its id."""
    with site.app.app_context():
        case, _ = start_case(db.session(), territory_id=site.territories["here"], process_key="level_review",
                             data={"risk_score": score}, now=site.clock.now(), actor=site.actor("policia"))
        db.session.commit()
        case_id = case.id
    site.complete(case_id, "review", {"final_level": level, **REVIEW})
    return case_id


def deploy_review(site: Site, *, split: bool = False) -> None:
    """Deploy the review process over the shipped protocol, then (with `split`) the designer's split of bajo.

    The split changes the shipped risk_level table too: a scale without *bajo* refuses tables that give it.
    """
    with site.app.app_context():
        deploy(db.session(), review_files(), actor="tests", now=site.clock.now())
        if split:
            deploy(db.session(), [scale_file(SPLIT_SCALE), level_table(SPLIT_RULES), shipped_table_split()],
                   actor="disenadora", now=site.clock.now())
        db.session.commit()


def test_a_case_at_no_apreciado_shows_its_label_and_colour(site: Site) -> None:
    deploy_review(site)
    case_id = reviewed_case(site, 0, "no_apreciado")
    browser = site.browser("policia")
    page = browser.get(f"/casos/{case_id}").get_data(as_text=True)
    assert '<span class="badge risk-no_apreciado">No apreciado</span>' in page
    css = browser.get("/niveles-de-riesgo.css")
    assert css.mimetype == "text/css"
    assert ".badge.risk-no_apreciado { background: #4b5563; color: #ffffff; }" in css.get_data(as_text=True)


def test_the_split_levels_show_in_spanish_and_english(site: Site) -> None:
    deploy_review(site, split=True)
    case_id = reviewed_case(site, 6, "bajo_con_medidas")
    browser = site.browser("policia")
    assert '<span class="badge risk-bajo_con_medidas">Bajo con medidas</span>' in browser.get(
        f"/casos/{case_id}").get_data(as_text=True)
    browser.post("/language", {"language": "en"})
    assert '<span class="badge risk-bajo_con_medidas">Low, with measures</span>' in browser.get(
        f"/casos/{case_id}").get_data(as_text=True)


def test_the_badge_stylesheet_follows_the_deployed_scale(site: Site) -> None:
    browser = site.browser("policia")
    before = browser.get("/niveles-de-riesgo.css")
    assert browser.get("/niveles-de-riesgo.css", headers={"If-None-Match": before.headers["ETag"]}).status_code == 304
    deploy_review(site, split=True)
    after = browser.get("/niveles-de-riesgo.css", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert ".badge.risk-bajo_con_medidas { background: #3f6212;" in after.get_data(as_text=True)


def test_the_worklist_filters_by_a_level_the_designer_added(site: Site) -> None:
    deploy_review(site, split=True)
    without = reviewed_case(site, 3, "bajo_sin_medidas")
    with_measures = reviewed_case(site, 6, "bajo_con_medidas")
    browser = site.browser("policia")
    page = browser.get("/?tab=agency&risk=bajo_con_medidas").get_data(as_text=True)
    assert '<option value="bajo_con_medidas" selected>Bajo con medidas</option>' in page
    with site.app.app_context():
        shown, hidden = (db.session.get_one(Case, case_id).reference for case_id in (with_measures, without))
    assert shown in page
    assert hidden not in page


def test_the_board_counts_cases_by_the_deployed_order(site: Site) -> None:
    deploy_review(site, split=True)
    for score, level in ((3, "bajo_sin_medidas"), (10, "medio"), (6, "bajo_con_medidas"), (0, "no_apreciado")):
        reviewed_case(site, score, level)
    with site.app.app_context():
        rows = risk_levels(db.session(), [site.territories["here"]])
    assert [row.level for row in rows] == ["medio", "bajo_con_medidas", "bajo_sin_medidas", "no_apreciado"]


def test_the_mesa_reviews_the_levels_the_scale_flags_high() -> None:
    flagged = RiskScale((RiskLevel("bajo", "Bajo", "Low", "#166534"), RiskLevel("medio", "Medio", "Medium", "#92400e"),
                         RiskLevel("alto", "Alto", "High", "#b91c1c"),
                         RiskLevel("extremo", "Extremo", "Extreme", "#7f1d1d", high=True)))
    facts = {"levels": {1: "alto", 2: "extremo", 3: "medio"}, "references": {1: "A", 2: "B", 3: "C"}}
    assert [(e.case_id, e.reasons) for e in build_agenda(AgendaFacts(**facts, scale=flagged))] == [(2, ("high_risk",))]
    assert [(e.case_id, e.reasons) for e in build_agenda(AgendaFacts(**facts, scale=SHIPPED))] == [
        (2, ("high_risk",)), (1, ("high_risk",))]


def test_a_designer_splits_bajo_in_the_designer_and_sees_the_change(site: Site) -> None:
    designer = site.browser("disenadora")
    editor = designer.get("/designer/editar/risk.levels.json").get_data(as_text=True)
    assert 'id="source-json"' in editor
    assert '<span class="badge risk-no_apreciado">No apreciado</span>' in editor  # the deployed scale
    split = scale_file(SPLIT_SCALE).content.decode("utf-8")
    saved = designer.client.post("/designer/borradores/risk.levels.json", json={"content": split, "version": None},
                                 headers={"X-CSRFToken": designer.token})
    assert saved.status_code == 200, saved.get_data(as_text=True)
    checked = designer.client.post("/designer/validar", json={}, headers={"X-CSRFToken": designer.token}).json
    assert [(p["file"], p["element_id"]) for p in checked["problems"]] == [("risk_level.dmn", "level_low")]
    table = shipped_table_split()
    uploaded = designer.client.post("/designer/subir", content_type="multipart/form-data", data={
        "csrf_token": designer.token, "file": (io.BytesIO(table.content), table.name)})
    assert uploaded.status_code == 302, uploaded.get_data(as_text=True)
    assert designer.post("/designer/desplegar", {"comment": "Bajo dividido (2025)"}).status_code == 302
    changes = designer.get("/designer/levels/risk/cambios?de=1&a=2").get_data(as_text=True)
    assert "bajo_con_medidas" in changes
    assert "Bajo con medidas" in changes
    with site.app.app_context():
        latest = db.session.execute(select(Definition.id, Definition.origin).where(Definition.kind == "levels")
                                    .order_by(Definition.id.desc()).limit(1)).one()
    assert latest.origin == "designer"
    download = designer.get(f"/designer/versiones/{latest.id}/descargar")
    assert (download.mimetype, download.data.decode("utf-8")) == ("application/json", split)
