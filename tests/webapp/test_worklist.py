"""The worklist page: tabs with counts, most urgent first, filters and pages in the URL, claim and release."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import update

from engine.actor import Actor
from engine.execution import cancel_track
from engine.levels import SHIPPED
from engine.models import Case, OpenTask
from tests.support.web import Site
from webapp.extensions import db

REPORT = "police_report_to_court"


def references(html: str) -> list[str]:
    """Return the case references of the worklist's rows, in order."""
    return re.findall(r'<tr data-task="\d+">\s*<td><a href="/casos/\d+">([^<]+)</a>', html)


def count(html: str, tab: str) -> int:
    match = re.search(rf'data-count="{tab}">(\d+)<', html)
    assert match, tab
    return int(match.group(1))


def open_report_case(site: Site) -> int:
    """Open a case whose only police step is the complaint: its police risk line and safety plan are stopped
    (as an inactivation would), so each case puts exactly one row in the police worklist."""
    case_id = site.open_case()
    with site.app.app_context():
        case = db.session.get_one(Case, case_id)
        for track in ("police", "safety_plan"):
            cancel_track(db.session(), case, track, now=site.clock.now(), actor=Actor.system("tests"),
                         reason="test")
        db.session.commit()
    assert [step for step, task in site.tasks(case_id).items() if task.agency_kind == "state_police"] == [REPORT]
    return case_id


def reference(site: Site, case_id: int) -> str:
    with site.app.app_context():
        return db.session.get_one(Case, case_id).reference


def set_task(site: Site, case_id: int, *, risk: str | None = None, due_in: timedelta | None = None,
             visible_in: timedelta | None = None) -> None:
    """Give a case's report step a risk level, a deadline or a start of visibility relative to now."""
    now = site.clock.now()
    with site.app.app_context():
        values: dict[str, object] = {}
        if risk:
            db.session.execute(update(Case).where(Case.id == case_id).values(risk_level=risk))
            values["risk_rank"] = SHIPPED.rank(risk)  # the engine keeps this copy in step; this shortcut must too
        if due_in is not None:
            values["due_at"] = now + due_in
        if visible_in is not None:
            values["visible_from"] = now + visible_in
        if values:
            db.session.execute(update(OpenTask).where(OpenTask.case_id == case_id).values(**values))
        db.session.commit()


