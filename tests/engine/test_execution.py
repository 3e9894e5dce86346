"""Cases, tasks and instances through the engine, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import spiff
from engine.actor import Actor
from engine.clock import FakeClock
from engine.deploy import deploy
from engine.errors import ConflictError, ExecutionError, NotFoundError, PermissionDeniedError, TaskDataError
from engine.execution import complete_task, start_case
from engine.forms import FormDefinition
from engine.localtime import LOCAL_TZ
from engine.models import Agency, Case, CaseParty, OpenTask, ProcessInstance, TaskEvent
from engine.persistence import load_run
from engine.tasks import assign_task, can_act_on, claim_task, release_task, save_draft
from tests.support.engine_files import source, with_forms
from tests.support.world import World


def open_tasks(session: Session, case: Case) -> list[OpenTask]:
    return list(session.execute(select(OpenTask).where(OpenTask.case_id == case.id)).scalars())


def start_simple(session: Session, world: World, clock: FakeClock, territory_id: int | None = None) -> Case:
    case, _ = start_case(
        session, territory_id=territory_id or world.territory.id, process_key="simple", data={},
        now=clock.now(), actor=world.actor("health_centre"),
        victim={"name": "Víctima Sintética"}, aggressor={"name": "Agresor Sintético"},
    )
    session.commit()
    return case


@pytest.mark.usefixtures("deployed")
def test_starting_a_case_gives_a_reference_and_a_task_in_the_lane_agency(
    session: Session, world: World, clock: FakeClock
) -> None:
    case = start_simple(session, world, clock)
    assert case.reference == "VG-2026-000001"
    [task] = open_tasks(session, case)
    assert (task.element_id, task.agency_kind) == ("review", "social_services")
    assert task.agency_id == world.agencies["social_services"].id
    assert task.form == "note"
    assert task.due_at == clock.now() + timedelta(days=3)
    assert task.assignee_id is None
    second = start_simple(session, world, clock)
    assert second.reference == "VG-2026-000002"


@pytest.mark.usefixtures("deployed")
def test_identifying_data_is_kept_apart_from_workflow_state(
    session: Session, world: World, clock: FakeClock
) -> None:
    case = start_simple(session, world, clock)
    parties = session.execute(select(CaseParty).where(CaseParty.case_id == case.id)).scalars().all()
    assert {p.role for p in parties} == {"victim", "aggressor"}
    instance = session.execute(select(ProcessInstance).where(ProcessInstance.case_id == case.id)).scalar_one()
    assert "Sintética" not in instance.state
    assert "Sintético" not in instance.state


@pytest.mark.usefixtures("deployed")
def test_completing_a_task_hands_the_next_step_to_the_next_agency(
    session: Session, world: World, clock: FakeClock, forms: dict[str, FormDefinition]
) -> None:
    case = start_simple(session, world, clock)
    [task] = open_tasks(session, case)
    clock.advance(timedelta(hours=5))
    complete_task(session, task.id, {"note": "visto"}, expected_version=task.version, now=clock.now(),
                  actor=world.actor("social_services"))
    session.commit()
    [police] = open_tasks(session, case)
    assert (police.element_id, police.agency_id) == ("police_check", world.agencies["state_police"].id)
    history = session.execute(
        select(TaskEvent).where(TaskEvent.case_id == case.id, TaskEvent.action == "completed")
    ).scalar_one()
    assert history.element_id == "review"
    assert history.actor_id == world.users["social_services"].id
    assert history.data == {"note": "visto"}
    assert history.at == clock.now()
    timeline = session.execute(
        select(TaskEvent.action, TaskEvent.element_id).where(TaskEvent.case_id == case.id).order_by(TaskEvent.id)
    ).all()
    assert [tuple(row) for row in timeline] == [
        ("case_opened", None), ("instance_started", None), ("created", "review"), ("completed", "review"),
        ("created", "police_check"),
    ]


@pytest.mark.usefixtures("deployed")
def test_the_last_task_finishes_the_instance_and_scripts_update_the_case(
    session: Session, world: World, clock: FakeClock, forms: dict[str, FormDefinition]
) -> None:
    case = start_simple(session, world, clock)
    for kind in ("social_services", "state_police"):
        [task] = open_tasks(session, case)
        complete_task(session, task.id, {"note": f"hecho por {kind}"}, expected_version=task.version,
                      now=clock.now(), actor=world.actor(kind))
        session.commit()
    assert open_tasks(session, case) == []
    instance = session.execute(select(ProcessInstance).where(ProcessInstance.case_id == case.id)).scalar_one()
    assert instance.status == "completed"
    session.refresh(case)
    assert case.facts["last_note"] == "hecho por state_police"


@pytest.mark.usefixtures("deployed")
def test_a_deadline_in_working_days_skips_the_regional_holiday(
    session: Session, world: World, clock: FakeClock, forms: dict[str, FormDefinition]
) -> None:
    # Monday 7 September 2026, 10:00 in Madrid; Tuesday 8 is Día de Extremadura (EX only).
    clock.set(datetime(2026, 9, 7, 10, 0, tzinfo=LOCAL_TZ))
    session.add(Agency(name="SS Madrid", kind="social_services", territories=[world.other_territory]))
    session.add(Agency(name="Policía Madrid", kind="state_police", territories=[world.other_territory]))
    session.commit()
    due = {}
    for territory in (world.territory, world.other_territory):
        case = start_simple(session, world, clock, territory.id)
        [task] = open_tasks(session, case)
        member = Actor(user_id=None, name="ss", agency_id=task.agency_id)
        complete_task(session, task.id, {"note": "ok"}, expected_version=1, now=clock.now(), actor=member)
        session.commit()
        [police] = open_tasks(session, case)
        assert police.due_at is not None
        due[territory.region] = police.due_at.astimezone(LOCAL_TZ)
    assert due["EX"] == datetime(2026, 9, 9, 10, 0, tzinfo=LOCAL_TZ)
    assert due["MD"] == datetime(2026, 9, 8, 10, 0, tzinfo=LOCAL_TZ)


@pytest.mark.usefixtures("deployed")
def test_tasks_are_assigned_to_the_agency_serving_the_case_territory(
    session: Session, world: World, clock: FakeClock
) -> None:
    madrid_ss = Agency(name="SS Madrid Centro", kind="social_services", territories=[world.other_territory])
    session.add(madrid_ss)
    session.commit()
    [here] = open_tasks(session, start_simple(session, world, clock))
    [there] = open_tasks(session, start_simple(session, world, clock, world.other_territory.id))
    assert here.agency_id == world.agencies["social_services"].id
    assert there.agency_id == madrid_ss.id


@pytest.mark.usefixtures("deployed")
def test_claim_release_and_supervisor_assignment(session: Session, world: World, clock: FakeClock) -> None:
    [task] = open_tasks(session, start_simple(session, world, clock))
    member, boss = world.actor("social_services"), world.actor("social_services", supervisor=True)
    claim_task(session, task.id, now=clock.now(), actor=member)
    session.commit()
    assert task.assignee_id == member.user_id
    with pytest.raises(ConflictError):
        claim_task(session, task.id, now=clock.now(), actor=boss)
    session.rollback()
    release_task(session, task.id, now=clock.now(), actor=member)
    session.commit()
    assert task.assignee_id is None
    assign_task(session, task.id, world.users["social_services"].id, now=clock.now(), actor=boss)
    session.commit()
    assert task.assignee_id == member.user_id
    assert task.version == 4
    actions = session.execute(
        select(TaskEvent.action).where(TaskEvent.task_id == task.id).order_by(TaskEvent.id)
    ).scalars().all()
    assert actions == ["created", "claimed", "released", "assigned"]


@pytest.mark.usefixtures("deployed")
def test_only_the_owning_agency_may_act_on_a_task_and_only_its_assignee_once_claimed(
    session: Session, world: World, clock: FakeClock
) -> None:
    [task] = open_tasks(session, start_simple(session, world, clock))
    member, boss = world.actor("social_services"), world.actor("social_services", supervisor=True)
    police = world.actor("state_police")
    assert [can_act_on(task, actor) for actor in (member, boss, police)] == [True, True, False]
    claim_task(session, task.id, now=clock.now(), actor=member)
    assert [can_act_on(task, actor) for actor in (member, boss, police)] == [True, False, False]
    assert not can_act_on(task, Actor.system("timer"))  # no agency: never


@pytest.mark.usefixtures("deployed")
def test_other_agencies_cannot_claim_complete_or_assign(
    session: Session, world: World, clock: FakeClock, forms: dict[str, FormDefinition]
) -> None:
    [task] = open_tasks(session, start_simple(session, world, clock))
    police = world.actor("state_police")
    with pytest.raises(PermissionDeniedError):
        claim_task(session, task.id, now=clock.now(), actor=police)
    with pytest.raises(PermissionDeniedError):
        complete_task(session, task.id, {"note": "x"}, expected_version=1, now=clock.now(), actor=police)
    with pytest.raises(PermissionDeniedError):
        assign_task(session, task.id, world.users["state_police"].id, now=clock.now(),
                    actor=world.actor("state_police", supervisor=True))
    with pytest.raises(PermissionDeniedError):  # a supervisor may only assign to own members
        assign_task(session, task.id, world.users["state_police"].id, now=clock.now(),
                    actor=world.actor("social_services", supervisor=True))


@pytest.mark.usefixtures("deployed")
def test_a_claimed_task_can_only_be_completed_by_its_assignee(
    session: Session, world: World, clock: FakeClock, forms: dict[str, FormDefinition]
) -> None:
    [task] = open_tasks(session, start_simple(session, world, clock))
    claim_task(session, task.id, now=clock.now(), actor=world.actor("social_services"))
    session.commit()
    with pytest.raises(PermissionDeniedError):
        complete_task(session, task.id, {"note": "x"}, expected_version=task.version, now=clock.now(),
                      actor=world.actor("social_services", supervisor=True))


@pytest.mark.usefixtures("deployed")
def test_a_stale_completion_is_refused_as_a_conflict(
    session: Session, world: World, clock: FakeClock, forms: dict[str, FormDefinition]
) -> None:
    [task] = open_tasks(session, start_simple(session, world, clock))
    member = world.actor("social_services")
    save_draft(session, task.id, {"note": "borrador"}, expected_version=1, now=clock.now(), actor=member)
    session.commit()
    with pytest.raises(ConflictError):
        complete_task(session, task.id, {"note": "x"}, expected_version=1, now=clock.now(), actor=member)
    session.rollback()
    assert [t.element_id for t in open_tasks(session, start_simple(session, world, clock))] == ["review"]


@pytest.mark.usefixtures("deployed")
def test_completing_an_already_completed_task_is_a_conflict(
    session: Session, world: World, clock: FakeClock, forms: dict[str, FormDefinition]
) -> None:
    [task] = open_tasks(session, start_simple(session, world, clock))
    member = world.actor("social_services")
    complete_task(session, task.id, {"note": "x"}, expected_version=1, now=clock.now(), actor=member)
    session.commit()
    with pytest.raises(ConflictError):
        complete_task(session, task.id, {"note": "y"}, expected_version=1, now=clock.now(), actor=member)
    with pytest.raises(NotFoundError):
        complete_task(session, 999_999, {"note": "y"}, expected_version=1, now=clock.now(), actor=member)


@pytest.mark.usefixtures("deployed")
def test_invalid_or_unknown_fields_are_refused_field_by_field(
    session: Session, world: World, clock: FakeClock, forms: dict[str, FormDefinition]
) -> None:
    [task] = open_tasks(session, start_simple(session, world, clock))
    member = world.actor("social_services")
    with pytest.raises(TaskDataError) as refused:
        complete_task(session, task.id, {"ok": "yes", "next_process": "simple"}, expected_version=1,
                      now=clock.now(), actor=member)
    assert set(refused.value.errors) == {"note", "ok", "next_process"}
    assert refused.value.errors["note"] == ["required"]
    assert refused.value.errors["next_process"] == ["unknown field"]


def _snapshot(session: Session) -> dict[str, object]:
    return {
        "tasks": [(t.id, t.element_id, t.version, t.assignee_id) for t in session.execute(
            select(OpenTask).order_by(OpenTask.id)).scalars()],
        "instances": [(i.id, i.status, i.row_version, i.state) for i in session.execute(
            select(ProcessInstance).order_by(ProcessInstance.id)).scalars()],
        "events": session.execute(select(func.count()).select_from(TaskEvent)).scalar_one(),
        "cases": [(c.id, c.version, c.status, dict(c.facts)) for c in session.execute(select(Case)).scalars()],
    }


@pytest.mark.usefixtures("world")
def test_an_error_mid_completion_leaves_the_database_exactly_as_before(
    session: Session, world: World, clock: FakeClock, forms: dict[str, FormDefinition]
) -> None:
    broken = source("simple.bpmn", {"checked = note": "checked = 1 / 0"})
    deploy(session, with_forms([broken]), actor="tests", now=clock.now())
    session.commit()
    case = start_simple(session, world, clock)
    [task] = open_tasks(session, case)
    complete_task(session, task.id, {"note": "ok"}, expected_version=1, now=clock.now(),
                  actor=world.actor("social_services"))
    session.commit()
    session.expire_all()
    before = _snapshot(session)
    [police] = open_tasks(session, case)
    with pytest.raises(ExecutionError, match=r"ZeroDivisionError|division by zero"):
        complete_task(session, police.id, {"note": "boom"}, expected_version=1, now=clock.now(),
                      actor=world.actor("state_police"))
    session.rollback()
    session.expire_all()
    assert _snapshot(session) == before


@pytest.mark.usefixtures("deployed")
def test_an_instance_saved_mid_run_resumes_in_a_fresh_session(
    session_factory: object, session: Session, world: World, clock: FakeClock, forms: dict[str, FormDefinition]
) -> None:
    case = start_simple(session, world, clock)
    [task] = open_tasks(session, case)
    complete_task(session, task.id, {"note": "primera"}, expected_version=1, now=clock.now(),
                  actor=world.actor("social_services"))
    session.commit()
    session.close()
    from sqlalchemy.orm import sessionmaker

    assert isinstance(session_factory, sessionmaker)
    with session_factory() as fresh:
        instance = fresh.execute(select(ProcessInstance).where(ProcessInstance.case_id == case.id)).scalar_one()
        run, _ = load_run(fresh, instance)
        assert run.workflow.script_engine is spiff.SCRIPT_ENGINE
        [ready] = run.ready_tasks()
        assert ready.spec.element_id == "police_check"
        assert ready.data["note"] == "primera"
        [police] = fresh.execute(select(OpenTask).where(OpenTask.case_id == case.id)).scalars()
        complete_task(fresh, police.id, {"note": "segunda"}, expected_version=1, now=clock.now(),
                      actor=world.actor("state_police"))
        fresh.commit()
        assert fresh.get(ProcessInstance, instance.id).status == "completed"  # type: ignore[union-attr]


@pytest.mark.usefixtures("world")
def test_a_running_instance_finishes_on_the_version_it_started_with(
    session: Session, world: World, clock: FakeClock, forms: dict[str, FormDefinition]
) -> None:
    deploy(session, with_forms([source("simple.bpmn")]), actor="tests", now=clock.now(), comment="v1")
    session.commit()
    old_case = start_simple(session, world, clock)
    v2 = source("simple.bpmn", {'name="Comprobar"': 'name="Comprobar (v2)"'})
    result = deploy(session, with_forms([v2]), actor="tests", now=clock.now(), comment="v2")
    session.commit()
    assert [(d.key, d.version) for d in result.created] == [("simple", 2)]
    new_case = start_simple(session, world, clock)
    names = {}
    for case in (old_case, new_case):
        [task] = open_tasks(session, case)
        complete_task(session, task.id, {"note": "ok"}, expected_version=1, now=clock.now(),
                      actor=world.actor("social_services"))
        session.commit()
        [police] = open_tasks(session, case)
        names[case.id] = police.name
    assert names == {old_case.id: "Comprobar", new_case.id: "Comprobar (v2)"}


@pytest.mark.usefixtures("deployed")
def test_instance_state_holds_no_copy_of_the_spec(session: Session, world: World, clock: FakeClock) -> None:
    case = start_simple(session, world, clock)
    instance = session.execute(select(ProcessInstance).where(ProcessInstance.case_id == case.id)).scalar_one()
    assert '"spec"' not in instance.state
    assert "task_specs" not in instance.state
    assert instance.serializer_version == spiff.SERIALIZER_VERSION
    assert len(instance.state) < 8000


def test_fake_clock_refuses_naive_times() -> None:
    from engine.clock import FakeClock as Clock

    with pytest.raises(ValueError, match="aware"):
        Clock(datetime(2026, 1, 1))
    assert Clock(datetime(2026, 1, 1, tzinfo=UTC)).now().tzinfo is UTC
