"""Timers with a fake clock, and cases that chain one short instance after another."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FakeClock
from engine.deadlines import run_due_timers
from engine.deploy import deploy
from engine.execution import complete_task, start_case, start_process
from engine.forms import FormDefinition
from engine.models import Case, DueTimer, OpenTask, ProcessInstance, TaskEvent
from engine.spiff import FIRES_AFTER
from tests.support.engine_files import source, with_forms
from tests.support.race import race
from tests.support.world import World


def open_tasks(session: Session, case: Case) -> list[OpenTask]:
    return list(session.execute(select(OpenTask).where(OpenTask.case_id == case.id)).scalars())


def start_hearing(session: Session, world: World, clock: FakeClock) -> Case:
    case, _ = start_case(session, territory_id=world.territory.id, process_key="hearing", data={},
                         now=clock.now(), actor=world.actor("state_police"))
    session.commit()
    return case


@pytest.mark.usefixtures("deployed")
def test_a_boundary_timer_sets_the_task_deadline_and_is_indexed(
    session: Session, world: World, clock: FakeClock
) -> None:
    case = start_hearing(session, world, clock)
    [task] = open_tasks(session, case)
    assert task.due_at == clock.now() + timedelta(hours=72)
    timer = session.execute(select(DueTimer).where(DueTimer.case_id == case.id)).scalar_one()
    # SpiffWorkflow fires strictly after the deadline: the row wakes the pass at the first instant it will.
    assert (timer.kind, timer.fire_at) == ("bpmn_timer", clock.now() + timedelta(hours=72) + FIRES_AFTER)


@pytest.mark.usefixtures("deployed")
def test_a_pass_at_the_very_moment_its_row_names_fires_the_timer(
    session: Session, world: World, clock: FakeClock
) -> None:
    """A pass woken exactly at the row's time fires it (it used to find the timer due and leave it waiting)."""
    case = start_hearing(session, world, clock)
    timer = session.execute(select(DueTimer).where(DueTimer.case_id == case.id)).scalar_one()
    report = run_due_timers(session, timer.fire_at)
    session.commit()
    assert (report.fired, report.failed) == (1, 0)
    assert {t.element_id for t in open_tasks(session, case)} == {"hold_hearing", "chase_court"}
    assert session.execute(select(DueTimer).where(DueTimer.case_id == case.id)).first() is None


@pytest.mark.usefixtures("deployed")
def test_a_hearing_not_held_within_72_hours_escalates_to_the_coordinator(
    session: Session, world: World, clock: FakeClock
) -> None:
    case = start_hearing(session, world, clock)
    clock.advance(timedelta(hours=71))
    assert run_due_timers(session, clock.now()).fired == 0
    session.commit()
    assert [t.element_id for t in open_tasks(session, case)] == ["hold_hearing"]
    clock.advance(timedelta(hours=2))
    report = run_due_timers(session, clock.now())
    session.commit()
    assert (report.fired, report.failed) == (1, 0)
    tasks = {t.element_id: t for t in open_tasks(session, case)}
    assert set(tasks) == {"hold_hearing", "chase_court"}  # non-interrupting: the hearing stays open
    assert tasks["chase_court"].agency_id == world.agencies["mesa_coordinator"].id
    assert tasks["chase_court"].due_at == clock.now() + timedelta(hours=24)
    session.refresh(case)
    assert case.facts["hearing_late"] is True
    assert session.execute(select(DueTimer).where(DueTimer.case_id == case.id)).first() is None


@pytest.mark.usefixtures("deployed")
def test_running_the_timer_pass_twice_fires_nothing_twice(
    session: Session, world: World, clock: FakeClock
) -> None:
    case = start_hearing(session, world, clock)
    clock.advance(timedelta(hours=80))
    assert run_due_timers(session, clock.now()).fired == 1
    session.commit()
    assert run_due_timers(session, clock.now()).fired == 0
    session.commit()
    assert len(open_tasks(session, case)) == 2


@pytest.mark.usefixtures("deployed")
def test_a_failing_timer_is_retried_later_without_blocking_others(
    session: Session, world: World, clock: FakeClock, forms: dict[str, FormDefinition]
) -> None:
    broken = source("timers.bpmn", {"update_case(hearing_late=True)": "update_case(hearing_late=1 / 0)"})
    deploy(session, with_forms([broken]), actor="tests", now=clock.now())
    session.commit()
    bad = start_hearing(session, world, clock)
    deploy(session, with_forms([source("timers.bpmn")]), actor="tests", now=clock.now())
    session.commit()
    good = start_hearing(session, world, clock)
    clock.advance(timedelta(hours=73))
    report = run_due_timers(session, clock.now())
    session.commit()
    assert (report.fired, report.failed) == (1, 1)
    assert {t.element_id for t in open_tasks(session, good)} == {"hold_hearing", "chase_court"}
    assert {t.element_id for t in open_tasks(session, bad)} == {"hold_hearing"}
    retry = session.execute(select(DueTimer).where(DueTimer.case_id == bad.id)).scalar_one()
    assert retry.attempts == 1
    assert retry.fire_at == clock.now() + timedelta(minutes=1)
    assert "division" in (retry.last_error or "")


