"""The Mesa de Coordinación: agenda rules on a known history, need-to-know summaries, minutes, agreements, access."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from engine.escalation import DEFAULT_SUPERVISOR_AFTER
from engine.execution import start_process
from engine.localtime import LOCAL_TZ
from engine.models import (
    Agreement,
    AuditEvent,
    Case,
    Meeting,
    Mesa,
    MinutesVersion,
    OpenTask,
    ProcessInstance,
    TaskEvent,
)
from tests.support.web import Browser, Site
from tests.webapp.mesa_world import MesaWorld, build_mesa_world, version_of
from webapp.extensions import db
from webapp.mesa.agenda import AgendaFacts, build_agenda
from webapp.mesa.operations import due_end_of_day
from webapp.mesa.schedule import next_working_day_iso
from webapp.mesa.settings import update_settings
from webapp.supervision.queries import open_step_counts

REVIEW = {"final_level": "medio", "especial_relevancia": False, "minors_at_risk": False}


@pytest.fixture
def world(site: Site, password_hash: str) -> MesaWorld:
    """Two territories, each with its Mesa; coordinators `mesa` (here) and `mesa.madrid` (there)."""
    return build_mesa_world(site, password_hash)


def meeting_page(browser: Browser, meeting_id: int) -> str:
    """GET a meeting page and return its HTML (200 expected)."""
    response = browser.get(f"/mesa/reuniones/{meeting_id}")
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def post_minutes(browser: Browser, meeting_id: int, path: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    """Post a minutes form with the version the meeting page carries; return the status and the page after."""
    page = meeting_page(browser, meeting_id)
    action = f"/mesa/reuniones/{meeting_id}{path}"
    response = browser.post(action, {"version": version_of(page, action), **(data or {})})
    return response.status_code, response.get_data(as_text=True)


def hold_meeting(world: MesaWorld, browser: Browser, meeting_id: int, agreements: list[tuple[int, int, str, str]]
                 ) -> None:
    """Open a meeting, record everyone present, record agreements (case, agency, action, due date), close it."""
    assert post_minutes(browser, meeting_id, "/abrir")[0] == 302
    page = meeting_page(browser, meeting_id)
    agencies = re.findall(r'name="att-(\d+)"', page)
    assert post_minutes(browser, meeting_id, "/asistencia",
                        {f"att-{a}": "present" for a in agencies})[0] == 302
    for case_id, agency_id, action, due in agreements:
        status, body = post_minutes(browser, meeting_id, f"/acuerdos/{case_id}",
                                    {"agency": str(agency_id), "action": action, "due_on": due})
        assert status == 302, body
    assert post_minutes(browser, meeting_id, "/cerrar", {"confirm": "yes"})[0] == 302


def reasons_on_page(html: str) -> dict[str, list[str]]:
    """Return the reasons of each agenda case shown on a meeting page, by case id."""
    found: dict[str, list[str]] = {}
    for case_id, block in re.findall(r'<section class="agenda-item" id="case-(\d+)"(.*?)</section>', html, re.S):
        found[case_id] = re.findall(r'data-reason="(\w+)"', block)
    return found


# --- The rules alone (a pure function) ------------------------------------------------------------
@pytest.mark.parametrize(("facts", "reasons"), [
    (AgendaFacts(levels={1: "medio"}, new=frozenset({1})), ("new",)),
    (AgendaFacts(levels={1: "alto"}), ("high_risk",)),
    (AgendaFacts(levels={1: "extremo"}), ("high_risk",)),
    (AgendaFacts(levels={1: "bajo"}, overdue_steps=frozenset({1})), ("overdue_steps",)),
    (AgendaFacts(levels={1: "medio"}, level_changed=frozenset({1})), ("level_changed",)),
    (AgendaFacts(levels={1: "bajo"}, inactivation=frozenset({1})), ("inactivation",)),
    (AgendaFacts(levels={1: "bajo"}, open_agreements=frozenset({1})), ("open_agreement",)),
    (AgendaFacts(levels={1: "bajo"}, open_agreements=frozenset({1}), overdue_agreements=frozenset({1})),
     ("overdue_agreement",)),
    (AgendaFacts(levels={1: "bajo"}, pinned={1: "manual"}), ("manual",)),
    (AgendaFacts(levels={1: "bajo"}, pinned={1: "incident"}), ("incident",)),
    (AgendaFacts(levels={1: "bajo"}), ()),
    (AgendaFacts(levels={1: "medio"}), ()),
])
def test_each_agenda_rule_alone(facts: AgendaFacts, reasons: tuple[str, ...]) -> None:
    entries = build_agenda(facts)
    assert [entry.reasons for entry in entries] == ([reasons] if reasons else [])


def test_the_rules_combine_into_one_item_per_case_the_riskiest_first() -> None:
    facts = AgendaFacts(
        levels={1: "bajo", 2: "extremo", 3: "medio", 4: "bajo"}, references={1: "A", 2: "B", 3: "C", 4: "D"},
        new=frozenset({1, 2}), overdue_steps=frozenset({2, 3}), level_changed=frozenset({2}),
        open_agreements=frozenset({3}), pinned={1: "manual"},
    )
    assert [(e.case_id, e.reasons) for e in build_agenda(facts)] == [
        (2, ("new", "high_risk", "overdue_steps", "level_changed")),
        (3, ("overdue_steps", "open_agreement")),
        (1, ("new", "manual")),
    ]
    assert build_agenda(facts)[2].rule_reasons == ("new",)


# --- The rules on a real history ------------------------------------------------------------------
def test_the_agenda_lists_each_case_of_the_territory_with_every_reason(world: MesaWorld) -> None:
    site = world.site
    coordinator = world.browser("mesa")
    elevated = world.through_intake("medio")
    quiet = world.through_intake("bajo")
    promised = world.through_intake("bajo")
    inactivating = world.through_intake("bajo")
    with site.app.app_context():
        madrid_case = Case(reference="VG-2026-900001", territory_id=site.territories["there"], status="active",
                           risk_level="extremo", facts={}, created_at=site.clock.now(), updated_at=site.clock.now())
        db.session.add(madrid_case)
        db.session.commit()
    # The first meeting reviews them and agrees one action for social services, due tomorrow.
    site.clock.advance(timedelta(hours=1))
    tomorrow = (site.clock.now().astimezone(LOCAL_TZ).date() + timedelta(days=1)).isoformat()
    social = site.agencies[("social_services", "here")]
    hold_meeting(world, coordinator, world.next_meeting(), [(promised, social, "Visita domiciliaria", tomorrow)])
    # Since that meeting: a new case; a level rises after an incident; an inactivation is proposed.
    site.clock.advance(timedelta(hours=1))
    fresh = site.open_case()
    world.incident(elevated)
    world.assess(elevated, "alto", ("incident_reassessment", "reassessment_review"))
    world.finish(elevated)
    with site.app.app_context():
        start_process(db.session(), db.session.get(Case, inactivating), "inactivation", {"complex_case": False},
                      now=site.clock.now(), actor=site.actor("policia"))
        db.session.commit()
    site.clock.advance(timedelta(days=2))  # the new case's police steps and the agreement are now late
    next_meeting = world.next_meeting()
    page = meeting_page(world.browser("mesa"), next_meeting)
    add = coordinator.post(f"/mesa/reuniones/{next_meeting}/casos", {"reference": reference(world, quiet)})
    assert add.status_code == 302
    reasons = reasons_on_page(meeting_page(coordinator, next_meeting))
    assert reasons == {
        str(elevated): ["high_risk", "level_changed"],
        str(fresh): ["new", "overdue_steps"],
        str(promised): ["overdue_agreement"],
        str(inactivating): ["inactivation"],
        str(quiet): ["manual"],
    }
    assert "VG-2026-900001" not in page  # another territory's case
    # Opening the meeting stores the same agenda; a refresh keeps the case added by hand.
    assert post_minutes(coordinator, next_meeting, "/abrir")[0] == 302
    assert post_minutes(coordinator, next_meeting, "/orden-del-dia")[0] == 302
    assert reasons_on_page(meeting_page(coordinator, next_meeting)) == reasons
    # The level change is in the case's history, with both levels.
    with site.app.app_context():
        changes = db.session.execute(select(TaskEvent.data).where(TaskEvent.case_id == elevated,
                                                                  TaskEvent.action == "level_changed")
                                     .order_by(TaskEvent.id)).scalars().all()
    assert changes == [{"from": None, "to": "medio"}, {"from": "medio", "to": "alto"}]


def reference(world: MesaWorld, case_id: int) -> str:
    """Return a case's reference."""
    with world.site.app.app_context():
        case = db.session.get(Case, case_id)
        assert case is not None
        return case.reference


