"""A form's schema for one task states what its checks accept there: narrowed choices, required reasons."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from engine.form_contract import task_schema
from engine.forms import FormCheck, FormDefinition
from engine.levels import SHIPPED

LEVELS = SHIPPED.codes


def review(*checks: FormCheck) -> FormDefinition:
    schema = {
        "type": "object",
        "properties": {
            "final_level": {"type": "string", "oneOf": [{"const": code, "title": code} for code in LEVELS]},
            "raise_reason": {"type": "string"},
            "confirmed": {"type": "boolean"},
        },
        "required": ["final_level"],
        "additionalProperties": False,
    }
    return FormDefinition("review", "Revisión", schema, {}, checks=checks)


NEVER_LOWER = FormCheck("final_level", "level_rank(final_level) >= level_rank(computed_level)", "no")
REASON = FormCheck("raise_reason",
                   "level_rank(final_level) <= level_rank(computed_level) or len(raise_reason or '') > 0", "why")


def valid(form: FormDefinition, answers: dict[str, Any]) -> bool:
    return Draft202012Validator(form.schema).is_valid(answers)


def test_choices_a_check_refuses_for_this_task_are_left_out() -> None:
    form = task_schema(review(NEVER_LOWER), {"computed_level": "medio"}, SHIPPED.helpers())
    assert [o["const"] for o in form.schema["properties"]["final_level"]["oneOf"]] == ["medio", "alto", "extremo"]
    assert not valid(form, {"final_level": "bajo"})


def test_a_reason_a_raise_needs_is_required_by_the_schema() -> None:
    form = task_schema(review(NEVER_LOWER, REASON), {"computed_level": "medio"}, SHIPPED.helpers())
    assert valid(form, {"final_level": "medio"})
    assert not valid(form, {"final_level": "alto"})
    assert not valid(form, {"final_level": "alto", "raise_reason": "   "})
    assert valid(form, {"final_level": "alto", "raise_reason": "Nuevos hechos"})


def test_a_yes_no_field_a_check_accepts_one_way_is_that_value() -> None:
    form = task_schema(review(FormCheck("confirmed", "confirmed", "confirm")), {}, SHIPPED.helpers())
    assert form.schema["properties"]["confirmed"]["const"] is True
    assert "confirmed" in form.schema["required"]
    assert not valid(form, {"final_level": "bajo"})


def test_a_form_without_checks_is_left_as_it_is() -> None:
    form = review()
    assert task_schema(form, {"computed_level": "alto"}, SHIPPED.helpers()) is form


def test_a_task_no_level_can_complete_gets_a_schema_nothing_validates() -> None:
    impossible = FormCheck("final_level", "level_rank(final_level) > 5", "no")
    form = task_schema(review(impossible), {}, SHIPPED.helpers())
    Draft202012Validator.check_schema(form.schema)
    assert not any(valid(form, {"final_level": code}) for code in LEVELS)