def test_the_worklist_needs_a_signed_in_user(site: Site) -> None:
    response = site.browser().get("/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_without_tasks_of_my_own_the_page_opens_on_my_agency_with_counts(site: Site) -> None:
    case_id = open_report_case(site)
    task = site.task(case_id, REPORT)
    html = site.browser("policia").get("/").get_data(as_text=True)
    assert '<a href="/?tab=agency" aria-current="page">' in html
    assert (count(html, "mine"), count(html, "agency"), count(html, "upcoming")) == (0, 1, 0)
    assert f'<a href="/casos/{case_id}">{reference(site, case_id)}</a>' in html
    assert f'<a href="/tareas/{task.id}">Recoger la denuncia y remitir el atestado al juzgado</a>' in html
    assert '<span class="badge">Sin valorar</span>' in html
    assert '<time datetime="2026-03-03T09:00:00+00:00">3/3/26, 10:00</time>' in html  # 24 h, in Madrid time
    assert "badge overdue" not in html
    assert "<td>Mancomunidad Vegas Bajas</td>" in html
    assert site.audit("worklist.read")[-1].detail == {"tab": "agency", "case_ids": [case_id]}
    # Nothing for the health centre, which registered the case, and nothing for the police of Madrid.
    for other in ("salud", "policia.madrid"):
        page = site.browser(other).get("/").get_data(as_text=True)
        assert "No hay tareas en esta lista." in page
        assert references(page) == []


def test_rows_come_overdue_first_then_by_deadline_whatever_the_level(site: Site) -> None:
    names = ("late_low", "extreme_later", "high_soon", "extreme_soon", "hidden")
    cases = {name: open_report_case(site) for name in names}
    set_task(site, cases["late_low"], risk="bajo", due_in=timedelta(hours=-1))
    set_task(site, cases["extreme_later"], risk="extremo", due_in=timedelta(days=2))
    set_task(site, cases["high_soon"], risk="alto", due_in=timedelta(hours=2))
    set_task(site, cases["extreme_soon"], risk="extremo", due_in=timedelta(days=1))
    set_task(site, cases["hidden"], visible_in=timedelta(days=3), due_in=timedelta(days=5))
    html = site.browser("policia").get("/?tab=agency").get_data(as_text=True)
    expected = [reference(site, cases[n]) for n in ("late_low", "high_soon", "extreme_soon", "extreme_later")]
    assert references(html) == expected
    assert html.count('<span class="badge overdue">Vencida</span>') == 1
    late_row = html.split(f">{expected[0]}</a>")[1].split("</tr>")[0]
    assert '<span class="badge overdue">Vencida</span>' in late_row
    assert '<span class="badge risk-extremo">Extremo</span>' in html
    assert (count(html, "agency"), count(html, "upcoming")) == (4, 1)
    upcoming = site.browser("policia").get("/?tab=upcoming").get_data(as_text=True)
    assert references(upcoming) == [reference(site, cases["hidden"])]
    assert "Visible desde" in upcoming


def test_an_unassessed_step_due_within_the_hour_comes_before_a_reassessment_due_in_two_days(site: Site) -> None:
    """Issue 13, Seen 1: an urgent police step on an unassessed case no longer sinks under higher levels."""
    urgent, reassessment, undated = (open_report_case(site) for _ in range(3))
    set_task(site, urgent, due_in=timedelta(minutes=45))
    set_task(site, reassessment, risk="extremo", due_in=timedelta(days=2))
    set_task(site, undated, risk="extremo")
    with site.app.app_context():
        db.session.execute(update(OpenTask).where(OpenTask.case_id == undated).values(due_at=None))
        db.session.commit()
    html = site.browser("policia").get("/?tab=agency").get_data(as_text=True)
    assert references(html) == [reference(site, c) for c in (urgent, reassessment, undated)]
    assert '<p class="order-rule" id="order-rule">Orden: vencidas primero, después por plazo' in html
    assert '<small class="time-left">vence en 45 min</small>' in html
    assert '<small class="time-left">vence en 2 días</small>' in html


def test_search_matches_the_reference_by_prefix_and_the_step_name_and_is_not_audited_as_text(site: Site) -> None:
    first, second = open_report_case(site), open_report_case(site)
    police = site.browser("policia")
    ref = reference(site, first)
    assert references(police.get(f"/?tab=agency&q={ref}").get_data(as_text=True)) == [ref]
    assert references(police.get(f"/?tab=agency&q={ref[:-1]}").get_data(as_text=True)) != []
    both = references(police.get("/?tab=agency&q=RECOGER la denuncia").get_data(as_text=True))
    assert sorted(both) == sorted([ref, reference(site, second)])
    html = police.get("/?tab=agency&q=%25_nada").get_data(as_text=True)
    assert references(html) == []
    assert 'value="%_nada"' in html
    assert site.audit("worklist.read")[-1].detail == {"tab": "agency", "case_ids": []}


def test_filters_travel_in_the_url_and_keep_across_tabs(site: Site) -> None:
    extreme, low = open_report_case(site), open_report_case(site)
    set_task(site, extreme, risk="extremo", due_in=timedelta(hours=3))
    set_task(site, low, risk="bajo", due_in=timedelta(hours=-2))
    browser = site.browser("policia")
    html = browser.get("/?tab=agency&risk=extremo").get_data(as_text=True)
    assert references(html) == [reference(site, extreme)]
    assert '<option value="extremo" selected>Extremo</option>' in html
    assert '<a href="/?tab=mine&amp;risk=extremo">' in html
    overdue = browser.get("/?tab=agency&due=overdue").get_data(as_text=True)
    assert references(overdue) == [reference(site, low)]
    by_step = browser.get(f"/?tab=agency&step={REPORT}&territory={site.territories['here']}").get_data(as_text=True)
    assert len(references(by_step)) == 2
    assert f'<option value="{REPORT}" selected>' in by_step
    elsewhere = browser.get(f"/?tab=agency&territory={site.territories['there']}").get_data(as_text=True)
    assert references(elsewhere) == []


def test_long_lists_are_paged_and_pages_keep_the_filters(site: Site) -> None:
    site.app.config["WORKLIST_PER_PAGE"] = 2
    for _ in range(3):
        open_report_case(site)
    browser = site.browser("policia")
    first = browser.get("/?tab=agency&risk=").get_data(as_text=True)
    assert len(references(first)) == 2
    assert "Página 1 de 2" in first
    assert '<a href="/?tab=agency&amp;page=2" rel="next">Siguiente</a>' in first
    second = browser.get("/?tab=agency&page=2").get_data(as_text=True)
    assert len(references(second)) == 1
    assert '<a href="/?tab=agency&amp;page=1" rel="prev">Anterior</a>' in second
    assert set(references(first)).isdisjoint(references(second))


def test_claim_from_my_agency_and_release_from_my_tasks_come_back_to_the_same_list(site: Site) -> None:
    case_id = open_report_case(site)
    task = site.task(case_id, REPORT)
    browser = site.browser("policia")
    back = "/?tab=agency&risk=&due=overdue"
    claimed = browser.post(f"/tareas/{task.id}/reclamar", {"version": task.version, "next": back})
    assert claimed.status_code == 302
    assert claimed.headers["Location"] == back
    html = browser.get("/").get_data(as_text=True)
    assert '<a href="/?tab=mine" aria-current="page">' in html  # my tasks first now that I have one
    assert references(html) == [reference(site, case_id)]
    assert "<td>Policia (prueba)</td>" in html
    assert f'action="/tareas/{task.id}/liberar"' in html
    assert site.task(case_id, REPORT).assignee_id == site.users["policia"]
    colleague = site.browser("policia2").get("/?tab=agency").get_data(as_text=True)
    assert references(colleague) == []  # claimed tasks leave the agency's queue
    released = browser.post(f"/tareas/{task.id}/liberar", {"version": task.version + 1, "next": "/?tab=mine"})
    assert released.headers["Location"] == "/?tab=mine"
    assert site.task(case_id, REPORT).assignee_id is None
    assert [e.outcome for e in site.audit("task.claim")] == ["ok"]
    assert [e.outcome for e in site.audit("task.release")] == ["ok"]


def test_a_claim_never_redirects_off_site(site: Site) -> None:
    task = site.task(open_report_case(site), REPORT)
    response = site.browser("policia").post(f"/tareas/{task.id}/reclamar",
                                            {"version": task.version, "next": "//evil.example/"})
    assert response.headers["Location"] == f"/tareas/{task.id}"