# --- Need-to-know -----------------------------------------------------------------------------------
def test_a_member_without_identity_access_sees_the_reference_only(world: MesaWorld) -> None:
    site = world.site
    case_id = site.open_case(victim={"name": "Persona Sintética Uno", "phone": "600000001"})
    site.complete(case_id, "police_report_to_court", COMPLAINT_DATA)
    meeting_id = world.next_meeting()
    school = world.browser("colegio")  # the school's representative: no step in the case
    page = meeting_page(school, meeting_id)
    assert reference(world, case_id) in page
    assert "Persona Sintética" not in page
    assert "600000001" not in page
    assert "Referencia seudónima" in page
    assert f'href="/casos/{case_id}"' not in page  # the summary, not the case page
    assert school.get(f"/casos/{case_id}").status_code == 404
    health = world.browser("salud")  # the health centre registered the detection: it knows who she is
    assert "Persona Sintética Uno" in meeting_page(health, meeting_id)
    reads = site.audit("case.read", case_id=case_id, username="colegio", outcome="ok")
    assert reads
    assert all(event.detail["via"] == "mesa" for event in reads)
    assert all("Persona" not in str(event.detail) for event in site.audit("case.read"))


def test_who_may_see_and_edit_the_mesa(world: MesaWorld) -> None:
    site = world.site
    meeting_id = world.next_meeting()
    stranger = world.browser("policia2")  # a member of a member agency, neither its representative nor a supervisor
    assert stranger.get(f"/mesa/reuniones/{meeting_id}").status_code == 403
    assert stranger.get(f"/mesa/{world.here}").status_code == 403
    assert site.audit("mesa.read", username="policia2", outcome="denied")
    madrid = world.browser("mesa.madrid")  # the other territory's coordinator
    assert madrid.get(f"/mesa/reuniones/{meeting_id}").status_code == 403
    member = world.browser("social")  # social services' representative reads but does not edit
    page = meeting_page(member, meeting_id)
    assert "Abrir la reunión" not in page
    assert member.post(f"/mesa/reuniones/{meeting_id}/abrir", {"version": "1"}).status_code == 403
    assert site.audit("mesa.open", username="social", outcome="denied")
    assert member.get(f"/mesa/{world.here}/ajustes").status_code == 403
    boss = world.browser("policia.jefa")  # a member agency's supervisor stands in for its representative
    assert boss.get(f"/mesa/reuniones/{meeting_id}").status_code == 200


