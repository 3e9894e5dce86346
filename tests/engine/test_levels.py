"""The risk scale comes from the deployed protocol: levels files, DMN outputs, the review, worklist ranks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.clock import FakeClock
from engine.definitions import definition_kind, latest_forms, read_directory
from engine.deploy import deploy
from engine.errors import DefinitionError, TaskDataError
from engine.execution import complete_task, start_case
from engine.levels import SHIPPED, current_levels, parse_levels
from engine.models import Case, Definition, OpenTask
from tests.engine.levels.files import (
    ROOT,
    SHIPPED_RULES,
    SPLIT_RULES,
    SPLIT_SCALE,
    level_table,
    review_files,
    scale_file,
    shipped_scale,
)
from tests.support.world import World

REVIEW = {"especial_relevancia": False, "minors_at_risk": False}


def problems_of(levels: Any) -> list[str]:
    """Parse a levels file made of `levels` (any JSON) and return its problems as text."""
    scale, problems = parse_levels("risk.levels.json", json.dumps(levels).encode("utf-8"))
    assert (scale is None) == bool(problems)
    return [str(problem) for problem in problems]


def open_reviewed_case(session: Session, world: World, clock: FakeClock, score: int) -> Case:
    """Start the review process for a new case with a risk score; return the case (review open)."""
    case, _ = start_case(session, territory_id=world.territory.id, process_key="level_review",
                         data={"risk_score": score}, now=clock.now(), actor=world.actor("health_centre"))
    session.commit()
    return case


def task_at(session: Session, case: Case, element_id: str) -> OpenTask:
    return session.execute(select(OpenTask).where(OpenTask.case_id == case.id, OpenTask.element_id == element_id)
                           ).scalar_one()


def review(session: Session, world: World, clock: FakeClock, case: Case, final_level: str, **extra: Any) -> None:
    task = task_at(session, case, "review")
    complete_task(session, task.id, {"final_level": final_level, **REVIEW, **extra}, expected_version=task.version,
                  now=clock.now(), actor=world.actor("state_police"))
    session.commit()


# --- The levels file ------------------------------------------------------------------------------
def test_the_shipped_levels_file_is_a_levels_definition_lowest_first() -> None:
    scale, problems = parse_levels("risk.levels.json", shipped_scale().content)
    assert problems == []
    assert scale == SHIPPED
    assert definition_kind("risk.levels.json") == "levels"
    assert definition_kind("risk_review.json") == "form"
    assert SHIPPED.codes == ("no_apreciado", "bajo", "medio", "alto", "extremo")
    ranks = (SHIPPED.rank("no_apreciado"), SHIPPED.rank("extremo"), SHIPPED.rank(None), SHIPPED.rank("x"))
    assert ranks == (1, 5, 0, 0)
    assert (SHIPPED.label("no_apreciado"), SHIPPED.label("no_apreciado", "en")) == ("No apreciado", "Not appreciated")
    assert SHIPPED.high == ("alto", "extremo")


def test_a_levels_file_must_hold_a_non_empty_list() -> None:
    assert problems_of({"levels": []}) == [
        "risk.levels.json: 'levels' must be a non-empty list of levels, lowest first"]
    assert problems_of(["bajo"]) == ["risk.levels.json: a levels file is a JSON object with a 'levels' list"]


def test_each_level_problem_names_the_file_the_level_and_the_field() -> None:
    found = problems_of({"levels": [
        {"code": "bajo", "label": "Bajo", "label_en": "Low", "colour": "verde"},
        {"code": "No Apreciado", "label": "No apreciado", "label_en": "Not appreciated", "colour": "#4b5563"},
        {"code": "bajo", "label": " ", "label_en": "Low", "colour": "#166534"},
        {"code": "alto", "label": "Alto", "colour": "#b91c1c", "high": "sí"},
    ]})
    assert found == [
        "risk.levels.json [bajo]: level 1: 'colour' must be a colour like #166534, got 'verde'",
        "risk.levels.json [levels[2]]: level 2: 'code' must be an identifier (lowercase letters, digits and _, at "
        "most 32), got 'No Apreciado'",
        "risk.levels.json [bajo]: level 3: 'code' 'bajo' is listed twice",
        "risk.levels.json [bajo]: level 3: 'label' must be a non-empty text",
        "risk.levels.json [alto]: level 4: 'label_en' must be a non-empty text",
        "risk.levels.json [alto]: level 4: 'high' must be true or false",
    ]


def test_without_a_deployed_levels_file_the_shipped_scale_applies(session: Session, world: World) -> None:
    assert current_levels(session) == SHIPPED


def test_an_invalid_levels_file_is_refused_on_deploy_and_nothing_is_stored(
    session: Session, world: World, clock: FakeClock
) -> None:
    broken = scale_file([{"code": "bajo", "label": "Bajo", "label_en": "Low", "colour": "#16653"}])
    with pytest.raises(DefinitionError) as refused:
        deploy(session, [broken], actor="tests", now=clock.now())
    session.rollback()
    assert [str(p) for p in refused.value.problems] == [
        "risk.levels.json [bajo]: level 1: 'colour' must be a colour like #166534, got '#16653'"]
    assert session.execute(select(Definition)).first() is None


def test_a_deployed_levels_file_is_versioned_and_becomes_the_scale(
    session: Session, world: World, clock: FakeClock
) -> None:
    deploy(session, [shipped_scale()], actor="tests", now=clock.now())
    deploy(session, [scale_file(SPLIT_SCALE)], actor="tests", now=clock.now())
    session.commit()
    versions = session.execute(select(Definition.kind, Definition.key, Definition.version)
                               .order_by(Definition.id)).all()
    assert [tuple(row) for row in versions] == [("levels", "risk", 1), ("levels", "risk", 2)]
    scale = current_levels(session)
    assert scale.codes == tuple(level["code"] for level in SPLIT_SCALE)
    assert scale.label("bajo_con_medidas", "en") == "Low, with measures"


# --- Decision tables must output levels of the scale ----------------------------------------------
def test_a_decision_that_outputs_no_apreciado_is_accepted_with_the_shipped_scale(
    session: Session, world: World, clock: FakeClock
) -> None:
    result = deploy(session, [shipped_scale(), *review_files(SHIPPED_RULES)], actor="tests", now=clock.now())
    assert {(d.kind, d.key) for d in result.created} >= {("levels", "risk"), ("decision", "test_level")}


def test_a_decision_that_outputs_a_level_outside_the_scale_is_refused_naming_file_rule_and_value(
    session: Session, world: World, clock: FakeClock
) -> None:
    rules = [*SHIPPED_RULES[:-1], ("level_high", ">= 18", "muy_alto")]
    with pytest.raises(DefinitionError) as refused:
        deploy(session, [shipped_scale(), *review_files(rules)], actor="tests", now=clock.now())
    session.rollback()
    [problem] = refused.value.problems
    assert (problem.file, problem.element_id) == ("test_level.dmn", "level_high")
    assert problem.message == ("decision 'test_level', rule 'level_high': output 'computed_level' is 'muy_alto', "
                               "which is not a level of the risk scale (risk.levels.json: no_apreciado, bajo, medio, "
                               "alto, extremo)")


def test_a_scale_that_drops_a_level_a_deployed_decision_outputs_is_refused(
    session: Session, world: World, clock: FakeClock
) -> None:
    deploy(session, [shipped_scale(), *review_files(SHIPPED_RULES)], actor="tests", now=clock.now())
    session.commit()
    with pytest.raises(DefinitionError) as refused:
        deploy(session, [scale_file(SPLIT_SCALE)], actor="tests", now=clock.now())
    session.rollback()
    assert [(p.file, p.element_id) for p in refused.value.problems] == [("test_level.dmn", "level_low")]
    assert "'bajo', which is not a level of the risk scale" in refused.value.problems[0].message


# --- The review: choices and the "never lower" check from the deployed scale ----------------------
def test_the_review_form_offers_the_levels_of_the_deployed_scale(
    session: Session, world: World, clock: FakeClock
) -> None:
    deploy(session, [shipped_scale(), *review_files()], actor="tests", now=clock.now())
    session.commit()
    choices = latest_forms(session)["risk_review"].schema["properties"]["final_level"]["oneOf"]
    assert [(c["const"], c["title"]) for c in choices] == [
        ("no_apreciado", "No apreciado"), ("bajo", "Bajo"), ("medio", "Medio"), ("alto", "Alto"),
        ("extremo", "Extremo")]


def test_a_no_apreciado_level_is_computed_reviewed_and_recorded(
    session: Session, world: World, clock: FakeClock
) -> None:
    deploy(session, review_files(), actor="tests", now=clock.now())  # no levels file: the shipped scale
    session.commit()
    case = open_reviewed_case(session, world, clock, score=0)
    review(session, world, clock, case, "no_apreciado")
    session.refresh(case)
    assert (case.risk_level, case.facts["computed_level"]) == ("no_apreciado", "no_apreciado")
    assert task_at(session, case, "watch").risk_rank == 1


def test_the_review_may_raise_no_apreciado_with_a_reason(session: Session, world: World, clock: FakeClock) -> None:
    deploy(session, [shipped_scale(), *review_files()], actor="tests", now=clock.now())
    session.commit()
    case = open_reviewed_case(session, world, clock, score=0)
    with pytest.raises(TaskDataError) as refused:
        review(session, world, clock, case, "bajo")
    session.rollback()
    assert refused.value.errors == {"raise_reason": ["Indique el motivo para elevar el nivel."]}
    review(session, world, clock, case, "bajo", raise_reason="Relato de amenazas")
    session.refresh(case)
    assert case.risk_level == "bajo"


def split_deployed(session: Session, clock: FakeClock) -> None:
    """Deploy the review with the shipped scale, then the designer's split of bajo with its table."""
    deploy(session, [shipped_scale(), *review_files()], actor="tests", now=clock.now())
    session.commit()
    deploy(session, [scale_file(SPLIT_SCALE), level_table(SPLIT_RULES)], actor="designer", now=clock.now())
    session.commit()


