"""Trying drafts: the real engine on a synthetic case with a simulated clock, and nothing left behind."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import definitions
from engine.actor import Actor
from engine.clock import FakeClock
from engine.db import Base
from engine.definitions import latest_runnable
from engine.deploy import deploy
from engine.errors import DefinitionError
from engine.execution import start_case
from engine.models import Definition, ProcessInstance
from engine.persistence import load_run
from engine.trial import Scenario, Step, parse_scenario, run_trial
from tests.support.engine_files import source
from tests.support.world import World

DESIGNER = Actor(user_id=None, name="ana", roles=frozenset({"designer"}))


def row_counts(session: Session) -> dict[str, int]:
    return {t.name: session.execute(select(func.count()).select_from(t)).scalar_one()
            for t in Base.metadata.sorted_tables}


@pytest.mark.usefixtures("deployed")
def test_a_try_reports_path_tasks_agencies_deadlines_and_chain_and_keeps_nothing(
    session: Session, world: World, clock: FakeClock
) -> None:
    before = row_counts(session)
    scenario = Scenario("cycle", world.territory.id, data={"level": "medio"},
                        steps=(Step("reassess", {"score": 12}, after=timedelta(days=2)),))
    report = run_trial(session, [source("period.dmn", {'"P30D"': '"P21D"'})], scenario, actor=DESIGNER,
                       now=clock.now())
    first, second = report.tasks[0], report.tasks[1]
    assert (first.element_id, first.status, first.agency_kind) == ("reassess", "completed", "state_police")
    assert first.agency == world.agencies["state_police"].name
    assert first.due_at == clock.now() + timedelta(days=21)  # the draft's period, not the deployed one
    assert second.status == "open"  # the chained cycle, started by the outcome, with the new level's period
    assert second.due_at == clock.now() + timedelta(days=2) + timedelta(days=7)
    assert [(i.process_key, i.status) for i in report.instances] == [("cycle", "completed"), ("cycle", "running")]
    assert report.instances[0].path[:3] == ["start", "period", "reassess"]
    assert report.problems == []
    session.commit()  # even a caller that commits keeps nothing of the try
    assert row_counts(session) == before
    here = str(session.get_bind().engine.url)
    cached = {definition_id for url, definition_id in [*definitions._RUNNABLE_CACHE, *definitions._FORM_CACHE]
              if url == here}
    trial_ids = cached - set(session.execute(select(Definition.id)).scalars())
    assert trial_ids == set()  # no cached spec of the try survives for an id the database will reuse


@pytest.mark.usefixtures("deployed")
def test_after_a_try_a_real_deploy_runs_its_own_spec_not_the_simulated_one(
    session: Session, world: World, clock: FakeClock
) -> None:
    run_trial(session, [source("period.dmn", {'"P30D"': '"P99D"'})],
              Scenario("cycle", world.territory.id, data={"level": "medio"}), actor=DESIGNER, now=clock.now())
    deploy(session, [source("period.dmn", {'"P30D"': '"P21D"'})], actor="ana", now=clock.now())
    session.commit()
    _, instance = start_case(session, territory_id=world.territory.id, process_key="cycle", data={"level": "medio"},
                             now=clock.now(), actor=world.actor("state_police"))
    session.commit()
    assert instance.definition_id == latest_runnable(session, "cycle").definition_id
    [ready] = load_run(session, session.get_one(ProcessInstance, instance.id))[0].ready_tasks()
    assert ready.data["reassessment_period"] == "P21D"


@pytest.mark.usefixtures("deployed")
def test_a_try_stops_at_a_step_that_is_not_open_or_whose_data_fails_the_form(
    session: Session, world: World, clock: FakeClock
) -> None:
    bad = run_trial(session, [], Scenario("cycle", world.territory.id, data={"level": "medio"},
                                          steps=(Step("reassess", {"score": 99}),)), actor=DESIGNER, now=clock.now())
    assert bad.problems == ["complete reassess: the data does not pass the form"]
    assert "score" in bad.field_errors
    missing = run_trial(session, [], Scenario("cycle", world.territory.id, data={"level": "medio"},
                                              steps=(Step("nothing", {}),)), actor=DESIGNER, now=clock.now())
    assert missing.problems == ["step nothing: not open now (open: reassess)"]


@pytest.mark.usefixtures("deployed")
def test_a_try_of_invalid_drafts_runs_nothing(session: Session, world: World, clock: FakeClock) -> None:
    before = row_counts(session)
    with pytest.raises(DefinitionError):
        run_trial(session, [source("period.dmn", {'<text>"bajo"</text>': '<text>"medio"</text>'})],
                  Scenario("cycle", world.territory.id), actor=DESIGNER, now=clock.now())
    assert row_counts(session) == before


def test_a_scenario_names_what_is_wrong_in_it() -> None:
    with pytest.raises(ValueError, match="step 1 needs 'task'"):
        parse_scenario({"steps": [{"data": {}}]}, process_key="cycle", territory_id=1)
    with pytest.raises(ValueError, match="not an ISO-8601 duration"):
        parse_scenario({"steps": [{"task": "x", "after": "two days"}]}, process_key="cycle", territory_id=1)
    scenario = parse_scenario({"case": {"risk_level": "medio"}, "steps": [{"task": "x", "after": "P1D"}],
                               "advance": "PT4H"}, process_key="cycle", territory_id=1)
    assert scenario.steps == (Step("x", {}, timedelta(days=1)),)
    assert scenario.advance == timedelta(hours=4)