# --- Agreements ---------------------------------------------------------------------------------------
def test_an_agreement_becomes_a_task_of_the_chosen_agency_with_deadline_and_escalation(world: MesaWorld) -> None:
    site = world.site
    case_id = world.through_intake("medio")
    coordinator = world.browser("mesa")
    meeting_id = world.next_meeting()
    social = site.agencies[("social_services", "here")]
    due = (site.clock.now().astimezone(LOCAL_TZ).date() + timedelta(days=7))
    assert post_minutes(coordinator, meeting_id, "/abrir")[0] == 302
    status, _ = post_minutes(coordinator, meeting_id, f"/acuerdos/{case_id}",
                             {"agency": str(social), "action": "Valorar ATENPRO", "due_on": due.isoformat()})
    assert status == 302
    with site.app.app_context():
        agreement = db.session.execute(select(Agreement)).scalar_one()
        task = db.session.execute(select(OpenTask).where(OpenTask.instance_id == agreement.instance_id)).scalar_one()
        instance = db.session.get(ProcessInstance, agreement.instance_id)
        assert instance is not None
        assert instance.process_key == "agreement"
        assert (task.agency_id, task.agency_kind, task.element_id) == (social, "social_services", "fulfil_agreement")
        assert task.due_at == due_end_of_day(due) == datetime(due.year, due.month, due.day, 22, 59, tzinfo=UTC)
        assert task.next_escalation_at == task.due_at  # its agency is told at the deadline
        assert task.escalate_supervisor_after == DEFAULT_SUPERVISOR_AFTER
    worklist = world.browser("social").get("/", query_string={"tab": "agency"}).get_data(as_text=True)
    assert "Cumplir el acuerdo de la Mesa" in worklist
    task_page = world.browser("social").get(f"/tareas/{task.id}").get_data(as_text=True)
    assert "Valorar ATENPRO" in task_page
    # An agency outside the Mesa is refused, and nothing is stored.
    other = site.agencies[("state_police", "there")]
    status, body = post_minutes(coordinator, meeting_id, f"/acuerdos/{case_id}",
                                {"agency": str(other), "action": "Algo", "due_on": due.isoformat()})
    assert status == 422
    assert "Elija uno de los organismos de la Mesa." in body
    with site.app.app_context():
        assert db.session.execute(select(Agreement.id)).scalars().all() == [agreement.id]


