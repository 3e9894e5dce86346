"""The supervisor's board: what it counts on a small known history, who may see it, CSV, reassignment."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from engine.execution import start_case
from engine.models import Agency, AuditEvent, OpenTask, StepTimingPending, TaskEvent
from engine.tasks import claim_task
from tests.support.protocol import COMPLAINT, detection, risk_answers
from tests.support.web import Site
from webapp.auth.principal import load_principal
from webapp.extensions import db
from webapp.supervision.export import safe_cell
from webapp.supervision.queries import Board, BoardFilters, board

REVIEW = {"final_level": "medio", "especial_relevancia": False, "minors_at_risk": False}
POLICE, SOCIAL = ("state_police", "here"), ("social_services", "here")


@dataclass
class History:
    """Three cases here and one there, driven with the fake clock (T0 = Monday 2026-03-02 09:00 UTC).

    Each detection starts the complaint and the risk assessment (both due T0+24h), the safety plan and the
    care plan at once. Complaint steps done at T0+2h, T0+20h and T0+30h: 22 h early, 4 h early, 6 h late.
    The second case is assessed "medio" with its complaint (4 h early) and reviewed at once (4 h early),
    which starts its measures. At T0+30h the first and third cases' assessments are 6 h overdue, claimed
    by policia2 and policia. Madrid's case is overdue too.
    """

    site: Site
    first: int
    second: int
    third: int
    madrid: int


@pytest.fixture
def history(site: Site) -> History:
    """Build the known history."""
    cases = [site.open_case() for _ in range(3)]
    with site.app.app_context():
        madrid, _ = start_case(db.session(), territory_id=site.territories["there"], process_key="intake",
                               data=detection(), now=site.clock.now(), actor=site.actor("policia.madrid"),
                               check_form=True)
        db.session.commit()
        madrid_id = madrid.id
    for case_id, hours in zip(cases, (2, 18, 10), strict=True):
        site.clock.advance(timedelta(hours=hours))
        site.complete(case_id, "police_report_to_court", COMPLAINT)
        if case_id == cases[1]:  # the second is assessed with its complaint, 4 h early, and reviewed at once
            site.complete(cases[1], "police_risk_assessment", risk_answers("medio"))
            site.complete(cases[1], "reassessment_review", REVIEW)
    for case_id, username in ((cases[0], "policia2"), (cases[2], "policia")):
        task = site.task(case_id, "police_risk_assessment")
        with site.app.app_context():
            claim_task(db.session(), task.id, now=site.clock.now(), actor=site.actor(username))
            db.session.commit()
    return History(site, cases[0], cases[1], cases[2], madrid_id)


def read_board(history: History, username: str = "policia.jefa", **args: str) -> Board:
    """Read the board as a user, with filters given as URL arguments."""
    site = history.site
    with site.app.app_context():
        principal = load_principal(db.session(), site.users[username])
        assert principal is not None
        return board(db.session(), principal, BoardFilters.from_args(args, principal), site.clock.now())


def reference(history: History, case_id: int) -> str:
    """Return a case's reference."""
    from engine.models import Case

    with history.site.app.app_context():
        return db.session.get(Case, case_id).reference


# --- What the board counts --------------------------------------------------------------------------
def test_overdue_steps_are_counted_by_agency_and_by_step_and_listed_with_days_late(history: History) -> None:
    site, data = history.site, read_board(history)
    police = site.agencies[POLICE]
    assert [(row.agency_id, row.overdue) for row in data.agencies if row.overdue] == [(police, 2)]
    assert [(row.element_id, row.overdue) for row in data.steps if row.overdue] == [("police_risk_assessment", 2)]
    assert data.late_total == 2
    assert [(late.case_id, late.element_id, late.agency_id) for late in data.late] == [
        (history.first, "police_risk_assessment", police), (history.third, "police_risk_assessment", police)]
    assert {late.due_at for late in data.late} == {site.clock.now() - timedelta(hours=6)}
    assert [late.days_late for late in data.late] == [pytest.approx(0.2)] * 2