@pytest.mark.parametrize(
    ("level", "period"),
    [("extremo", timedelta(hours=72)), ("alto", timedelta(days=7)), ("medio", timedelta(days=30)),
     ("bajo", timedelta(days=60))],
)
@pytest.mark.usefixtures("deployed")
def test_the_reassessment_is_due_by_the_dmn_period_of_the_level(
    session: Session, world: World, clock: FakeClock, level: str, period: timedelta
) -> None:
    case, _ = start_case(session, territory_id=world.territory.id, process_key="cycle", data={"level": level},
                         now=clock.now(), actor=world.actor("state_police"))
    session.commit()
    [task] = open_tasks(session, case)
    assert task.due_at == clock.now() + period


@pytest.mark.usefixtures("deployed")
def test_a_finished_instance_starts_the_next_one_named_in_its_outcome(
    session: Session, world: World, clock: FakeClock, forms: dict[str, FormDefinition]
) -> None:
    case, _ = start_case(session, territory_id=world.territory.id, process_key="cycle",
                         data={"level": "medio"}, now=clock.now(), actor=world.actor("state_police"))
    session.commit()
    [task] = open_tasks(session, case)
    clock.advance(timedelta(days=2))
    complete_task(session, task.id, {"score": 12}, expected_version=1, now=clock.now(),
                  actor=world.actor("state_police"))
    session.commit()
    instances = session.execute(
        select(ProcessInstance).where(ProcessInstance.case_id == case.id).order_by(ProcessInstance.id)
    ).scalars().all()
    assert [(i.process_key, i.status) for i in instances] == [("cycle", "completed"), ("cycle", "running")]
    assert instances[0].outcome == {"next_process": "cycle", "next_data": {"level": "alto"}, "start_after": "PT0S",
                                    "path": ["start", "period", "reassess", "level", "end"]}
    assert instances[0].state == ""  # a finished workflow keeps its record in history, not its state
    session.refresh(case)
    assert case.risk_level == "alto"
    [next_task] = open_tasks(session, case)
    assert next_task.due_at == clock.now() + timedelta(days=7)  # the new level's period


@pytest.mark.usefixtures("world")
def test_a_later_start_waits_for_the_timer_pass(
    session: Session, world: World, clock: FakeClock, forms: dict[str, FormDefinition]
) -> None:
    later = source("cycle.bpmn", {'start_after = "PT0S"': 'start_after = "P7D"'})
    deploy(session, with_forms([later, source("period.dmn")]), actor="tests", now=clock.now())
    session.commit()
    case, _ = start_case(session, territory_id=world.territory.id, process_key="cycle",
                         data={"level": "bajo"}, now=clock.now(), actor=world.actor("state_police"))
    session.commit()
    [task] = open_tasks(session, case)
    complete_task(session, task.id, {"score": 1}, expected_version=1, now=clock.now(),
                  actor=world.actor("state_police"))
    session.commit()
    assert open_tasks(session, case) == []
    scheduled = session.execute(select(DueTimer).where(DueTimer.case_id == case.id)).scalar_one()
    assert (scheduled.kind, scheduled.fire_at) == ("start_process", clock.now() + timedelta(days=7))
    clock.advance(timedelta(days=6))
    assert run_due_timers(session, clock.now()).fired == 0
    clock.advance(timedelta(days=1))
    assert run_due_timers(session, clock.now()).fired == 1
    session.commit()
    [again] = open_tasks(session, case)
    assert again.element_id == "reassess"


@pytest.mark.usefixtures("deployed")
def test_a_replacing_process_cancels_the_pending_cycle(
    session: Session, world: World, clock: FakeClock
) -> None:
    case, first = start_case(session, territory_id=world.territory.id, process_key="cycle",
                             data={"level": "medio"}, now=clock.now(), actor=world.actor("state_police"))
    session.commit()
    start_process(session, case, "cycle", {"level": "extremo"}, now=clock.now(),
                  actor=world.actor("health_centre"), replaces=["cycle"])
    session.commit()
    session.refresh(first)
    assert first.status == "cancelled"
    [task] = open_tasks(session, case)
    assert task.due_at == clock.now() + timedelta(hours=72)
    cancelled = session.execute(
        select(func.count()).select_from(TaskEvent).where(TaskEvent.case_id == case.id,
                                                          TaskEvent.action == "instance_cancelled")
    ).scalar_one()
    assert cancelled == 1