# --- Minutes: closed means frozen, in the app and in the database -----------------------------------
@pytest.fixture
def closed(world: MesaWorld) -> tuple[MesaWorld, int, int]:
    """A meeting held and closed with one agreement; returns the world, the meeting and the case."""
    site = world.site
    case_id = world.through_intake("alto")
    meeting_id = world.next_meeting()
    coordinator = world.browser("mesa")
    due = (site.clock.now().astimezone(LOCAL_TZ).date() + timedelta(days=7)).isoformat()
    assert post_minutes(coordinator, meeting_id, "/abrir")[0] == 302
    assert post_minutes(coordinator, meeting_id, f"/notas/{case_id}", {"note": "Seguimiento reforzado."})[0] == 302
    hold = [(case_id, site.agencies[("social_services", "here")], "Informe de situación", due)]
    page = meeting_page(coordinator, meeting_id)
    agencies = re.findall(r'name="att-(\d+)"', page)
    answers = {f"att-{a}": "present" for a in agencies} | {f"att-{agencies[0]}": "excused"}
    assert post_minutes(coordinator, meeting_id, "/asistencia", answers)[0] == 302
    for case, agency, action, when in hold:
        assert post_minutes(coordinator, meeting_id, f"/acuerdos/{case}",
                            {"agency": str(agency), "action": action, "due_on": when})[0] == 302
    assert post_minutes(coordinator, meeting_id, "/cerrar", {"confirm": "yes"})[0] == 302
    return world, meeting_id, case_id


def test_closed_minutes_cannot_be_edited(closed: tuple[MesaWorld, int, int]) -> None:
    world, meeting_id, case_id = closed
    coordinator = world.browser("mesa")
    with world.site.app.app_context():
        meeting = db.session.get(Meeting, meeting_id)
        assert meeting is not None
        assert meeting.status == "closed"
        version = str(meeting.version)
    for path, data in ((f"/notas/{case_id}", {"note": "Cambio"}), ("/asistencia", {}), ("/cerrar", {}),
                       (f"/acuerdos/{case_id}", {"agency": "1", "action": "x", "due_on": "2026-03-20"})):
        response = coordinator.post(f"/mesa/reuniones/{meeting_id}{path}", {"version": version, **data})
        assert response.status_code == 409, path
        assert "El acta está cerrada" in response.get_data(as_text=True)
    page = meeting_page(coordinator, meeting_id)
    assert "Seguimiento reforzado." in page
    assert "Cambio" not in page
    assert "Guardar la nota" not in page
    assert world.site.audit("mesa.note", outcome="failed")[-1].detail == {"reason": "closed"}


