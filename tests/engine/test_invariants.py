"""Invariants as data: parsing and validation, each kind finding its violation (and only it), the repair."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.cases import open_case
from engine.clock import FakeClock
from engine.definitions import SourceFile, definition_kind, read_directory
from engine.deploy import deploy, validate
from engine.errors import DefinitionError
from engine.execution import complete_task, start_case
from engine.invariants import current_invariants, parse_invariants
from engine.models import Case, Definition, OpenTask, ProcessInstance, TaskEvent
from engine.repairs import repair
from engine.violations import Violation, find_violations
from tests.support.engine_files import INVARIANTS, invariants_file, protocol_files
from tests.support.world import World

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def deployed_invariants(session: Session, world: World, clock: FakeClock) -> None:
    """Deploy the test files with the broken follow-up and the test invariants; commit."""
    deploy(session, protocol_files(), actor="tests", now=clock.now())
    session.commit()


def police(world: World) -> Actor:
    return world.actor("state_police")


def new_case(session: Session, world: World, clock: FakeClock, *, level: str = "alto") -> Case:
    """A case in the broken follow-up, assessed now at `level`; both steps open, due in 24 h."""
    case, _ = start_case(session, territory_id=world.territory.id, process_key="broken_followup", data={},
                         now=clock.now(), actor=police(world))
    case.risk_level = level
    case.facts = {**case.facts, "last_assessment_at": clock.now().isoformat()}
    session.commit()
    return case


def open_task(session: Session, case: Case, element_id: str) -> OpenTask:
    return session.execute(select(OpenTask).where(OpenTask.case_id == case.id,
                                                  OpenTask.element_id == element_id)).scalar_one()


def complete(session: Session, case: Case, element_id: str, actor: Actor, clock: FakeClock) -> None:
    task = open_task(session, case, element_id)
    complete_task(session, task.id, {"note": "hecho"}, expected_version=task.version, now=clock.now(), actor=actor)
    session.commit()


def violations(session: Session, clock: FakeClock, *ids: str) -> list[tuple[str, int, str]]:
    found = find_violations(session, clock.now(), [i for i in current_invariants(session) if not ids or i.id in ids])
    return [(v.invariant_id, v.case_id, v.kind) for v in found]


# --- Parsing and validation ---------------------------------------------------------------------
def test_the_shipped_invariants_file_parses_without_problems() -> None:
    found, problems = parse_invariants("protocol.invariants.json",
                                       (ROOT / "processes" / "protocol.invariants.json").read_bytes())
    assert problems == []
    assert [i.kind for i in found] == ["open_step", "one_per_track", "step_exists", "step_deadline"]


def test_the_shipped_invariants_validate_against_the_shipped_protocol(session: Session, world: World) -> None:
    checked = validate(session, read_directory(ROOT / "processes", ROOT / "forms"))
    assert [str(p) for p in checked.problems] == []
    assert [i.id for i in checked.invariants["protocol.invariants.json"][0]] == [
        "police_reassessment_pending", "one_instance_per_track", "safety_plan", "hearing_within_72h"]


def test_the_kind_comes_from_the_compound_suffix() -> None:
    assert definition_kind("protocol.invariants.json") == "invariants"
    assert definition_kind("note.json") == "form"
    assert SourceFile("protocol.invariants.json", b"").kind == "invariants"


@pytest.mark.parametrize(("item", "expected"), [
    ({"id": "x", "kind": "sometimes", "title": "X"}, "invariant x: field 'kind': unknown kind 'sometimes'"),
    ({"id": "x", "kind": "one_per_track", "title": "X", "colour": "red"},
     "invariant x: field 'colour': unknown field for kind one_per_track"),
    ({"id": "x", "kind": "step_exists", "title": "X", "steps": ["a"], "grace": "1 hour"},
     "invariant x: field 'grace': '1 hour' is not an ISO-8601 duration"),
    ({"id": "x", "kind": "open_step", "title": "X", "steps": ["a"],
      "due_by": [{"after_fact": "f", "period": "P1M"}]},
     "invariant x: field 'due_by[1].period': 'P1M' uses months or years"),
    ({"id": "x", "kind": "open_step", "title": "X", "steps": ["a"], "due_by": [{"after_fact": "f"}]},
     "invariant x: field 'due_by[1]': give exactly one of 'period' and 'period_from_decision'"),
    ({"id": "x", "kind": "step_deadline", "title": "X", "steps": []},
     "invariant x: field 'steps': required"),
    ({"id": "x", "kind": "step_exists", "title": "X", "steps": ["a"], "applies_to": {"status": ["asleep"]}},
     "invariant x: field 'applies_to.status': unknown case status 'asleep'"),
    ({"id": "x", "kind": "step_exists", "title": "X", "steps": ["a"], "repair": {"data": {}}},
     "invariant x: field 'repair.start_process': required"),
])
def test_a_malformed_invariant_is_refused_naming_file_id_and_field(item: dict[str, Any], expected: str) -> None:
    found, problems = parse_invariants("bad.invariants.json", json.dumps({"invariants": [item]}).encode())
    assert found == []
    assert any(p.file == "bad.invariants.json" and expected in p.message for p in problems), problems


def test_a_file_that_is_not_an_invariants_object_is_refused() -> None:
    _, problems = parse_invariants("bad.invariants.json", b'[{"id": "x"}]')
    assert [p.message for p in problems] == ['expected an object {"invariants": [...]}']


def test_validation_names_a_step_no_process_has(session: Session, world: World) -> None:
    broken = invariants_file(lambda raw: raw["invariants"][0]["steps"].append("police_reasessment"))
    problems = validate(session, protocol_files(broken)).problems
    assert [(p.file, p.element_id) for p in problems] == [(INVARIANTS, "police_pending")]
    assert "field 'steps': no deployed or deploying process has a user task 'police_reasessment'" in \
        problems[0].message


def test_validation_names_a_decision_or_output_that_does_not_exist(session: Session, world: World) -> None:
    def change(raw: dict[str, Any]) -> None:
        bounds = raw["invariants"][0]["due_by"]
        bounds.append({**bounds[0], "period_from_decision": "no_such_table"})
        bounds[0]["output"] = "no_such_output"

    messages = [p.message for p in validate(session, protocol_files(invariants_file(change))).problems]
    assert any("due_by[3].period_from_decision': no decision 'no_such_table'" in m for m in messages), messages
    assert any("due_by[1].period_from_decision': the decision has no output 'no_such_output'" in m
               for m in messages), messages


def test_deploy_refuses_a_broken_invariants_file_and_stores_a_good_one(
    session: Session, world: World, clock: FakeClock,
) -> None:
    broken = invariants_file(lambda raw: raw["invariants"][0].update(tolerance="soon"))
    with pytest.raises(DefinitionError, match="field 'tolerance'"):
        deploy(session, protocol_files(broken), actor="tests", now=clock.now())
    session.rollback()
    deploy(session, protocol_files(), actor="tests", now=clock.now())
    stored = session.execute(select(Definition).where(Definition.kind == "invariants")).scalar_one()
    assert (stored.key, stored.file_name, stored.version) == ("test", INVARIANTS, 1)
    assert [i.id for i in current_invariants(session)] == [
        "police_pending", "one_per_track", "social_followup", "social_within_48h"]


# --- open_step ----------------------------------------------------------------------------------
@pytest.mark.usefixtures("deployed_invariants")
def test_a_case_with_its_reassessment_open_and_on_time_breaks_nothing(
    session: Session, world: World, clock: FakeClock,
) -> None:
    new_case(session, world, clock)
    assert violations(session, clock) == []


@pytest.mark.usefixtures("deployed_invariants")
def test_a_case_waiting_on_the_join_has_its_reassessment_missing(
    session: Session, world: World, clock: FakeClock,
) -> None:
    case = new_case(session, world, clock, level="extremo")
    complete(session, case, "police_reassessment", police(world), clock)
    found = find_violations(session, clock.now(), current_invariants(session))
    assert [(v.invariant_id, v.case_id, v.kind, v.repairable) for v in found] == [
        ("police_pending", case.id, "missing", True)]
    assert found[0].message == (f"Caso {case.reference}: nivel extremo sin paso abierto de "
                                "«Revaloración policial pendiente y a tiempo»")


@pytest.mark.usefixtures("deployed_invariants")
def test_a_reassessment_due_after_the_levels_period_is_late(
    session: Session, world: World, clock: FakeClock,
) -> None:
    case = new_case(session, world, clock, level="alto")  # due in 24 h; alto: every 7 days
    case.facts = {"last_assessment_at": (clock.now() - timedelta(days=7)).isoformat()}
    session.commit()
    found = find_violations(session, clock.now(), current_invariants(session))
    assert [(v.invariant_id, v.kind, v.repairable) for v in found] == [("police_pending", "late", False)]
    assert found[0].details["late_s"] == 23 * 3600  # 24 h away, 1 h tolerated


@pytest.mark.usefixtures("deployed_invariants")
def test_an_incident_after_the_assessment_brings_the_bound_forward(
    session: Session, world: World, clock: FakeClock,
) -> None:
    case = new_case(session, world, clock, level="bajo")
    case.facts = {**case.facts, "last_incident_at": (clock.now() + timedelta(minutes=1)).isoformat()}
    session.commit()
    assert violations(session, clock) == [("police_pending", case.id, "late")]  # due in 24 h, not 4 h


@pytest.mark.usefixtures("deployed_invariants")
def test_an_incident_before_the_last_assessment_does_not_count(
    session: Session, world: World, clock: FakeClock,
) -> None:
    case = new_case(session, world, clock, level="bajo")
    case.facts = {**case.facts, "last_incident_at": (clock.now() - timedelta(hours=1)).isoformat()}
    session.commit()
    assert violations(session, clock) == []


@pytest.mark.usefixtures("deployed_invariants")
def test_a_case_not_yet_assessed_is_outside_the_reassessment_invariant(
    session: Session, world: World, clock: FakeClock,
) -> None:
    case = new_case(session, world, clock)
    case.risk_level = None
    session.commit()
    complete(session, case, "police_reassessment", police(world), clock)
    assert violations(session, clock, "police_pending") == []


# --- one_per_track ------------------------------------------------------------------------------
@pytest.mark.usefixtures("deployed_invariants")
def test_two_running_instances_of_a_track_are_a_duplicate(
    session: Session, world: World, clock: FakeClock,
) -> None:
    case = new_case(session, world, clock)
    first = session.execute(select(ProcessInstance).where(ProcessInstance.case_id == case.id)).scalar_one()
    # Straight into the database: the engine itself never starts a second one.
    session.add(ProcessInstance(case_id=case.id, definition_id=first.definition_id, process_key=first.process_key,
                                status="running", state="", serializer_version="1", started_at=clock.now()))
    session.commit()
    found = find_violations(session, clock.now(), current_invariants(session))
    assert [(v.invariant_id, v.kind, v.details["track"], v.details["running"]) for v in found] == [
        ("one_per_track", "duplicate", "police", 2)]


# --- step_exists --------------------------------------------------------------------------------
@pytest.mark.usefixtures("deployed_invariants")
def test_a_case_without_the_step_is_missing_it_once_the_grace_is_over(
    session: Session, world: World, clock: FakeClock,
) -> None:
    case = open_case(session, territory_id=world.territory.id, now=clock.now(), actor=police(world))
    session.commit()
    assert violations(session, clock, "social_followup") == []
    clock.advance(timedelta(hours=2))
    assert violations(session, clock, "social_followup") == [("social_followup", case.id, "missing")]


@pytest.mark.usefixtures("deployed_invariants")
def test_a_completed_step_counts_as_done(session: Session, world: World, clock: FakeClock) -> None:
    case = new_case(session, world, clock)
    complete(session, case, "social_services_followup", world.actor("social_services"), clock)
    clock.advance(timedelta(hours=2))
    assert session.execute(select(TaskEvent.id).where(TaskEvent.case_id == case.id,
                                                      TaskEvent.action == "completed")).first() is not None
    assert violations(session, clock, "social_followup") == []


# --- step_deadline ------------------------------------------------------------------------------
@pytest.mark.usefixtures("deployed_invariants")
def test_a_step_due_later_than_allowed_after_its_creation_is_late(
    session: Session, world: World, clock: FakeClock,
) -> None:
    case = new_case(session, world, clock)
    assert violations(session, clock, "social_within_48h") == []
    session.execute(update(OpenTask).where(OpenTask.case_id == case.id,
                                           OpenTask.element_id == "social_services_followup")
                    .values(due_at=clock.now() + timedelta(hours=72)))
    session.commit()
    found = find_violations(session, clock.now(), [i for i in current_invariants(session)
                                                   if i.id == "social_within_48h"])
    assert [(v.case_id, v.kind) for v in found] == [(case.id, "late")]
    assert found[0].message == (f"Caso {case.reference}: el paso social_services_followup vence 72 h después de "
                                "crearse (máximo 48 h)")


# --- Only the cases asked about -----------------------------------------------------------------
@pytest.mark.usefixtures("deployed_invariants")
def test_find_violations_looks_only_at_the_cases_given(session: Session, world: World, clock: FakeClock) -> None:
    broken = new_case(session, world, clock)
    complete(session, broken, "police_reassessment", police(world), clock)
    fine = new_case(session, world, clock)
    invariants = current_invariants(session)
    assert find_violations(session, clock.now(), invariants, case_ids=[fine.id]) == []
    assert [v.case_id for v in find_violations(session, clock.now(), invariants, case_ids=[broken.id])] == [
        broken.id]


# --- Repair -------------------------------------------------------------------------------------
def missing_reassessment(session: Session, world: World, clock: FakeClock) -> tuple[Case, Violation]:
    case = new_case(session, world, clock)
    complete(session, case, "police_reassessment", police(world), clock)
    (violation,) = find_violations(session, clock.now(), current_invariants(session))
    return case, violation


@pytest.mark.usefixtures("deployed_invariants")
def test_repair_starts_the_missing_reassessment_once(session: Session, world: World, clock: FakeClock) -> None:
    case, violation = missing_reassessment(session, world, clock)
    invariants = current_invariants(session)
    assert repair(session, violation, invariants, clock.now(), Actor.system("watchdog")) is True
    session.commit()
    started = session.execute(select(ProcessInstance).where(ProcessInstance.case_id == case.id)
                              .order_by(ProcessInstance.id.desc()).limit(1)).scalar_one()
    assert started.process_key == "broken_followup"
    assert open_task(session, case, "police_reassessment").instance_id == started.id
    assert repair(session, violation, invariants, clock.now(), Actor.system("watchdog")) is False  # already done
    assert violations(session, clock, "police_pending") == []


@pytest.mark.usefixtures("deployed_invariants")
def test_a_late_step_is_not_repaired_by_starting_another(session: Session, world: World, clock: FakeClock) -> None:
    case = new_case(session, world, clock)
    case.facts = {"last_assessment_at": (clock.now() - timedelta(days=7)).isoformat()}
    session.commit()
    (violation,) = find_violations(session, clock.now(), current_invariants(session))
    assert repair(session, violation, current_invariants(session), clock.now(), Actor.system("watchdog")) is False


@pytest.mark.usefixtures("world")
def test_an_if_idle_repair_waits_while_its_track_runs(session: Session, world: World, clock: FakeClock) -> None:
    def change(raw: dict[str, Any]) -> None:
        raw["invariants"][2]["repair"] = {"start_process": "broken_followup", "if_idle": True}

    deploy(session, protocol_files(invariants_file(change)), actor="tests", now=clock.now())
    session.commit()
    case = new_case(session, world, clock)
    complete(session, case, "social_services_followup", world.actor("social_services"), clock)
    session.execute(TaskEvent.__table__.delete().where(TaskEvent.case_id == case.id,
                                                       TaskEvent.action == "completed"))
    session.commit()
    clock.advance(timedelta(hours=2))
    invariants = current_invariants(session)
    (violation,) = find_violations(session, clock.now(), [i for i in invariants if i.id == "social_followup"])
    assert repair(session, violation, invariants, clock.now(), Actor.system("watchdog")) is False  # police runs