def test_load_counts_open_steps_per_agency_and_professional_with_the_overdue_ones(history: History) -> None:
    site, data = history.site, read_board(history)
    load = {row.agency_id: (row.open, row.overdue, row.unassigned) for row in data.agencies}
    # Police: two risk assessments (both claimed, both late), the second case's measures, three safety plans.
    assert load[site.agencies[POLICE]] == (6, 2, 4)
    assert load[site.agencies[SOCIAL]] == (3, 0, 3)  # each case's social assessment and care plan, from detection
    people = {row.user_id: (row.open, row.overdue) for row in data.professionals}
    assert people == {site.users["policia2"]: (1, 1), site.users["policia"]: (1, 1)}


def test_cases_are_counted_by_risk_level(history: History) -> None:
    data = read_board(history)
    assert [(row.level, row.cases) for row in data.risks] == [("medio", 1), (None, 2)]


def test_reassessments_due_within_seven_days_are_listed_soonest_first(history: History) -> None:
    site = history.site
    assert read_board(history).reassessments_total == 0  # the late first assessments are late steps, not "due soon"
    assessed_at = site.clock.now() - timedelta(hours=10)  # the second case, assessed "medio" at T0+20h
    site.clock.advance(timedelta(days=25))
    data = read_board(history)
    assert data.reassessments_total == 1
    [due] = data.reassessments
    assert (due.case_id, due.due_at) == (history.second, assessed_at + timedelta(days=30))
    site.clock.advance(timedelta(days=6))  # it is overdue now: a late step, no longer "due soon"
    assert read_board(history).reassessments_total == 0


def test_step_timings_give_on_time_share_median_and_90th_percentile_against_the_deadline(history: History) -> None:
    timings = {row.element_id: row for row in read_board(history).timings}
    complaint = timings["police_report_to_court"]
    assert (complaint.completed, complaint.on_time) == (3, 2)
    assert complaint.on_time_share == pytest.approx(2 / 3)
    # Deltas -22 h, -4 h, +6 h: median -4 h; 90th percentile -4 + 0.8 x 10 = +4 h (interpolated).
    assert (complaint.median_hours, complaint.p90_hours) == (-4.0, 4.0)
    assessment = timings["police_risk_assessment"]
    assert (assessment.completed, assessment.on_time, assessment.median_hours) == (1, 1, -4.0)
    assert timings["reassessment_review"].median_hours == -4.0


def test_step_timings_are_the_same_once_the_worker_rolled_them_up(history: History) -> None:
    before = read_board(history).timings
    result = history.site.app.test_cli_runner().invoke(
        args=["deadlines", "run", "--now", history.site.clock.now().isoformat()])
    assert result.exit_code == 0, result.output
    assert "5 completions rolled up" in result.output  # three complaints, an assessment and its review
    with history.site.app.app_context():
        assert db.session.execute(select(StepTimingPending)).first() is None
    assert read_board(history).timings == before


def test_step_timings_keep_to_the_period(history: History) -> None:
    history.site.clock.advance(timedelta(days=40))
    assert read_board(history).timings == []
    assert {row.element_id for row in read_board(history, period="90").timings} == {
        "police_report_to_court", "police_risk_assessment", "reassessment_review"}


# --- Who sees what ----------------------------------------------------------------------------------
def test_the_board_is_for_supervisors_only_and_a_refusal_is_audited(history: History) -> None:
    site = history.site
    response = site.browser("policia").get("/supervision")
    assert response.status_code == 403
    assert site.browser("policia").get("/supervision/export/late_steps.csv").status_code == 403
    denied = site.audit("supervision.read", outcome="denied")
    assert [event.user_id for event in denied] == [site.users["policia"]] * 2


def test_the_board_shows_the_supervisors_territories_only_and_audits_the_read(history: History) -> None:
    site = history.site
    madrid = reference(history, history.madrid)
    browser = site.browser("policia.jefa")
    for query in ("", f"?territory={site.territories['there']}"):
        html = browser.get(f"/supervision{query}").get_data(as_text=True)
        assert reference(history, history.first) in html
        assert madrid not in html
    assert all(case_id != history.madrid for case_id in read_board(history).case_ids())
    [first, _second] = site.audit("supervision.read", user_id=site.users["policia.jefa"])
    assert first.outcome == "ok"
    assert first.detail is not None
    assert history.first in first.detail["case_ids"]


