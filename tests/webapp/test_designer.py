"""The protocol designer's pages: access, drafts, refused uploads, round trips, preview, try, deploy, diff."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.models import Definition, DefinitionDraft, OpenTask
from tests.support.environment import unavailable
from tests.support.web import ROOT, Browser, Site
from webapp import form_html
from webapp.extensions import db

PROCESSES = ROOT / "processes"
DMN_30_TO_21 = ('<text>"P30D"</text>', '<text>"P21D"</text>')


def rows(site: Site) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every definition and draft row, in full: what 'nothing changed' is compared with."""
    with site.app.app_context():
        definitions = [tuple(r) for r in db.session.execute(
            select(Definition.id, Definition.kind, Definition.key, Definition.version, Definition.content_hash,
                   Definition.origin).order_by(Definition.id))]
        drafts = [tuple(r) for r in db.session.execute(
            select(DefinitionDraft.id, DefinitionDraft.file_name, DefinitionDraft.content, DefinitionDraft.row_version)
            .order_by(DefinitionDraft.id))]
    return definitions, drafts


def post_json(browser: Browser, path: str, body: dict[str, Any]) -> Any:
    return browser.client.post(path, json=body, headers={"X-CSRFToken": browser.token})


def upload(browser: Browser, name: str, content: bytes) -> Any:
    from io import BytesIO

    return browser.client.post("/designer/subir", data={"csrf_token": browser.token, "file": (BytesIO(content), name)},
                               content_type="multipart/form-data")


def deploy_drafts(browser: Browser, comment: str = "prueba") -> Any:
    return browser.post("/designer/desplegar", {"comment": comment})


def test_only_designers_reach_the_designer_and_refusals_are_audited(site: Site) -> None:
    police = site.browser("policia")
    assert police.get("/designer").status_code == 403
    assert post_json(police, "/designer/validar", {}).status_code == 403
    assert police.get("/designer/versiones/1/descargar").status_code == 403
    denied = site.audit("designer.access", outcome="denied")
    assert [e.username for e in denied] == ["policia"] * 3
    assert site.browser().get("/designer").status_code == 302  # signed out: to the login page


def test_the_definitions_page_lists_every_definition_with_versions_and_running_instances(site: Site) -> None:
    site.open_case()
    page = site.browser("disenadora").get("/designer")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for key in ("intake", "followup", "reassessment_period", "risk_assessment", "detection"):
        assert f'data-key="{key}"' in html
    intake = html[html.index('id="def-process-intake"'):]
    intake = intake[:intake.index("</article>")]
    assert "<td>cli</td>" in intake  # who deployed
    assert '<td class="num">1</td>' in intake.split('data-version="1"')[1]  # one running instance on v1


def test_a_stale_draft_save_answers_409_and_keeps_the_other_save(site: Site) -> None:
    ana, eva = site.browser("disenadora"), site.browser("disenadora")
    text = (PROCESSES / "reassessment_period.dmn").read_text(encoding="utf-8")
    first = post_json(ana, "/designer/borradores/reassessment_period.dmn", {"content": text, "version": None})
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.json["version"] == 1
    saved = post_json(eva, "/designer/borradores/reassessment_period.dmn",
                      {"content": text.replace(*DMN_30_TO_21), "version": 1})
    assert saved.json["version"] == 2
    stale = post_json(ana, "/designer/borradores/reassessment_period.dmn", {"content": text, "version": 1})
    assert stale.status_code == 409
    assert stale.json["error"]["current_version"] == 2
    _, [draft] = rows(site)
    assert '"P21D"' in draft[2]
    assert [e.outcome for e in site.audit("draft.save")] == ["ok", "ok", "failed"]
    ana.post("/designer/borradores/reassessment_period.dmn/descartar", {"version": "1"})  # stale: kept
    assert len(rows(site)[1]) == 1
    eva.post("/designer/borradores/reassessment_period.dmn/descartar", {"version": "2"})
    assert rows(site)[1] == []
    assert [e.outcome for e in site.audit("draft.discard")] == ["failed", "ok"]


def _outside_lane() -> bytes:
    text = (PROCESSES / "social_care.bpmn").read_text(encoding="utf-8")
    return text.replace("<bpmn:flowNodeRef>social_services_followup</bpmn:flowNodeRef>", "").encode()


