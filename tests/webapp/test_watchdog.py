"""The watchdog step of the deadline pass: a broken protocol's gap is recorded once, told, and repaired once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from benchmarks import watchdog_bench
from benchmarks.engine_bench import postgres_available
from engine.actor import Actor
from engine.cases import open_case
from engine.clock import FakeClock
from engine.deploy import deploy
from engine.execution import complete_task, start_case
from engine.history import record
from engine.invariants import current_invariants
from engine.models import Case, Notification, OpenTask, OpenViolation, ProcessInstance, TaskEvent
from engine.watchdog import REPAIR_RETRY
from tests.support.engine_files import invariants_file, protocol_files
from tests.support.environment import unavailable
from tests.support.race import race
from tests.support.web import Site
from tests.support.world import World
from webapp.extensions import db
from webapp.notifications.emails import compose
from webapp.notifications.worker import PassReport, run_pass

BASE_URL = "https://coordina.example"
TITLE = "Revaloración policial pendiente y a tiempo"


@pytest.fixture
def gap(session: Session, world: World, clock: FakeClock) -> Case:
    """The broken follow-up deployed; an extremo case whose police re-assessment is done and whose next
    cycle waits (the join) for a social services follow-up now 6 hours late."""
    deploy(session, protocol_files(), actor="tests", now=clock.now())
    case, _ = start_case(session, territory_id=world.territory.id, process_key="broken_followup", data={},
                         now=clock.now(), actor=world.actor("state_police"))
    case.risk_level = "extremo"
    session.commit()
    task = session.execute(select(OpenTask).where(OpenTask.case_id == case.id,
                                                  OpenTask.element_id == "police_reassessment")).scalar_one()
    complete_task(session, task.id, {"note": "valorada"}, expected_version=task.version, now=clock.now(),
                  actor=world.actor("state_police"))
    session.commit()
    clock.advance(timedelta(hours=30))
    return case


def entries(session: Session, case: Case) -> list[dict[str, Any]]:
    """The case's `invariant_violated` history entries about the police re-assessment."""
    rows = session.execute(select(TaskEvent.data).where(TaskEvent.case_id == case.id,
                                                        TaskEvent.action == "invariant_violated")).scalars()
    return [data for data in rows if data and data["invariant"] == "police_pending"]


def reassessments_started(session: Session, case: Case) -> int:
    """How many follow-up cycles the case has had (the first, then each repair)."""
    return session.execute(select(func.count()).select_from(ProcessInstance).where(
        ProcessInstance.case_id == case.id, ProcessInstance.process_key == "broken_followup")).scalar_one()


def invariant_notices(session: Session) -> list[tuple[str, int]]:
    rows = session.execute(select(Notification.step, Notification.user_id)
                           .where(Notification.kind == "invariant").order_by(Notification.user_id)).all()
    return [(step, user_id) for step, user_id in rows if step == TITLE]


def test_the_next_pass_records_tells_and_repairs_the_gap_once(
    session: Session, world: World, clock: FakeClock, gap: Case,
) -> None:
    first = run_pass(session, clock.now(), smtp=None, base_url=BASE_URL)
    second = run_pass(session, clock.now() + timedelta(minutes=1), smtp=None, base_url=BASE_URL)
    assert first.errors == second.errors == []
    (entry,) = entries(session, gap)
    assert (entry["kind"], entry["details"]["level"]) == ("missing", "extremo")
    assert entry["message"].startswith(f"Caso {gap.reference}: nivel extremo sin paso abierto")
    assert reassessments_started(session, gap) == 2  # the first cycle and one repair
    repaired = session.execute(select(OpenTask).where(OpenTask.case_id == gap.id,
                                                      OpenTask.element_id == "police_reassessment")).scalar_one()
    assert invariant_notices(session) == sorted(
        (TITLE, world.users[name].id) for name in ("state_police_boss", "mesa_coordinator", "mesa_coordinator_boss"))
    assert {n.task_id for n in session.execute(select(Notification).where(Notification.step == TITLE)).scalars()} \
        == {repaired.id}
    assert (first.repaired, second.repaired) == (1, 0)
    assert first.violations_recorded >= 1
    assert "repaired" in first.summary()


def test_an_episode_is_recorded_again_only_after_it_ended(
    session: Session, world: World, clock: FakeClock, gap: Case,
) -> None:
    invariants = [i for i in current_invariants(session) if i.id == "police_pending"]
    assert invariants
    run_pass(session, clock.now(), smtp=None, base_url=BASE_URL)
    assert session.get(OpenViolation, (gap.id, "police_pending", "missing")) is None  # repaired: the episode ended
    task = session.execute(select(OpenTask).where(OpenTask.case_id == gap.id,
                                                  OpenTask.element_id == "police_reassessment")).scalar_one()
    complete_task(session, task.id, {"note": "otra"}, expected_version=task.version, now=clock.now(),
                  actor=world.actor("state_police"))
    session.commit()
    run_pass(session, clock.now() + timedelta(minutes=1), smtp=None, base_url=BASE_URL)
    assert len(entries(session, gap)) == 2  # a second gap, a second episode


