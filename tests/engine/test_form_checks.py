"""Cross-field form checks of the real forms, as the engine applies them to every completion (web and API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.errors import TaskDataError
from engine.forms import FormCheck, FormDefinition, load_catalog, run_checks, validated_data
from engine.levels import SHIPPED

ROOT = Path(__file__).resolve().parents[2]
RAISED = {"final_level": "alto", "especial_relevancia": False, "minors_at_risk": False}
COMPUTED_MEDIO = {"computed_level": "medio"}
LEVELS = SHIPPED.helpers()  # level_rank(...), as the engine passes the deployed scale to the checks


@pytest.fixture(scope="module")
def risk_review() -> FormDefinition:
    catalog, problems = load_catalog(ROOT / "forms")
    assert problems == []
    return catalog["risk_review"]


@pytest.mark.parametrize("blank", [" ", "   ", "\t", " \n\t "])
def test_a_raise_reason_of_only_spaces_is_refused_on_its_field(risk_review: FormDefinition, blank: str) -> None:
    assert run_checks(risk_review, {**RAISED, "raise_reason": blank}, COMPUTED_MEDIO, LEVELS) == {
        "raise_reason": ["Indique el motivo para elevar el nivel."]}


def test_the_engine_refuses_a_blank_raise_reason_whichever_way_the_answer_came(risk_review: FormDefinition) -> None:
    # The API posts JSON as is (the web form drops blank answers itself): the engine must refuse it.
    with pytest.raises(TaskDataError) as refused:
        validated_data(risk_review, "risk_review", {**RAISED, "raise_reason": "  \n "}, COMPUTED_MEDIO, "the review",
                       helpers=LEVELS)
    assert refused.value.errors == {"raise_reason": ["Indique el motivo para elevar el nivel."]}


@pytest.mark.parametrize(
    ("answers", "context"),
    [({**RAISED, "raise_reason": "  Arma en el domicilio "}, COMPUTED_MEDIO),
     ({**RAISED, "raise_reason": "   "}, {"computed_level": "alto"})],
    ids=["raised-with-a-reason", "not-raised-blank-reason-is-harmless"],
)
def test_a_real_reason_or_no_raise_passes(
    risk_review: FormDefinition, answers: dict[str, Any], context: dict[str, Any]
) -> None:
    # What the process receives: the answers, plus the declared default of the optional flag left out.
    assert validated_data(risk_review, "risk_review", answers, context, "the review", helpers=LEVELS) == {
        **answers, "minors_vulnerable": False}


def test_any_check_sees_text_of_only_spaces_as_empty() -> None:
    form = FormDefinition("note", "Nota", {"type": "object", "properties": {"note": {"type": "string"}}}, {},
                          checks=(FormCheck("note", "note != ''", "Escriba la nota."),))
    assert run_checks(form, {"note": " \t"}, {}) == {"note": ["Escriba la nota."]}
    assert run_checks(form, {"note": " sí "}, {}) == {}