def _missing_form() -> bytes:
    text = (PROCESSES / "social_care.bpmn").read_text(encoding="utf-8")
    return text.replace('name="form" value="followup_social"', 'name="form" value="followup_vecinal"').encode()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("followup.bpmn", b"esto no es XML", "the file is not XML"),
        ("followup.bpmn", b'<?xml version="1.0"?><definitions xmlns="http://example.com/not-bpmn" id="x"/>',
         "not a BPMN 2.0 file"),
        ("reassessment_period.dmn", (PROCESSES / "followup.bpmn").read_bytes(), "not a DMN file"),
        ("social_care.bpmn", _outside_lane(), "user task is outside any lane"),
        ("social_care.bpmn", _missing_form(), "form &#39;followup_vecinal&#39; does not exist"),
        ("followup.bpmn", b'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY % x SYSTEM "file:///dev/zero"> %x;]>\n<d/>',
         "declares a DOCTYPE"),
        ("../../etc/passwd.json", b"{}", "missing &#39;title&#39;"),
    ],
    ids=["not-xml", "wrong-namespace", "bpmn-as-dmn", "task-outside-lane", "missing-form", "doctype", "path"],
)
def test_a_broken_or_hostile_upload_is_refused_clearly_and_changes_nothing(
    site: Site, name: str, content: bytes, expected: str
) -> None:
    designer = site.browser("disenadora")
    before = rows(site)
    answer = upload(designer, name, content)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert expected in html
    assert rows(site) == before
    [event] = site.audit("definition.upload")
    assert event.outcome == "failed"


def test_the_refusals_name_the_element_and_line(site: Site) -> None:
    designer = site.browser("disenadora")
    html = upload(designer, "social_care.bpmn", _outside_lane()).get_data(as_text=True)
    assert "<code>social_services_followup</code>" in html
    assert "user task is outside any lane" in html
    lines = _outside_lane().decode().splitlines()
    line = next(n for n, text in enumerate(lines, start=1) if 'userTask id="social_services_followup"' in text)
    assert f'<td class="num">{line}</td>' in html
    doctype = upload(designer, "x.bpmn", b'<?xml version="1.0"?>\n<!DOCTYPE d>\n<d/>').get_data(as_text=True)
    assert '<td class="num">2</td>' in doctype


def downloaded(browser: Browser, site: Site, file_name: str) -> tuple[int, bytes, Any]:
    with site.app.app_context():
        definition_id = db.session.execute(select(Definition.id).where(Definition.file_name == file_name)
                                           .order_by(Definition.id.desc()).limit(1)).scalar_one()
    answer = browser.get(f"/designer/versiones/{definition_id}/descargar")
    assert answer.status_code == 200
    return definition_id, answer.data, answer


def test_every_protocol_file_downloaded_and_uploaded_again_deploys_as_unchanged(site: Site) -> None:
    designer = site.browser("disenadora")
    files = sorted(p.name for p in PROCESSES.glob("*.bpmn")) + sorted(p.name for p in PROCESSES.glob("*.dmn"))
    files += sorted(p.name for p in (ROOT / "forms").glob("*.json"))
    for file_name in files:
        _, content, answer = downloaded(designer, site, file_name)
        assert answer.headers["Content-Disposition"] == f'attachment; filename="{file_name}"'
        assert answer.mimetype == ("application/json" if file_name.endswith(".json") else "application/xml")
        assert content == ((ROOT / "forms" if file_name.endswith(".json") else PROCESSES) / file_name).read_bytes()
        assert upload(designer, file_name, content).status_code == 302, file_name
    before, _ = rows(site)
    assert deploy_drafts(designer).status_code == 302
    after, drafts = rows(site)
    assert (after, drafts) == (before, [])  # every version's content hash was the same: "unchanged"
    assert len(site.audit("definition.download")) == len(files)