def test_two_workers_at_once_record_and_repair_once(
    session_factory: sessionmaker[Session], session: Session, world: World, clock: FakeClock, gap: Case,
) -> None:
    def worker(go: Callable[[], None]) -> PassReport:
        with session_factory() as own:
            go()
            return run_pass(own, clock.now(), smtp=None, base_url=BASE_URL)

    reports = race(worker, worker)
    assert [r.errors for r in reports] == [[], []]
    session.expire_all()
    assert len(entries(session, gap)) == 1
    assert reassessments_started(session, gap) == 2
    assert sum(r.repaired for r in reports) == 1
    assert len(invariant_notices(session)) == 3


def test_without_invariants_deployed_the_watchdog_finds_nothing(
    session: Session, world: World, clock: FakeClock,
) -> None:
    report = run_pass(session, clock.now(), smtp=None, base_url=BASE_URL)
    assert (report.violations, report.repaired, report.errors) == (0, 0, [])


# --- What people read -----------------------------------------------------------------------------
def test_the_case_history_says_which_guarantee_was_broken(site: Site) -> None:
    case_id = site.open_case()
    with site.app.app_context():
        case = db.session.get(Case, case_id)
        assert case is not None
        event = record(db.session(), case, "invariant_violated", site.clock.now(), Actor.system("watchdog"),
                       data={"invariant": "police_reassessment_pending", "kind": "missing"})
        event.name = TITLE
        db.session.commit()
    html = site.browser("policia").get(f"/casos/{case_id}").get_data(as_text=True)
    assert f"Garantía incumplida: {TITLE}" in html


def test_an_invariant_notice_is_mailed_with_the_case_link(app: Flask, clock: FakeClock) -> None:
    notice = Notification(id=7, user_id=1, kind="invariant", case_id=3, task_id=9, step=TITLE, due_at=None,
                          created_at=clock.now())
    with app.app_context():
        subject, body = compose(notice, "VG-2026-000003", "es", BASE_URL)
        english, _ = compose(notice, "VG-2026-000003", "en", BASE_URL)
    assert subject == f"Coordina · VG-2026-000003 · Garantía incumplida: {TITLE}"
    assert "El caso VG-2026-000003 incumple la garantía del protocolo" in body
    assert f"{BASE_URL}/casos/3" in body
    assert english.startswith("Coordina · VG-2026-000003 · Protocol guarantee broken")


def test_a_repair_that_cannot_be_made_is_retried_later_not_on_every_pass(
    session: Session, world: World, clock: FakeClock,
) -> None:
    def change(raw: dict[str, Any]) -> None:
        raw["invariants"][2]["repair"] = {"start_process": "no_such_process"}

    deploy(session, protocol_files(invariants_file(change)), actor="tests", now=clock.now())
    open_case(session, territory_id=world.territory.id, now=clock.now(), actor=world.actor("state_police"))
    session.commit()
    clock.advance(timedelta(hours=2))  # past the grace: the social follow-up is missing
    reports = [run_pass(session, clock.now() + timedelta(minutes=m), smtp=None, base_url=BASE_URL)
               for m in (0, 1, REPAIR_RETRY.total_seconds() // 60 + 1)]
    assert [len(r.errors) for r in reports] == [1, 0, 1]
    assert "no deployed process named 'no_such_process'" in reports[0].errors[0]
    assert [r.violations_recorded for r in reports] == [1, 0, 0]


def test_a_gap_no_open_step_shows_is_told_to_the_mesa_coordination_once(
    session: Session, world: World, clock: FakeClock,
) -> None:
    """A missing step whose repair cannot be made leaves no step to point at: the coordination still hears."""
    def change(raw: dict[str, Any]) -> None:
        raw["invariants"][2]["repair"] = {"start_process": "no_such_process"}

    deploy(session, protocol_files(invariants_file(change)), actor="tests", now=clock.now())
    case = open_case(session, territory_id=world.territory.id, now=clock.now(), actor=world.actor("state_police"))
    session.commit()
    clock.advance(timedelta(hours=2))  # past the grace: the social follow-up is missing, and nothing is open for it
    for minutes in (0, 1, REPAIR_RETRY.total_seconds() // 60 + 1):
        run_pass(session, clock.now() + timedelta(minutes=minutes), smtp=None, base_url=BASE_URL)
    notices = session.execute(select(Notification).where(Notification.kind == "invariant")).scalars().all()
    coordination = {world.users[name].id for name in ("mesa_coordinator", "mesa_coordinator_boss")}
    assert {n.user_id for n in notices} == coordination  # each member once, over three passes
    assert len(notices) == len(coordination)
    assert all(n.case_id == case.id and n.task_id is None for n in notices)


def test_the_watchdog_benchmark_smoke_run_passes_its_target(capsys: pytest.CaptureFixture[str]) -> None:
    reason = postgres_available()
    if reason:
        unavailable(reason)
    assert watchdog_bench.main(["--synthetic", "--cases", "2000", "--reps", "3"]) == 0
    table = capsys.readouterr().out
    assert "watchdog check per deadline pass (median of 3)" in table
    assert "PASS" in table
    assert "20 recorded, 20 repaired, 0 errors" in table