def test_the_page_embeds_each_charts_data_beside_its_table(history: History) -> None:
    html = history.site.browser("policia.jefa").get("/supervision").get_data(as_text=True)
    match = re.search(r'<script type="application/json" id="board-charts">(.*?)</script>', html, re.S)
    assert match
    charts = json.loads(match.group(1))
    assert set(charts) == {"overdue_by_agency", "load_by_agency", "risk_levels", "on_time_by_step"}
    for name in charts:
        assert f'data-chart="{name}"' in html
    assert charts["overdue_by_agency"]["datasets"][0]["data"] == [2]
    assert charts["load_by_agency"]["datasets"][1]["data"] == [2, 0]  # overdue: police, then social services
    assert "/vendor/chart.js/chart.umd.min.js" in html
    with history.site.browser("policia.jefa").get("/vendor/chart.js/chart.umd.min.js") as bundle:
        assert bundle.status_code == 200
        assert b"Chart.js v4.6.1" in bundle.get_data()[:200]


def test_a_supervisor_sees_the_link_to_the_board_and_others_do_not(history: History) -> None:
    assert 'href="/supervision"' in history.site.browser("policia.jefa").get("/").get_data(as_text=True)
    assert 'href="/supervision"' not in history.site.browser("policia").get("/").get_data(as_text=True)