def test_a_file_written_by_a_standard_modeller_deploys_to_the_same_definition(site: Site, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "bpmn-moddle").exists():
        unavailable("needs node and npm ci (bpmn-moddle, the model layer of bpmn.io and Camunda Modeler)")
    designer = site.browser("disenadora")
    originals = {}
    for name in ("intake", "followup", "incident", "inactivation"):
        definition_id, content, _ = downloaded(designer, site, f"{name}.bpmn")
        originals[name] = definition_id
        (tmp_path / f"{name}.bpmn").write_bytes(content)
        run = subprocess.run([node, str(ROOT / "tools" / "moddle_roundtrip.mjs"), str(tmp_path / f"{name}.bpmn")],  # noqa: S603
                             cwd=ROOT, capture_output=True, timeout=120, check=False)
        assert run.returncode == 0, run.stderr.decode()
        assert run.stdout != content  # written anew by bpmn-moddle, as bpmn.io would save it
        assert upload(designer, f"diagrama_{name}.bpmn", run.stdout).status_code == 302  # a modeller's own name
    assert deploy_drafts(designer, "reescrito por bpmn-moddle").status_code == 302
    with site.app.app_context():
        for name, old_id in originals.items():
            old = db.session.get_one(Definition, old_id)
            new = db.session.execute(select(Definition).where(Definition.key == name, Definition.kind == "process")
                                     .order_by(Definition.version.desc()).limit(1)).scalar_one()
            assert (new.version, new.file_name, new.origin) == (old.version + 1, f"{name}.bpmn", "upload")
            assert (new.spec, new.task_kinds, new.form_ids) == (old.spec, old.task_kinds, old.form_ids)


def test_the_form_preview_is_the_task_pages_rendering_and_lists_problems(site: Site) -> None:
    designer = site.browser("disenadora")
    raw = json.loads((ROOT / "forms" / "followup_social.json").read_text(encoding="utf-8"))
    answer = post_json(designer, "/designer/formularios/vista-previa?file=followup_social.json",
                       {"content": json.dumps(raw)})
    assert answer.json["problems"] == []
    with site.app.test_request_context():
        assert answer.json["html"] == str(form_html.render(site.forms["followup_social"]))
    raw["ui"]["sections"][0]["fields"].append("nonexistent")
    broken = post_json(designer, "/designer/formularios/vista-previa", {"content": json.dumps(raw)})
    assert broken.json["html"] is None
    assert "names unknown fields ['nonexistent']" in broken.json["problems"][0]["message"]


def test_a_try_shows_the_drafts_deadline_and_keeps_nothing(site: Site) -> None:
    designer = site.browser("disenadora")
    text = (PROCESSES / "reassessment_period.dmn").read_text(encoding="utf-8").replace(*DMN_30_TO_21)
    assert post_json(designer, "/designer/borradores/reassessment_period.dmn",
                     {"content": text, "version": None}).status_code == 200
    before = rows(site)
    scenario = {"case": {"risk_level": "medio"}, "data": {"reason": "periodic"}, "steps": []}
    page = designer.post("/designer/probar", {"process": "followup", "territory": str(site.territories["here"]),
                                              "scenario": json.dumps(scenario)})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    row = html[html.index('<tr data-element="police_reassessment"'):]
    assert 'data-due-days="21.0"' in row[:200]
    assert "Policía estatal (Guardia Civil / Policía Nacional) de Vegas Bajas" in row[:600]
    assert rows(site) == before
    with site.app.app_context():
        assert db.session.execute(select(OpenTask)).first() is None
    [event] = site.audit("definition.try")
    assert (event.outcome, event.detail["files"]) == ("ok", ["reassessment_period.dmn"])


def test_deploying_drafts_with_a_comment_audits_each_version_and_shows_the_changes(site: Site) -> None:
    designer = site.browser("disenadora")
    text = (PROCESSES / "reassessment_period.dmn").read_text(encoding="utf-8").replace(*DMN_30_TO_21)
    post_json(designer, "/designer/borradores/reassessment_period.dmn", {"content": text, "version": None})
    assert deploy_drafts(designer, "").status_code == 302  # no comment: nothing deployed
    assert rows(site)[1] != []
    assert deploy_drafts(designer, "Medio: 21 días").status_code == 302
    events = site.audit("definition.deploy")
    # The decision and every process calling it (the police, social and equality lines) get new versions.
    assert sorted(e.detail["key"] for e in events) == ["equality_followup", "followup", "reassessment_period",
                                                       "social_care"]
    assert {e.username for e in events} == {"disenadora"}
    changes = designer.get("/designer/decision/reassessment_period/cambios?de=1&a=2").get_data(as_text=True)
    assert "period_medium" in changes
    assert "<code>&#34;P30D&#34;</code>" in changes
    assert "<code>&#34;P21D&#34;</code>" in changes
    again = site.app.test_cli_runner().invoke(args=["processes", "deploy"])  # `make run` after the designer
    assert "unchanged reassessment_period.dmn: a designer deployed a newer version, which is kept" in again.output
    with site.app.app_context():
        latest = db.session.execute(select(Definition.version, Definition.origin)
                                    .where(Definition.key == "reassessment_period").order_by(Definition.version.desc())
                                    .limit(1)).one()
    assert tuple(latest) == (2, "designer")


