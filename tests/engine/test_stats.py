"""Step timings for the board: the database queues each completed dated step; the worker rolls it up once."""

from __future__ import annotations

import statistics
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import FakeClock
from engine.definitions import SourceFile
from engine.deploy import deploy
from engine.execution import complete_task, start_case
from engine.models import OpenTask, StepTimingDay, StepTimingPending, TaskEvent
from engine.stats import Histogram, delay_bucket, histograms, pending_completions, roll_up_step_timings
from tests.support.engine_files import with_forms
from tests.support.world import World

PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="timed_defs"
    targetNamespace="http://coordina.example/bpmn">
  <bpmn:process id="timed" name="timed" isExecutable="true">
    <bpmn:laneSet id="timed_lanes">
      <bpmn:lane id="timed_lane" name="social_services">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>dated</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>undated</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="dated" name="Paso con plazo">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="form" value="note" />
        <spiffworkflow:property name="due" value="'PT24H'" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:userTask id="undated" name="Paso sin plazo">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="form" value="note" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="dated" />
    <bpmn:sequenceFlow id="f2" sourceRef="dated" targetRef="undated" />
    <bpmn:sequenceFlow id="f3" sourceRef="undated" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""
NOTE = {"note": "hecho"}


@pytest.fixture
def walk(session: Session, world: World, clock: FakeClock) -> list[int]:
    """Deploy the process and walk three cases: the dated step done 22 h early, 4 h early, 6 h late."""
    deploy(session, with_forms([SourceFile("timed.bpmn", PROCESS.encode())]), actor="tests", now=clock.now())
    actor = world.actor("social_services")
    cases = []
    for hours in (2, 20, 30):
        case, _ = start_case(session, territory_id=world.territory.id, process_key="timed", data={},
                             now=clock.now(), actor=actor)
        cases.append(case.id)
        for step_hours in (hours, 1):  # the dated step, then the undated one an hour later
            task = session.execute(select(OpenTask).where(OpenTask.case_id == case.id)).scalar_one()
            complete_task(session, task.id, NOTE, expected_version=task.version,
                          now=clock.now() + timedelta(hours=step_hours), actor=actor)
    session.commit()
    return cases


def count(session: Session, model: type[StepTimingPending] | type[StepTimingDay]) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_the_database_queues_each_completed_step_that_had_a_deadline(session: Session, walk: list[int]) -> None:
    queued = session.execute(
        select(TaskEvent.element_id).join(StepTimingPending, StepTimingPending.event_id == TaskEvent.id)
    ).scalars().all()
    assert queued == ["dated", "dated", "dated"]  # the undated step has nothing to be measured against


def test_the_roll_up_moves_the_queue_into_daily_counts_exactly_once(
    session: Session, walk: list[int], world: World
) -> None:
    report = roll_up_step_timings(session)
    session.commit()
    assert (report.events, count(session, StepTimingPending)) == (3, 0)
    rows = session.execute(
        select(StepTimingDay.territory_id, StepTimingDay.day, StepTimingDay.element_id, StepTimingDay.delay_s,
               StepTimingDay.completed, StepTimingDay.on_time).order_by(StepTimingDay.delay_s)
    ).all()
    here, monday = world.territory.id, date(2026, 3, 2)
    # Completed at 11:00, 05:00 (the next day, Madrid) and 15:00 UTC against deadlines 24 h after each start.
    assert rows == [(here, monday, "dated", -22 * 3600, 1, 1), (here, date(2026, 3, 3), "dated", -4 * 3600, 1, 1),
                    (here, date(2026, 3, 3), "dated", 6 * 3600, 1, 0)]
    assert roll_up_step_timings(session).events == 0  # nothing left: nothing counted twice


def test_the_figures_are_the_same_from_the_queue_and_from_the_roll_up(session: Session, walk: list[int]) -> None:
    from_queue = histograms([], [c for _, c in pending_completions(session)])["dated"]
    roll_up_step_timings(session)
    session.commit()
    rows = session.execute(select(StepTimingDay.element_id, StepTimingDay.name, StepTimingDay.delay_s,
                                  StepTimingDay.completed, StepTimingDay.on_time)).all()
    from_rows = histograms([tuple(row) for row in rows])["dated"]  # type: ignore[misc]
    for histogram in (from_queue, from_rows):
        assert (histogram.name, histogram.completed, histogram.on_time) == ("Paso con plazo", 3, 2)
        assert histogram.percentiles((0.5, 0.9)) == [-4 * 3600, 4 * 3600]  # -4 h + 0.8 x 10 h


@pytest.mark.parametrize("db_engine", ["postgresql"], indirect=True)  # row locks: SQLite locks whole transactions
def test_two_workers_rolling_up_at_once_count_each_completion_once(
    session_factory: sessionmaker[Session], walk: list[int]
) -> None:
    with session_factory() as first, session_factory() as second:
        assert roll_up_step_timings(first).events == 3  # holds the queue rows until it commits
        assert roll_up_step_timings(second).events == 0  # skips them instead of waiting or counting them
        first.commit()
        second.commit()
    with session_factory() as check:
        assert check.execute(select(func.sum(StepTimingDay.completed))).scalar_one() == 3
        assert count(check, StepTimingPending) == 0


@pytest.mark.parametrize(("hours", "rounded"), [
    (0.04, 0.0), (-3.27, -3.3), (9.96, 10.0), (22.4, 22.0), (-99.6, -100.0), (253.4, 250.0), (1234.0, 1200.0),
])
def test_delays_are_rounded_more_coarsely_the_longer_they_are(hours: float, rounded: float) -> None:
    assert delay_bucket(hours * 3600) == pytest.approx(rounded * 3600)


def test_histogram_percentiles_interpolate_like_percentile_cont() -> None:
    values = [-30, -5, -5, 0, 2, 7, 7, 7, 40, 41, 90]
    histogram = Histogram()
    for value in values:
        histogram.add(value, 1, int(value <= 0))
    cuts = statistics.quantiles(values, n=10, method="inclusive")  # the same interpolation as percentile_cont
    assert histogram.percentiles((0.5, 0.9)) == [statistics.median(values), pytest.approx(cuts[8])]
    assert (histogram.completed, histogram.on_time) == (11, 4)
    assert Histogram().percentiles((0.5,)) == [None]