# --- CSV --------------------------------------------------------------------------------------------
def rows_of(text: str) -> list[list[str]]:
    """Parse a CSV export (after its byte-order mark)."""
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_csv_exports_the_late_steps_without_identifying_data(history: History) -> None:
    site = history.site
    browser = site.browser("policia.jefa")
    response = browser.get("/supervision/export/late_steps.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="supervision-late_steps.csv"'
    header, *rows = rows_of(response.get_data(as_text=True))
    assert header == ["Caso", "Paso", "Organismo", "Plazo", "Días de retraso"]
    assert rows == [[reference(history, case_id), "Valoración policial del riesgo",
                     "Policía estatal (Guardia Civil / Policía Nacional) de Vegas Bajas", "2026-03-03T10:00+01:00",
                     "0.2"] for case_id in (history.first, history.third)]
    [event] = site.audit("supervision.read", user_id=site.users["policia.jefa"])
    assert event.detail == {"view": "export", "table": "late_steps", "case_ids": [history.first, history.third]}


def test_every_table_exports_with_the_filters_of_the_board(history: History) -> None:
    browser = history.site.browser("policia.jefa")
    history.site.clock.advance(timedelta(days=25))  # the second case's re-assessment is due within a week
    tables = ("overdue_by_agency", "overdue_by_step", "late_steps", "load_by_agency", "load_by_professional",
              "risk_levels", "reassessments", "step_timing")
    for name in tables:
        response = browser.get(f"/supervision/export/{name}.csv?period=90")
        assert response.status_code == 200, name
        assert len(rows_of(response.get_data(as_text=True))) >= 2, name
    timing = rows_of(browser.get("/supervision/export/step_timing.csv").get_data(as_text=True))
    complaint = next(row for row in timing if row[1] == "police_report_to_court")
    assert complaint[2:] == ["3", "2", "66.7", "-4.0", "4.0"]  # negative numbers stay numbers
    assert browser.get("/supervision/export/audit_event.csv").status_code == 404


def test_csv_cells_that_look_like_formulas_are_quoted(history: History) -> None:
    site = history.site
    with site.app.app_context():
        db.session.execute(update(Agency).where(Agency.id == site.agencies[POLICE])
                           .values(name='=HYPERLINK("http://x.example","clic")'))
        db.session.commit()
    text = site.browser("policia.jefa").get("/supervision/export/overdue_by_agency.csv").get_data(as_text=True)
    assert rows_of(text)[1] == ['\'=HYPERLINK("http://x.example","clic")', "2"]
    for cell in ("=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(cell) == "'" + cell
    assert (safe_cell("Caso 1"), safe_cell(-4.0), safe_cell(None)) == ("Caso 1", -4.0, "")


# --- Bulk reassignment ------------------------------------------------------------------------------
def own_task(history: History, case_id: int, element_id: str = "police_risk_assessment") -> OpenTask:
    """Return an open step of a case."""
    return history.site.task(case_id, element_id)


def test_a_supervisor_assigns_several_steps_of_her_agency_to_a_member(history: History) -> None:
    site = history.site
    first, third = own_task(history, history.first), own_task(history, history.third)
    browser = site.browser("policia.jefa")
    response = browser.post("/supervision/reasignar", [
        ("task", f"{first.id}:{first.version}"), ("task", f"{third.id}:{third.version}"),
        ("assignee", str(site.users["policia2"])), ("period", "90")])
    assert response.status_code == 302
    assert response.headers["Location"] == "/supervision?period=90"
    assert "Pasos asignados a Policia2 (prueba): 2." in browser.get("/supervision").get_data(as_text=True)
    assert {own_task(history, c).assignee_id for c in (history.first, history.third)} == {site.users["policia2"]}
    with site.app.app_context():
        assigned = db.session.execute(select(TaskEvent).where(TaskEvent.action == "assigned")).scalars().all()
    assert sorted(event.task_id for event in assigned) == sorted([first.id, third.id])
    [event] = site.audit("supervision.reassign")
    assert (event.outcome, event.object_id) == ("ok", site.users["policia2"])
    assert event.detail == {"assigned": [first.id, third.id], "conflicts": [], "refused": []}


def test_a_step_changed_meanwhile_is_reported_and_the_others_are_assigned(history: History) -> None:
    site = history.site
    first, third = own_task(history, history.first), own_task(history, history.third)
    browser = site.browser("policia.jefa")
    response = browser.post("/supervision/reasignar", [
        ("task", f"{first.id}:{first.version - 1}"), ("task", f"{third.id}:{third.version}"),
        ("assignee", str(site.users["policia.jefa"]))], follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "han cambiado mientras tanto" in html
    assert reference(history, history.first) in html
    assert own_task(history, history.first).assignee_id == site.users["policia2"]  # unchanged
    assert own_task(history, history.third).assignee_id == site.users["policia.jefa"]
    [event] = site.audit("supervision.reassign")
    assert event.detail == {"assigned": [third.id], "conflicts": [first.id], "refused": []}


def test_steps_of_another_agency_are_refused(history: History) -> None:
    site = history.site
    social = own_task(history, history.second, "social_assessment_care_plan")
    response = site.browser("policia.jefa").post("/supervision/reasignar", [
        ("task", f"{social.id}:{social.version}"), ("assignee", str(site.users["policia"]))], follow_redirects=True)
    assert "no son de su organismo" in response.get_data(as_text=True)
    assert own_task(history, history.second, "social_assessment_care_plan").assignee_id is None
    [event] = site.audit("supervision.reassign")
    assert (event.outcome, event.detail) == ("denied", {"assigned": [], "conflicts": [], "refused": [social.id]})


def test_only_a_member_of_her_agency_can_receive_steps_and_only_supervisors_reassign(history: History) -> None:
    site = history.site
    first = own_task(history, history.first)
    response = site.browser("policia.jefa").post("/supervision/reasignar", [
        ("task", f"{first.id}:{first.version}"), ("assignee", str(site.users["salud"]))], follow_redirects=True)
    assert "elija a una persona de su organismo" in response.get_data(as_text=True)
    assert site.browser("policia").post("/supervision/reasignar", [
        ("task", f"{first.id}:{first.version}"), ("assignee", str(site.users["policia"]))]).status_code == 403
    assert own_task(history, history.first).assignee_id == site.users["policia2"]
    with site.app.app_context():
        denied = db.session.execute(select(AuditEvent).where(AuditEvent.action == "supervision.reassign")).scalars()
        assert [event.outcome for event in denied] == ["denied"]