def test_editors_open_with_the_modellers_served_from_node_modules(site: Site) -> None:
    designer = site.browser("disenadora")
    editors = (("followup.bpmn", "bpmn-js/bpmn-modeler"), ("reassessment_period.dmn", "dmn-js/dmn-modeler"),
               ("followup_social.json", None))
    for file_name, bundle in editors:
        html = designer.get(f"/designer/editar/{file_name}").get_data(as_text=True)
        if bundle:
            assert f"/designer/vendor/{bundle}.production.min.js" in html
    spanish = designer.get("/designer/vendor/bpmn-js-i18n/es.js")
    assert spanish.status_code == 200
    assert "Añadir carril arriba" in spanish.get_data(as_text=True)
    spanish.close()
    assert designer.get("/designer/editar/..%2Fsecret.bpmn").status_code == 404
    assert "Contacto extra" in designer.get("/designer/editar/contacto_extra.json").get_data(as_text=True)  # new file
    assert designer.get("/designer/fuente/followup.bpmn").data == (PROCESSES / "followup.bpmn").read_bytes()


def test_the_invariants_are_edited_validated_deployed_and_downloaded_like_any_definition(site: Site) -> None:
    designer = site.browser("disenadora")
    page = designer.get("/designer")
    assert 'data-key="protocol"' in page.get_data(as_text=True)  # deployed from processes/
    editor = designer.get("/designer/editar/protocol.invariants.json").get_data(as_text=True)
    assert 'id="invariants-json"' in editor
    assert "police_reassessment_pending" in editor
    raw = json.loads((PROCESSES / "protocol.invariants.json").read_text(encoding="utf-8"))
    raw["invariants"][3]["steps"] = ["protection_order_heraing"]
    saved = post_json(designer, "/designer/borradores/protocol.invariants.json",
                      {"content": json.dumps(raw, ensure_ascii=False), "version": None})
    assert saved.status_code == 200, saved.get_data(as_text=True)
    checked = post_json(designer, "/designer/validar", {}).json
    assert checked["valid"] is False
    (problem,) = checked["problems"]
    assert (problem["file"], problem["element_id"]) == ("protocol.invariants.json", "hearing_within_72h")
    assert "'protection_order_heraing'" in problem["message"]
    raw["invariants"][3]["steps"] = ["protection_order_hearing"]
    raw["invariants"][3]["due_within_of_creation"] = "PT48H"
    post_json(designer, "/designer/borradores/protocol.invariants.json",
              {"content": json.dumps(raw, ensure_ascii=False), "version": saved.json["version"]})
    assert deploy_drafts(designer, "Comparecencia en 48 horas").status_code == 302
    with site.app.app_context():
        versions = db.session.execute(select(Definition.id, Definition.version).where(
            Definition.kind == "invariants", Definition.key == "protocol").order_by(Definition.version)).all()
    assert [v for _, v in versions] == [1, 2]
    changes = designer.get("/designer/invariants/protocol/cambios?de=1&a=2").get_data(as_text=True)
    assert "hearing_within_72h" in changes
    assert "PT48H" in changes
    answer = designer.get(f"/designer/versiones/{versions[-1][0]}/descargar")
    assert answer.mimetype == "application/json"
    assert json.loads(answer.data)["invariants"][3]["due_within_of_creation"] == "PT48H"
    assert "{\"invariants\": [" in designer.get("/designer/fuente/nuevas.invariants.json").get_data(as_text=True)
