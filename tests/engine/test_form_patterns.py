"""Form `pattern`s: refused at deploy time when a backtracking engine could hang on them, matched in linear time."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy.orm import Session

from engine.definitions import SourceFile
from engine.deploy import validate
from engine.forms import form_from_raw, parse_form, validate_data
from tests.support.engine_files import FORMS_DIR


def note_form(**note: Any) -> dict[str, Any]:
    """The test form `note` with its field `note` given extra keywords."""
    raw = json.loads((FORMS_DIR / "note.json").read_text(encoding="utf-8"))
    raw["schema"]["properties"]["note"].update(note)
    return dict(raw)


@pytest.mark.parametrize(("pattern", "why"), [
    ("^(a+)+$", "a repetition inside a repetition"),
    ("^([a-z]*)*@x$", "a repetition inside a repetition"),
    ("^(\\w+\\s?)*$", "a repetition inside a repetition"),
    ("(x+x+)+y", "a repetition inside a repetition"),
    ("^(a)\\1$", "a backreference"),
    ("^(?=a)a$", "a lookahead or lookbehind"),
    ("^(?<!b)a$", "a lookahead or lookbehind"),
    ("a" * 1001, "at most 1000 characters"),
])
def test_an_unsafe_pattern_is_refused_at_deploy_naming_the_form_and_the_field(pattern: str, why: str) -> None:
    content = json.dumps(note_form(pattern=pattern)).encode("utf-8")
    form, problems = parse_form("note.json", content)
    assert form is None
    [problem] = problems
    assert (problem.file, problem.element_id) == ("note.json", "note")
    assert f"field 'note': pattern {pattern!r} refused: " in problem.message
    assert why in problem.message


@pytest.mark.usefixtures("world")
def test_deploy_validation_reports_the_unsafe_pattern(session: Session) -> None:
    content = json.dumps(note_form(pattern="^(a+)+$")).encode("utf-8")
    problems = validate(session, [SourceFile("note.json", content)]).problems
    assert [(p.file, p.element_id) for p in problems] == [("note.json", "note")]


def test_a_nested_pattern_property_is_checked_too() -> None:
    raw = note_form()
    raw["schema"]["properties"]["extra"] = {"type": "object", "patternProperties": {"^(x+)+$": {"type": "string"}}}
    _, problems = parse_form("note.json", json.dumps(raw).encode("utf-8"))
    assert ["field 'extra'" in p.message for p in problems] == [True]


@pytest.mark.parametrize("pattern", ["^\\d{5}$", "^[A-Z]{3}-\\d+$", "^(sí|no)$", "^[^@\\s]+@[^@\\s]+$", "^(ab)?c*$"])
def test_an_ordinary_pattern_is_accepted_and_enforced(pattern: str) -> None:
    form, problems = parse_form("note.json", json.dumps(note_form(pattern=pattern)).encode("utf-8"))
    assert problems == []
    assert form is not None
    assert "note" in validate_data(form, {"note": "¿?"})


def test_patterns_are_matched_in_linear_time() -> None:
    # (a|a)* passes the deploy check (no repetition inside a repetition), yet a backtracking
    # engine takes 2^n steps on it; RE2 answers at once. A form stored before the check is
    # matched the same way.
    form = form_from_raw("note", note_form(pattern="^(a|a)*$"))
    started = time.perf_counter()
    errors = validate_data(form, {"note": "a" * 40 + "!"})
    assert time.perf_counter() - started < 1.0
    assert errors == {"note": [f"{'a' * 40 + '!'!r} does not match '^(a|a)*$'"]}
    assert validate_data(form, {"note": "aaaa"}) == {}