def test_after_the_split_the_review_refuses_lowering_across_the_new_order(
    session: Session, world: World, clock: FakeClock
) -> None:
    split_deployed(session, clock)
    case = open_reviewed_case(session, world, clock, score=6)
    with pytest.raises(TaskDataError) as refused:
        review(session, world, clock, case, "bajo_sin_medidas")
    session.rollback()
    assert refused.value.errors == {"final_level": ["El nivel no puede ser inferior al calculado."]}
    with pytest.raises(TaskDataError) as retired:
        review(session, world, clock, case, "bajo")  # the level the split replaced is no longer offered
    session.rollback()
    assert list(retired.value.errors) == ["final_level"]
    review(session, world, clock, case, "bajo_con_medidas")
    session.refresh(case)
    assert case.risk_level == "bajo_con_medidas"


def test_after_the_split_worklists_order_by_the_new_ranks(session: Session, world: World, clock: FakeClock) -> None:
    split_deployed(session, clock)
    cases = {}
    for level, score in (("bajo_sin_medidas", 3), ("medio", 10), ("bajo_con_medidas", 6)):
        cases[level] = open_reviewed_case(session, world, clock, score=score)
        review(session, world, clock, cases[level], level)
    ordered = session.execute(select(Case.risk_level).join(OpenTask, OpenTask.case_id == Case.id)
                              .where(OpenTask.element_id == "watch")
                              .order_by(OpenTask.risk_rank.desc())).scalars().all()
    assert ordered == ["medio", "bajo_con_medidas", "bajo_sin_medidas"]


def test_deploying_a_new_scale_reranks_the_open_tasks(session: Session, world: World, clock: FakeClock) -> None:
    deploy(session, [shipped_scale(), *review_files()], actor="tests", now=clock.now())
    session.commit()
    medium = open_reviewed_case(session, world, clock, score=10)
    review(session, world, clock, medium, "medio")
    assert task_at(session, medium, "watch").risk_rank == 3
    deploy(session, [scale_file(SPLIT_SCALE), level_table(SPLIT_RULES)], actor="designer", now=clock.now())
    session.commit()
    assert task_at(session, medium, "watch").risk_rank == 4  # medio is one higher once bajo is split in two


def test_the_shipped_protocol_deploys_its_scale(session: Session, world: World, clock: FakeClock) -> None:
    deploy(session, read_directory(ROOT / "processes", ROOT / "forms"), actor="tests", now=clock.now())
    session.commit()
    scale = current_levels(session)
    assert (scale.levels, scale.definition_id is not None) == (SHIPPED.levels, True)