def test_the_database_refuses_to_change_closed_minutes(closed: tuple[MesaWorld, int, int]) -> None:
    world, meeting_id, _ = closed
    with world.site.app.app_context():
        minutes = db.session.execute(select(MinutesVersion)).scalar_one()
        assert minutes.meeting_id == meeting_id
        assert len(minutes.sha256) == 64
        for statement in (update(MinutesVersion).values(sha256="0" * 64),
                          text("DELETE FROM minutes_version")):
            with pytest.raises(DBAPIError, match="append-only"):
                db.session.execute(statement)
            db.session.rollback()
        assert db.session.execute(select(MinutesVersion.sha256)).scalar_one() == minutes.sha256


def test_the_pdf_of_the_minutes_lists_references_attendance_and_agreements_only(
    closed: tuple[MesaWorld, int, int],
) -> None:
    world, meeting_id, case_id = closed
    with world.site.app.app_context():
        db.session.execute(text("UPDATE case_party SET identity = :identity WHERE case_id = :case_id"),
                           {"identity": '{"name": "Persona Sintética Dos"}', "case_id": case_id})
        db.session.commit()
    response = world.browser("mesa").get(f"/mesa/reuniones/{meeting_id}/acta.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    pdf = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)
    flat = " ".join(pdf.split())
    assert reference(world, case_id) in flat
    assert "Asistencia" in flat
    assert "Excusa su asistencia" in flat
    assert "Asiste" in flat
    assert "Servicios sociales de Vegas Bajas" in flat
    assert "Informe de situación" in flat
    assert "Seguimiento reforzado." in flat
    assert "Persona Sintética" not in flat
    printable = world.browser("mesa").get(f"/mesa/reuniones/{meeting_id}/acta").get_data(as_text=True)
    assert "Informe de situación" in printable
    assert "mesa_print.css" in printable
    assert world.site.audit("mesa.minutes")[-1].detail == {"format": "html"}


def test_closing_plans_the_next_meeting_whose_agenda_lists_the_open_agreement(
    closed: tuple[MesaWorld, int, int],
) -> None:
    world, meeting_id, case_id = closed
    following = world.next_meeting()
    with world.site.app.app_context():
        held = db.session.get(Meeting, meeting_id)
        planned = db.session.get(Meeting, following)
        assert held is not None
        assert planned is not None
        assert planned.scheduled_at == held.scheduled_at + timedelta(days=15)
    world.site.clock.advance(timedelta(days=8))
    assert "overdue_agreement" in reasons_on_page(meeting_page(world.browser("mesa"), following))[str(case_id)]


def test_closing_a_friday_meeting_plans_the_next_one_on_a_working_day(world: MesaWorld) -> None:
    friday = datetime(2026, 3, 6, 10, 0, tzinfo=LOCAL_TZ)  # + 15 days is Saturday 21 March
    meeting_id = world.next_meeting()
    with world.site.app.app_context():
        db.session.execute(update(Meeting).where(Meeting.id == meeting_id).values(scheduled_at=friday))
        db.session.commit()
    world.site.clock.set(friday.astimezone(UTC))
    hold_meeting(world, world.browser("mesa"), meeting_id, [])
    with world.site.app.app_context():
        planned = db.session.get(Meeting, world.next_meeting())
        assert planned is not None
        assert planned.scheduled_at.astimezone(LOCAL_TZ) == datetime(2026, 3, 23, 10, 0, tzinfo=LOCAL_TZ)  # Monday


def test_a_new_interval_that_lands_on_a_weekend_moves_the_planned_meeting_to_monday(
    closed: tuple[MesaWorld, int, int],
) -> None:
    world, _held, _case = closed  # held on Tuesday 3 March 2026
    planned_id = world.next_meeting()
    with world.site.app.app_context():
        mesa = db.session.get(Mesa, world.here)
        assert mesa is not None
        update_settings(db.session(), mesa, interval_days=4, representatives={}, expected_version=mesa.version)
        db.session.commit()
        planned = db.session.get(Meeting, planned_id)
        assert planned is not None
        assert planned.scheduled_at.astimezone(LOCAL_TZ) == datetime(2026, 3, 9, 10, 0, tzinfo=LOCAL_TZ)  # not Saturday


def test_a_meeting_date_on_a_regional_holiday_moves_to_the_next_working_day_of_that_region(
    site: Site, password_hash: str,
) -> None:
    site.clock.set(datetime(2026, 9, 7, 9, 0, tzinfo=UTC))  # Monday; Tuesday 8 September is Extremadura's day
    world = build_mesa_world(site, password_hash)
    here_id, there_id = world.next_meeting(world.here), world.next_meeting(world.there)
    with site.app.app_context():
        here = db.session.get(Meeting, here_id)  # Vegas Bajas, Extremadura
        there = db.session.get(Meeting, there_id)  # Madrid: an ordinary Tuesday
        assert here is not None
        assert there is not None
        assert here.scheduled_at.astimezone(LOCAL_TZ) == datetime(2026, 9, 9, 10, 0, tzinfo=LOCAL_TZ)
        assert there.scheduled_at.astimezone(LOCAL_TZ) == datetime(2026, 9, 8, 10, 0, tzinfo=LOCAL_TZ)
        mesa = db.session.get(Mesa, world.here)
        assert mesa is not None  # an extraordinary meeting is proposed for the next working day too
        assert next_working_day_iso(db.session(), mesa, site.clock.now()) == "2026-09-09T10:00"


COMPLAINT_DATA = {"complaint_received_at": "2026-03-02T10:00:00+01:00", "report_number": "AT-2026-001",
                  "sent_to_court": True}


# --- Extraordinary meetings ----------------------------------------------------------------------------
def test_a_new_incident_proposes_an_extraordinary_meeting_convened_in_one_click(world: MesaWorld) -> None:
    site = world.site
    case_id = world.through_intake("medio")
    world.incident(case_id)
    coordinator = world.browser("mesa")
    page = coordinator.get(f"/mesa/{world.here}").get_data(as_text=True)
    assert re.search(rf'<tr data-case="{case_id}">\s*<td>{reference(world, case_id)}</td>\s*<td>Nuevo incidente', page)
    assert 'title="Reuniones extraordinarias propuestas">1<' in page  # the badge in the header
    response = coordinator.post(f"/mesa/{world.here}/extraordinarias",
                                {"case_id": str(case_id), "trigger": "incident", "scheduled_at": "2026-03-03T10:00"})
    assert response.status_code == 302
    meeting_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert reasons_on_page(meeting_page(coordinator, meeting_id))[str(case_id)][0] == "incident"
    assert f'<tr data-case="{case_id}">' not in coordinator.get(f"/mesa/{world.here}").get_data(as_text=True)
    with site.app.app_context():
        meeting = db.session.get(Meeting, meeting_id)
        assert meeting is not None
        assert meeting.kind == "extraordinary"
        assert meeting.scheduled_at == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


# --- Transfer ------------------------------------------------------------------------------------------
def test_a_transfer_moves_the_open_steps_and_the_access_and_keeps_the_history(world: MesaWorld) -> None:
    site = world.site
    case_id = site.open_case()
    site.complete(case_id, "police_report_to_court", COMPLAINT_DATA)
    police_here, police_there = site.agencies[("state_police", "here")], site.agencies[("state_police", "there")]
    with site.app.app_context():
        history_before = db.session.execute(select(TaskEvent.id, TaskEvent.action, TaskEvent.agency_id)
                                            .where(TaskEvent.case_id == case_id).order_by(TaskEvent.id)).all()
    assert world.browser("policia").get(f"/casos/{case_id}").status_code == 200
    form = world.browser("mesa").get(f"/mesa/{world.here}/traslados", query_string={"caso": case_id})
    assert form.status_code == 200
    assert f'action="/mesa/{world.here}/traslados"' in form.get_data(as_text=True)
    assert f'<option value="{case_id}" selected>' in form.get_data(as_text=True)
    sent = world.browser("mesa").post(f"/mesa/{world.here}/traslados",
                                      {"case_id": str(case_id), "to_mesa": str(world.there),
                                       "reason": "Cambio de domicilio"})
    assert sent.status_code == 302
    receiving = world.browser("mesa.madrid")
    page = receiving.get(f"/mesa/{world.there}").get_data(as_text=True)
    transfer_id = re.search(r'data-transfer="(\d+)"', page).group(1)  # type: ignore[union-attr]
    assert f'action="/mesa/traslados/{transfer_id}/aceptar"' in page
    assert receiving.post(f"/mesa/traslados/{transfer_id}/aceptar").status_code == 302
    # The old agency loses access (404, audited); the new one has the step and sees the case.
    assert world.browser("policia").get(f"/casos/{case_id}").status_code == 404
    assert site.audit("case.read", username="policia", outcome="denied")
    assert world.browser("salud").get(f"/casos/{case_id}").status_code == 404  # the registering agency too
    assert world.browser("mesa").get(f"/casos/{case_id}").status_code == 404
    moved = site.task(case_id, "police_risk_assessment")
    assert (moved.agency_id, moved.assignee_id, moved.territory_id) == (police_there, None, site.territories["there"])
    with site.app.app_context():  # the supervisor's board counts the step where the case is now
        places = [site.territories["here"], site.territories["there"]]
        # The assessment and the safety plan, both started at the detection, moved with the case.
        assert {row.agency_id: row.open for row in open_step_counts(db.session(), places, site.clock.now())[0]}[
            police_there] == 2
    madrid = world.browser("policia.madrid")
    assert madrid.get(f"/casos/{case_id}").status_code == 200
    assert "Valoración policial del riesgo" in madrid.get("/", query_string={"tab": "agency"}).get_data(as_text=True)
    # Nothing is lost: every earlier history entry is still there, plus the transfer entries.
    with site.app.app_context():
        after = db.session.execute(select(TaskEvent.id, TaskEvent.action, TaskEvent.agency_id)
                                   .where(TaskEvent.case_id == case_id).order_by(TaskEvent.id)).all()
        transferred = db.session.execute(select(TaskEvent.data).where(
            TaskEvent.case_id == case_id, TaskEvent.action == "transferred")).scalars().all()
        case = db.session.get(Case, case_id)
        assert case is not None
        assert case.territory_id == site.territories["there"]
        assert case.access_since_event is not None
        assert db.session.execute(select(AuditEvent).where(AuditEvent.case_id == case_id)).first() is not None
    assert after[:len(history_before)] == history_before
    assert {"from_agency_id": police_here, "to_agency_id": police_there, "needs_identity": True} in transferred
    # The new agency completes the step: the workflow goes on in the new territory.
    world.complete(case_id, "police_risk_assessment", risk_answers_medio(), username=None)
    assert site.task(case_id, "reassessment_review").agency_id == police_there


def risk_answers_medio() -> dict[str, object]:
    """Risk answers that compute to medio."""
    from tests.support.protocol import risk_answers

    return risk_answers("medio")


def test_flask_mesa_create_gives_a_territory_its_mesa_once(site: Site) -> None:
    runner = site.app.test_cli_runner()
    created = runner.invoke(args=["mesa", "create", "vegas-bajas", "--interval", "21"])
    assert created.exit_code == 0, created.output
    assert "Created Mesa de Coordinación — Mancomunidad Vegas Bajas" in created.output
    again = runner.invoke(args=["mesa", "create", "vegas-bajas"])
    assert again.exit_code == 1
    assert "already has a Mesa" in again.output
    assert runner.invoke(args=["mesa", "create", "nowhere"]).exit_code == 1


def test_closing_the_minutes_needs_the_confirmation_that_they_are_complete(world: MesaWorld) -> None:
    world.through_intake("alto")
    meeting_id = world.next_meeting()
    coordinator = world.browser("mesa")
    assert post_minutes(coordinator, meeting_id, "/abrir")[0] == 302
    agencies = re.findall(r'name="att-(\d+)"', meeting_page(coordinator, meeting_id))
    assert post_minutes(coordinator, meeting_id, "/asistencia", {f"att-{a}": "present" for a in agencies})[0] == 302
    assert 'name="confirm"' in meeting_page(coordinator, meeting_id)
    status, body = post_minutes(coordinator, meeting_id, "/cerrar")
    assert status == 422
    assert "Confirme que el acta está completa antes de cerrarla." in body
    with world.site.app.app_context():
        meeting = db.session.get(Meeting, meeting_id)
        assert meeting is not None
        assert meeting.status == "open"
    assert post_minutes(coordinator, meeting_id, "/cerrar", {"confirm": "yes"})[0] == 302
