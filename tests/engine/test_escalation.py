"""Reminders and escalations around a task's deadline, on a fake clock, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine import deadlines
from engine.clock import FakeClock
from engine.deadlines import run_escalations
from engine.definitions import SourceFile
from engine.deploy import deploy
from engine.escalation import (
    LEVEL_AGENCY,
    LEVEL_COORDINATOR,
    LEVEL_NONE,
    plan_escalation,
)
from engine.execution import complete_task, start_case
from engine.forms import FormDefinition
from engine.models import Notification, OpenTask, TaskEvent, UserAccount
from engine.properties import StepProperties
from engine.tasks import claim_task
from tests.support.engine_files import with_forms
from tests.support.race import race
from tests.support.world import World

# One-step processes of social services: custom periods, a reminder, the defaults, no deadline.
PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="{key}_defs"
    targetNamespace="http://coordina.example/bpmn">
  <bpmn:process id="{key}" name="{key}" isExecutable="true">
    <bpmn:laneSet id="{key}_lanes">
      <bpmn:lane id="{key}_lane" name="social_services">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>step</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="step" name="Paso de {key}">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="form" value="note" />
        {properties}
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="step" />
    <bpmn:sequenceFlow id="f2" sourceRef="step" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""
PROPERTIES = {
    "escalating": {"due": "'PT24H'", "escalateSupervisorAfter": "'PT12H'", "escalateCoordinatorAfter": "'P1D'"},
    "reminding": {"due": "'P3D'", "reminderBefore": "'PT24H'"},
    "plain": {"due": "'PT8H'"},
    "unreminded": {"due": "'P3D'"},
    "undated": {},
}


def process_file(key: str) -> SourceFile:
    properties = "\n        ".join(f'<spiffworkflow:property name="{name}" value="{value}" />'
                                   for name, value in PROPERTIES[key].items())
    return SourceFile(f"{key}.bpmn", PROCESS.format(key=key, properties=properties).encode())


@pytest.fixture
def deployed(session: Session, world: World, forms: dict[str, FormDefinition], clock: FakeClock) -> None:
    """Deploy the test processes."""
    deploy(session, with_forms([process_file(key) for key in PROPERTIES]), actor="tests", now=clock.now())
    session.commit()


StartFn = Callable[[str], OpenTask]


@pytest.fixture
def start(session: Session, world: World, clock: FakeClock, deployed: None) -> StartFn:
    """Start a case on one of the test processes; return its open task."""

    def start_one(key: str) -> OpenTask:
        case, _ = start_case(session, territory_id=world.territory.id, process_key=key, data={}, now=clock.now(),
                             actor=world.actor("social_services"))
        task = session.execute(select(OpenTask).where(OpenTask.case_id == case.id)).scalar_one()
        session.commit()  # on SQLite a transaction holds the write lock: end it
        return task

    return start_one


def escalate(session: Session, when: datetime) -> list[tuple[str, str]]:
    """Run the escalation pass at `when`, commit, and return (username, kind) of the notices it created."""
    report = run_escalations(session, when)
    session.commit()
    assert report.failed == 0, report.errors
    return sorted((notice_user(session, n), n.kind) for n in report.notifications)


def notice_user(session: Session, notice: Notification) -> str:
    user = session.get(UserAccount, notice.user_id)
    assert user is not None
    return user.username


def history(session: Session, task: OpenTask) -> list[tuple[str, str]]:
    rows = session.execute(
        select(TaskEvent.action, TaskEvent.data).where(TaskEvent.task_id == task.id,
                                                       TaskEvent.action.in_(("escalated", "reminded")))
        .order_by(TaskEvent.id)
    ).all()
    return [(action, data["level"]) for action, data in rows]


AGENCY = [("social_services_1", "agency"), ("social_services_boss", "agency")]
SUPERVISOR = [("social_services_boss", "supervisor")]
MESA = [("mesa_coordinator_1", "coordinator"), ("mesa_coordinator_boss", "coordinator")]
SECOND = timedelta(seconds=1)


def test_an_overdue_task_goes_to_its_agency_then_its_supervisors_then_the_mesa(
    session: Session, start: StartFn, clock: FakeClock
) -> None:
    task = start("escalating")
    due = clock.now() + timedelta(hours=24)
    assert (task.due_at, task.next_escalation_at, task.escalation_level) == (due, due, LEVEL_NONE)

    assert escalate(session, due - SECOND) == []
    assert escalate(session, due) == AGENCY  # unassigned: every member of the agency, at the deadline
    assert escalate(session, due) == []  # not twice
    session.refresh(task)
    assert (task.escalation_level, task.next_escalation_at) == (LEVEL_AGENCY, due + timedelta(hours=12))

    assert escalate(session, due + timedelta(hours=12) - SECOND) == []
    assert escalate(session, due + timedelta(hours=12)) == SUPERVISOR
    assert escalate(session, due + timedelta(hours=23)) == []
    assert escalate(session, due + timedelta(hours=24)) == MESA
    assert escalate(session, due + timedelta(days=30)) == []
    session.refresh(task)
    assert (task.escalation_level, task.next_escalation_at) == (LEVEL_COORDINATOR, None)
    assert history(session, task) == [("escalated", "agency"), ("escalated", "supervisor"),
                                      ("escalated", "coordinator")]
    event = session.execute(select(TaskEvent).where(TaskEvent.action == "escalated")).scalars().first()
    assert event is not None
    assert (event.agency_id, event.actor_id, event.name) == (task.agency_id, None, "Paso de escalating")


def test_the_default_periods_are_one_and_two_days_after_the_deadline(
    session: Session, start: StartFn, clock: FakeClock
) -> None:
    task = start("plain")
    due = clock.now() + timedelta(hours=8)
    assert escalate(session, due) == AGENCY
    assert escalate(session, due + timedelta(days=1) - SECOND) == []
    assert escalate(session, due + timedelta(days=1)) == SUPERVISOR
    assert escalate(session, due + timedelta(days=2) - SECOND) == []
    assert escalate(session, due + timedelta(days=2)) == MESA
    assert history(session, task) == [("escalated", "agency"), ("escalated", "supervisor"),
                                      ("escalated", "coordinator")]


def test_a_claimed_task_tells_only_its_assignee_at_the_deadline(
    session: Session, start: StartFn, clock: FakeClock, world: World
) -> None:
    task = start("plain")
    claim_task(session, task.id, now=clock.now(), actor=world.actor("social_services"))
    session.commit()
    assert escalate(session, clock.now() + timedelta(hours=8)) == [("social_services_1", "agency")]


def test_a_reminder_comes_before_the_deadline_when_the_model_asks(
    session: Session, start: StartFn, clock: FakeClock
) -> None:
    reminded = start("reminding")
    unreminded = start("unreminded")
    due = clock.now() + timedelta(days=3)
    assert reminded.next_escalation_at == due - timedelta(hours=24)
    assert unreminded.next_escalation_at == unreminded.due_at  # no reminderBefore: nothing before the deadline
    assert escalate(session, due - timedelta(hours=24) - SECOND) == []
    assert escalate(session, due - timedelta(hours=24)) == [("social_services_1", "reminder"),
                                                             ("social_services_boss", "reminder")]
    assert escalate(session, due - SECOND) == []
    assert history(session, reminded) == [("reminded", "reminder")]
    assert history(session, unreminded) == []


def test_after_an_outage_each_level_is_sent_once_and_a_stale_reminder_is_dropped(
    session: Session, start: StartFn, clock: FakeClock
) -> None:
    task = start("reminding")
    assert escalate(session, clock.now() + timedelta(days=6)) == sorted(AGENCY + SUPERVISOR + MESA)
    assert history(session, task) == [("escalated", "agency"), ("escalated", "supervisor"),
                                      ("escalated", "coordinator")]
    assert escalate(session, clock.now() + timedelta(days=7)) == []


def test_a_completed_task_is_never_escalated(
    session: Session, start: StartFn, clock: FakeClock, world: World, forms: dict[str, FormDefinition]
) -> None:
    task = start("reminding")
    complete_task(session, task.id, {"note": "hecho"}, expected_version=task.version, now=clock.now(),
                  actor=world.actor("social_services"))
    session.commit()
    for days in (2, 3, 4, 5, 30):
        assert escalate(session, clock.now() + timedelta(days=days)) == []
    assert session.execute(select(func.count()).select_from(Notification)).scalar_one() == 0
    assert session.execute(select(func.count()).select_from(TaskEvent)
                           .where(TaskEvent.action.in_(("escalated", "reminded")))).scalar_one() == 0


def test_a_task_without_deadline_is_never_scheduled(session: Session, start: StartFn, clock: FakeClock) -> None:
    task = start("undated")
    assert (task.due_at, task.next_escalation_at) == (None, None)
    assert escalate(session, clock.now() + timedelta(days=365)) == []


def test_the_mesa_hears_nothing_when_no_mesa_serves_the_territory(
    session: Session, start: StartFn, clock: FakeClock, world: World
) -> None:
    world.agencies["mesa_coordinator"].active = False
    session.commit()
    task = start("escalating")
    assert escalate(session, task.due_at + timedelta(days=1)) == sorted(AGENCY + SUPERVISOR)  # type: ignore[operator]
    assert history(session, task)[-1] == ("escalated", "coordinator")  # still in the history


def test_two_workers_at_once_notify_each_person_once(
    session_factory: sessionmaker[Session], session: Session, start: StartFn, clock: FakeClock
) -> None:
    tasks = [start("escalating") for _ in range(10)]
    when = clock.now() + timedelta(days=3)

    def worker(go: Callable[[], None]) -> int:
        created = 0
        with session_factory() as own:
            go()
            report = run_escalations(own, when, limit=4)  # small batches: the workers interleave
            while True:
                created += len(report.notifications)
                own.commit()
                if report.taken < 4:
                    break
                report = run_escalations(own, when, limit=4)
        return created

    per_task = len(AGENCY + SUPERVISOR + MESA)
    assert sum(race(worker, worker)) == per_task * len(tasks)
    duplicates = session.execute(
        select(Notification.user_id, Notification.task_id, Notification.kind)
        .group_by(Notification.user_id, Notification.task_id, Notification.kind).having(func.count() > 1)
    ).all()
    assert duplicates == []
    assert session.execute(select(func.count()).select_from(TaskEvent)
                           .where(TaskEvent.action == "escalated")).scalar_one() == 3 * len(tasks)


@pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)  # row locks: SQLite locks whole transactions
def test_a_task_someone_is_completing_is_skipped_not_waited_for(
    session_factory: sessionmaker[Session], start: StartFn, clock: FakeClock
) -> None:
    task = start("plain")
    when = clock.now() + timedelta(hours=8)
    with session_factory() as busy:
        busy.execute(select(OpenTask).where(OpenTask.id == task.id).with_for_update()).scalar_one()
        with session_factory() as worker:
            assert run_escalations(worker, when).taken == 0  # skipped, not blocked
            worker.commit()
        busy.rollback()
    with session_factory() as worker:
        assert len(run_escalations(worker, when).notifications) == 2
        worker.commit()


@pytest.mark.parametrize("db_engine", ["sqlite"], indirect=True)
def test_the_pass_finds_due_tasks_through_the_index(session: Session, start: StartFn, clock: FakeClock) -> None:
    start("plain")
    plan = session.execute(text(
        "EXPLAIN QUERY PLAN SELECT id FROM open_task WHERE next_escalation_at <= :now "
        "ORDER BY next_escalation_at, id LIMIT 1000"), {"now": clock.now().replace(tzinfo=None)}).all()
    assert any("ix_open_task_next_escalation_at" in str(row) for row in plan), plan


def test_working_days_and_out_of_order_periods_in_the_plan() -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    friday = datetime(2026, 3, 6, 9, 0, tzinfo=UTC)
    step = StepProperties.from_raw({"escalateSupervisorAfter": "working_days(1)", "escalateCoordinatorAfter": "'PT1H'",
                                    "reminderBefore": "'PT4H' if urgent else None"})
    plan = plan_escalation(step, {"urgent": False}, now, "EX", friday)
    assert plan is not None
    assert plan.supervisor_after == timedelta(days=3)  # Friday + 1 working day = Monday
    assert plan.coordinator_after == timedelta(days=3)  # never before the supervisors
    assert plan.reminder_before is None
    assert plan_escalation(StepProperties.from_raw({"reminderBefore": "'PT4H'"}), {}, now, "EX", None) is None


def test_a_task_that_fails_to_escalate_is_retried_later_without_blocking_others(
    session: Session, start: StartFn, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken, fine = start("plain"), start("plain")
    due = clock.now() + timedelta(hours=8)
    real_notify = deadlines.notify

    def failing_notify(session: Session, users: Any, kind: str, task: OpenTask, now: datetime) -> list[Notification]:
        created = real_notify(session, users, kind, task, now)
        if task.id == broken.id:
            raise RuntimeError("mail merge exploded")
        return created

    monkeypatch.setattr(deadlines, "notify", failing_notify)
    report = run_escalations(session, due)
    session.commit()
    assert (report.failed, report.escalated) == (1, 1)
    assert {n.task_id for n in report.notifications} == {fine.id}  # the rolled-back notices are not reported
    session.refresh(broken)
    assert (broken.escalation_level, broken.next_escalation_at) == (LEVEL_NONE, due + deadlines.ESCALATION_RETRY)
    assert session.execute(select(func.count()).select_from(Notification)
                           .where(Notification.task_id == broken.id)).scalar_one() == 0

    monkeypatch.undo()
    assert escalate(session, due + timedelta(minutes=1)) == []  # not due again yet
    assert escalate(session, due + deadlines.ESCALATION_RETRY) == AGENCY
    session.refresh(broken)
    assert broken.escalation_level == LEVEL_AGENCY