@pytest.mark.usefixtures("deployed")
def test_two_concurrent_completions_of_one_task_give_one_success_and_one_conflict(
    session_factory: sessionmaker[Session], session: Session, world: World, clock: FakeClock,
    forms: dict[str, FormDefinition],
) -> None:
    from engine.errors import ConflictError

    case, _ = start_case(session, territory_id=world.territory.id, process_key="simple", data={},
                         now=clock.now(), actor=world.actor("health_centre"))
    session.commit()
    [task] = open_tasks(session, case)
    session.commit()  # end this session's read: on SQLite every transaction holds the write lock
    actor = world.actor("social_services")

    def complete(note: str, go: Callable[[], None]) -> str:
        with session_factory() as own:
            go()
            try:
                complete_task(own, task.id, {"note": note}, expected_version=1, now=clock.now(), actor=actor)
                own.commit()
                return "ok"
            except ConflictError:
                own.rollback()
                return "conflict"

    outcomes = race(partial(complete, "a"), partial(complete, "b"), timeout=60)
    assert sorted(outcomes) == ["conflict", "ok"]
    session.expire_all()
    assert [t.element_id for t in open_tasks(session, case)] == ["police_check"]
    completions = session.execute(
        select(func.count()).select_from(TaskEvent).where(TaskEvent.case_id == case.id,
                                                          TaskEvent.action == "completed")
    ).scalar_one()
    assert completions == 1


@pytest.mark.usefixtures("deployed")
def test_parallel_tasks_completed_at_once_by_two_agencies_both_count(
    session_factory: sessionmaker[Session], session: Session, world: World, clock: FakeClock,
    forms: dict[str, FormDefinition],
) -> None:
    case, instance = start_case(session, territory_id=world.territory.id, process_key="parallel", data={},
                                now=clock.now(), actor=world.actor("health_centre"))
    session.commit()
    tasks = {t.agency_kind: t for t in open_tasks(session, case)}
    session.commit()

    def complete(kind: str, go: Callable[[], None]) -> None:
        with session_factory() as own:
            go()
            complete_task(own, tasks[kind].id, {"note": kind}, expected_version=1, now=clock.now(),
                          actor=world.actor(kind))
            own.commit()

    race(partial(complete, "social_services"), partial(complete, "state_police"), timeout=60)
    session.expire_all()
    assert session.get(ProcessInstance, instance.id).status == "completed"  # type: ignore[union-attr]


@pytest.mark.usefixtures("deployed")
def test_two_timer_workers_at_once_fire_each_timer_exactly_once(
    session_factory: sessionmaker[Session], session: Session, world: World, clock: FakeClock
) -> None:
    cases = [start_hearing(session, world, clock) for _ in range(12)]
    clock.advance(timedelta(hours=73))
    session.commit()

    def worker(go: Callable[[], None]) -> int:
        with session_factory() as own:
            go()
            fired = run_due_timers(own, clock.now()).fired
            own.commit()
            return fired

    assert sum(race(worker, worker)) == len(cases)
    events = session.execute(
        select(func.count()).select_from(TaskEvent).where(TaskEvent.action == "timer_fired")
    ).scalar_one()
    assert events == len(cases)
    chase = session.execute(
        select(func.count()).select_from(OpenTask).where(OpenTask.element_id == "chase_court")
    ).scalar_one()
    assert chase == len(cases)


@pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)  # row locks: SQLite locks whole transactions
@pytest.mark.usefixtures("deployed")
def test_a_timer_of_a_case_someone_is_working_on_waits_for_the_next_pass(
    session_factory: sessionmaker[Session], session: Session, world: World, clock: FakeClock
) -> None:
    case = start_hearing(session, world, clock)
    clock.advance(timedelta(hours=73))
    session.commit()
    with session_factory() as busy:
        busy.execute(select(Case).where(Case.id == case.id).with_for_update(of=Case)).scalar_one()
        with session_factory() as worker:
            assert run_due_timers(worker, clock.now()).fired == 0  # skipped, not blocked
            worker.commit()
        busy.rollback()
    with session_factory() as worker:
        assert run_due_timers(worker, clock.now()).fired == 1
        worker.commit()
