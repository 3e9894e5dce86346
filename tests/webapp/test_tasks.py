"""Task pages: the real forms rendered on the server, drafts, completion, conflicts and need-to-know."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import definitions
from engine.forms import FormDefinition
from engine.models import TaskEvent
from engine.tasks import claim_task
from tests.support.protocol import COMPLAINT, risk_answers
from tests.support.web import Site, as_form
from webapp.extensions import db

REPORT, ASSESSMENT, REVIEW, MEASURES = ("police_report_to_court", "police_risk_assessment", "reassessment_review",
                                        "apply_police_measures")


def at_assessment(site: Site) -> tuple[int, int]:
    """Open a case and file the complaint: the risk assessment waits for the police. Return case and task ids."""
    case_id = site.open_case()
    site.complete(case_id, REPORT, COMPLAINT)
    return case_id, site.task(case_id, ASSESSMENT).id


def completed_events(site: Site, task_id: int) -> list[TaskEvent]:
    with site.app.app_context():
        return list(db.session.execute(select(TaskEvent).where(TaskEvent.task_id == task_id,
                                                               TaskEvent.action == "completed")).scalars())


def test_the_risk_form_is_rendered_on_the_server_with_its_sections_and_help(site: Site) -> None:
    case_id, task_id = at_assessment(site)
    response = site.browser("policia").get(f"/tareas/{task_id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<h1>Valoración policial del riesgo</h1>" in html
    legends = re.findall(r'<fieldset class="form-section"><legend>([^<]+)</legend>', html)
    assert legends == ["Historia de la violencia", "Agresor", "Vulnerabilidad de la víctima", "Menores",
                       "Circunstancias agravantes", "Seguimiento"]
    assert '<p class="help" id="f-strangulation-help">Indicador de alto riesgo de homicidio.</p>' in html
    assert re.search(r'<legend>Intento de estrangulamiento o asfixia <span class="required">\(obligatorio\)</span>'
                     r"</legend>", html)
    assert '<label for="f-strangulation-0">Sí</label>' in html
    assert '<label for="f-strangulation-1">No</label>' in html
    assert '<textarea id="f-notes" name="notes" maxlength="4000" rows="5"></textarea>' in html
    assert f'<form method="post" action="/tareas/{task_id}/completar" novalidate>' in html  # the server validates
    assert '<input type="hidden" name="version" value="1">' in html
    assert "Guardar borrador" in html
    assert "Datos del paso" not in html  # the risk form does not rely on earlier workflow data
    # Beside the form: the case's history, with the complaint filed on time, and no one else's steps.
    assert "Paso completado: Recoger la denuncia y remitir el atestado al juzgado" in html
    assert '<span class="badge on-time">En plazo</span>' in html
    assert [(e.case_id, e.object_id, e.outcome) for e in site.audit("task.read")] == [(case_id, task_id, "ok")]


def test_one_required_answer_missing_is_refused_next_to_that_field_and_nothing_changes(site: Site) -> None:
    case_id, task_id = at_assessment(site)
    answers = risk_answers("medio", notes="Relata amenazas por mensajes.")
    del answers["strangulation"]
    response = site.browser("policia").post(f"/tareas/{task_id}/completar", as_form(answers, version=1))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert '<div class="error-summary" role="alert"' in html
    assert ('<a href="#f-strangulation-0">Intento de estrangulamiento o asfixia: Responda a esta pregunta.</a>'
            in html)
    assert html.count('class="field-error"') == 1
    group = html.split('id="f-strangulation-field">')[1].split("</fieldset>")[0]
    assert '<p class="field-error" id="f-strangulation-error">Responda a esta pregunta.</p>' in group
    assert 'aria-describedby="f-strangulation-help f-strangulation-error" aria-invalid="true"' in group
    # What was typed is still there.
    assert 'id="f-physical_violence-0" name="physical_violence" value="true" checked' in html
    assert 'id="f-sexual_violence-1" name="sexual_violence" value="false" checked' in html
    assert ">Relata amenazas por mensajes.</textarea>" in html
    # Nothing moved.
    task = site.task(case_id, ASSESSMENT)
    assert (task.id, task.version, task.draft) == (task_id, 1, None)
    assert completed_events(site, task_id) == []
    [refusal] = site.audit("task.complete")
    assert (refusal.outcome, refusal.detail) == ("failed", {"fields": ["strangulation"]})


def test_a_refused_completion_resolves_the_pinned_form_of_the_task_once(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id, task_id = at_assessment(site)
    form_name = site.task(case_id, ASSESSMENT).form
    resolved: list[str] = []
    fill = definitions.filled_form

    def counting(session: Session, form: FormDefinition) -> FormDefinition:
        resolved.append(form.name)
        return fill(session, form)

    monkeypatch.setattr(definitions, "filled_form", counting)
    answers = risk_answers("medio")
    del answers["strangulation"]
    response = site.browser("policia").post(f"/tareas/{task_id}/completar", as_form(answers, version=1))
    assert response.status_code == 422
    assert resolved.count(form_name) == 1  # read the post, check it, show it again: one resolution


def test_completing_the_steps_moves_the_case_on_and_shows_the_workflow_data_they_need(site: Site) -> None:
    case_id = site.open_case()
    browser = site.browser("policia")
    report = site.task(case_id, REPORT)
    done = browser.post(f"/tareas/{report.id}/completar", as_form(
        {"complaint_received_at": "2026-03-02T10:00", "report_number": "AT-2026-001", "sent_to_court": True},
        version=report.version))
    assert done.status_code == 302
    assert done.headers["Location"] == f"/casos/{case_id}"
    [event] = completed_events(site, report.id)
    assert event.data is not None
    assert event.data["complaint_received_at"] == "2026-03-02T10:00:00+01:00"  # Madrid time, with its offset
    case_page = browser.get(done.headers["Location"]).get_data(as_text=True)
    assert "Paso completado." in case_page
    assessment = site.task(case_id, ASSESSMENT)
    assert f'<a href="/tareas/{assessment.id}">Valoración policial del riesgo</a>' in case_page

    browser.post(f"/tareas/{assessment.id}/completar", as_form(risk_answers("medio"), version=assessment.version))
    review = site.task(case_id, REVIEW)
    review_page = browser.get(f"/tareas/{review.id}").get_data(as_text=True)
    box = review_page.split("<h2 id=\"step-data-title\">Datos del paso</h2>")[1].split("</section>")[0]
    assert '<span class="badge risk-medio">Medio</span>' in box
    assert "Puntuación de 8 a 17" in box
    assert "Historia de la violencia: Escalada de la violencia (+3)" in box
    assert "<dt>Puntuación</dt><dd>8</dd>" in box

    browser.post(f"/tareas/{review.id}/completar", as_form(
        {"final_level": "medio", "especial_relevancia": False, "minors_at_risk": False}, version=review.version))
    measures = site.task(case_id, MEASURES)
    measures_page = browser.get(f"/tareas/{measures.id}").get_data(as_text=True)
    box = measures_page.split("Medidas obligatorias para el nivel</h3>")[1].split("</ul>")[0]
    assert "<li>Contactos telefónicos periódicos</li>" in box
    assert "<li>Acompañamientos</li>" in box
    assert "Control intenso del agresor" not in box
    # Beside it, the social services' step that runs in parallel.
    others = measures_page.split("Pasos pendientes de otros organismos</h2>")[1].split("</section>")[0]
    assert "Valoración social y plan de atención" in others


def test_a_stale_version_is_a_conflict_that_shows_the_current_state(site: Site) -> None:
    case_id, task_id = at_assessment(site)
    browser = site.browser("policia")
    assert '<input type="hidden" name="version" value="1">' in browser.get(f"/tareas/{task_id}").get_data(as_text=True)
    with site.app.app_context():  # a colleague claims it meanwhile
        claim_task(db.session(), task_id, now=site.clock.now(), actor=site.actor("policia2"))
        db.session.commit()
    response = browser.post(f"/tareas/{task_id}/completar", as_form(risk_answers("bajo"), version=1))
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "Otra persona ha cambiado esta tarea" in html
    assert "Asignada a: Policia2 (prueba)" in html
    assert "Esta tarea está asignada a otra persona" in html
    assert site.task(case_id, ASSESSMENT).assignee_id == site.users["policia2"]
    assert completed_events(site, task_id) == []
    assert site.audit("task.complete")[-1].detail == {"reason": "conflict"}
    draft = browser.post(f"/tareas/{task_id}/borrador", as_form({"physical_violence": True}, version=1))
    assert draft.status_code == 409


def test_a_task_claimed_by_a_colleague_cannot_be_completed_by_me(site: Site) -> None:
    case_id, task_id = at_assessment(site)
    with site.app.app_context():
        claim_task(db.session(), task_id, now=site.clock.now(), actor=site.actor("policia2"))
        db.session.commit()
    response = site.browser("policia").post(f"/tareas/{task_id}/completar", as_form(risk_answers("bajo"), version=2))
    assert response.status_code == 403
    assert "Acceso denegado" in response.get_data(as_text=True)
    assert site.audit("task.complete")[-1].outcome == "denied"
    assert site.task(case_id, ASSESSMENT).version == 2


def test_another_agency_gets_a_404_and_the_refusal_is_audited(site: Site) -> None:
    case_id, task_id = at_assessment(site)
    for username in ("salud", "policia.madrid"):
        browser = site.browser(username)
        page = browser.get(f"/tareas/{task_id}")
        assert page.status_code == 404
        assert "Página no encontrada" in page.get_data(as_text=True)
        posted = browser.post(f"/tareas/{task_id}/completar", as_form(risk_answers("bajo"), version=1))
        assert posted.status_code == 404
    denied = [(e.action, e.username, e.case_id, e.object_id) for e in site.audit("task.read", outcome="denied")]
    assert denied == [("task.read", "salud", case_id, task_id), ("task.read", "policia.madrid", case_id, task_id)]
    assert len(site.audit("task.complete", outcome="denied")) == 2
    assert site.task(case_id, ASSESSMENT).version == 1
    assert site.browser("salud").get("/tareas/999999").status_code == 404
    assert site.audit("task.read", object_id=999999)[0].outcome == "denied"


def test_a_draft_is_kept_and_fills_the_form_again(site: Site) -> None:
    case_id, task_id = at_assessment(site)
    browser = site.browser("policia")
    saved = browser.post(f"/tareas/{task_id}/borrador",
                         as_form({"physical_violence": True, "strangulation": False, "notes": "A medias"}, version=1))
    assert saved.status_code == 302
    assert saved.headers["Location"] == f"/tareas/{task_id}"
    task = site.task(case_id, ASSESSMENT)
    assert (task.version, task.draft) == (2, {"physical_violence": True, "strangulation": False, "notes": "A medias"})
    html = browser.get(saved.headers["Location"]).get_data(as_text=True)
    assert "Borrador guardado." in html
    assert "El formulario contiene el borrador guardado." in html
    assert 'name="physical_violence" value="true" checked' in html
    assert 'name="strangulation" value="false" checked' in html
    assert not re.search(r'name="sexual_violence" value="(true|false)" checked', html)
    assert ">A medias</textarea>" in html
    assert '<input type="hidden" name="version" value="2">' in html


def test_a_finished_task_says_so_and_a_second_completion_is_a_conflict(site: Site) -> None:
    case_id, task_id = at_assessment(site)
    browser = site.browser("policia")
    assert browser.post(f"/tareas/{task_id}/completar", as_form(risk_answers("bajo"), version=1)).status_code == 302
    page = browser.get(f"/tareas/{task_id}")
    assert page.status_code == 200
    assert "Esta tarea ya está completada" in page.get_data(as_text=True)
    again = browser.post(f"/tareas/{task_id}/completar", as_form(risk_answers("bajo"), version=1))
    assert again.status_code == 409
    assert "Otra persona ha cambiado esta tarea" in again.get_data(as_text=True)
    assert len(completed_events(site, task_id)) == 1
    assert site.browser("salud").get(f"/tareas/{task_id}").status_code == 404
    assert REVIEW in site.tasks(case_id)
