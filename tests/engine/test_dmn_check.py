"""Tests for the deploy-time DMN overlap check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

import pytest
from lxml import etree

from engine.dmn_check import check_decision_tables
from engine.errors import Problem

DMN13 = "https://www.omg.org/spec/DMN/20191111/MODEL/"
DMN11 = "http://www.omg.org/spec/DMN/20151101/dmn.xsd"

Row = tuple[Sequence[str], Sequence[str]]


def dmn_xml(
    rows: Sequence[Row],
    *,
    inputs: Sequence[str] = ("riesgo",),
    outputs: int = 1,
    hit_policy: str | None = None,
    namespace: str = DMN13,
) -> str:
    """Build a one-decision DMN document; rules get ids rule_a, rule_b, ... in order."""
    policy = f' hitPolicy="{hit_policy}"' if hit_policy else ""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<definitions xmlns="{namespace}" id="defs" name="test" namespace="http://coordina.test">',
        '  <decision id="risk_level" name="Nivel de riesgo">',
        f'    <decisionTable id="table"{policy}>',
    ]
    for i, expression in enumerate(inputs):
        lines += [
            f'      <input id="input_{i}" label="{expression}">',
            f'        <inputExpression id="input_expr_{i}" typeRef="string"><text>{expression}</text>'
            "</inputExpression>",
            "      </input>",
        ]
    lines += [f'      <output id="output_{i}" name="out_{i}" typeRef="string" />' for i in range(outputs)]
    for r, (entries, results) in enumerate(rows):
        rule_id = f"rule_{chr(ord('a') + r)}"
        lines.append(f'      <rule id="{rule_id}">')
        lines += [
            f'        <inputEntry id="{rule_id}_in_{i}"><text>{escape(text)}</text></inputEntry>'
            for i, text in enumerate(entries)
        ]
        lines += [
            f'        <outputEntry id="{rule_id}_out_{i}"><text>{escape(text)}</text></outputEntry>'
            for i, text in enumerate(results)
        ]
        lines.append("      </rule>")
    lines += ["    </decisionTable>", "  </decision>", "</definitions>"]
    return "\n".join(lines)


def check(rows: Sequence[Row], **kwargs: Any) -> list[Problem]:
    """Run the check on a table built by dmn_xml."""
    xml = dmn_xml(rows, **kwargs)
    return check_decision_tables(etree.ElementTree(etree.fromstring(xml.encode())), filename="t.dmn")


def single(*entries: str) -> list[Row]:
    """Build one-column rows with distinct outputs."""
    return [([entry], [f'"{i}"']) for i, entry in enumerate(entries)]


def test_non_overlapping_numeric_ranges_pass() -> None:
    assert check(single("< 5", ">= 5")) == []


def test_overlapping_numeric_ranges_fail_naming_both_rules() -> None:
    problems = check(single("< 6", ">= 5"))
    assert len(problems) == 1
    problem = problems[0]
    assert problem.element_id == "rule_a / rule_b"
    assert problem.file == "t.dmn"
    assert problem.message == (
        'rules rule_a (row 1) and rule_b (row 2) of decision "risk_level" can both match '
        "(hit policy UNIQUE); make their conditions exclusive or use hit policy FIRST"
    )
    assert problem.line is not None


def test_touching_bounds_respect_open_and_closed_ends() -> None:
    assert check(single("<= 5", "> 5")) == []
    assert len(check(single("<= 5", ">= 5"))) == 1
    assert check(single("4 < ? < 6", ">= 6", "<= 4")) == []
    assert len(check(single("4 < ? <= 6", ">= 6"))) == 1


def test_literal_string_rows_pass() -> None:
    assert check(single('"bajo"', '"alto"', "'medio'")) == []


def test_same_literal_twice_fails() -> None:
    assert len(check(single('"alto"', "'alto'"))) == 1


def test_python_equality_makes_true_and_one_overlap() -> None:
    assert len(check(single("True", "1"))) == 1
    assert len(check(single("1", "< 2"))) == 1


def test_string_point_and_numeric_interval_are_disjoint() -> None:
    assert check(single('"alto"', "< 5")) == []


def test_dash_against_literals_on_all_columns_fails() -> None:
    rows: list[Row] = [(["-", "-"], ['"x"']), (['"alto"', "5"], ['"y"'])]
    problems = check(rows, inputs=("riesgo", "edad"))
    assert [p.element_id for p in problems] == ["rule_a / rule_b"]


def test_empty_entry_means_any_value() -> None:
    rows: list[Row] = [([""], ['"x"']), (['"alto"'], ['"y"'])]
    assert len(check(rows)) == 1


def test_disjoint_on_second_column_only_passes() -> None:
    rows: list[Row] = [(["-", "< 5"], ['"x"']), (['"alto"', ">= 5"], ['"y"'])]
    assert check(rows, inputs=("riesgo", "edad")) == []


def test_each_overlapping_pair_reported_once() -> None:
    problems = check(single("-", "-", "-"))
    assert [p.element_id for p in problems] == ["rule_a / rule_b", "rule_a / rule_c", "rule_b / rule_c"]


@pytest.mark.parametrize("policy", ["FIRST", "PRIORITY", "RULE ORDER", "OUTPUT ORDER", "COLLECT"])
def test_policies_without_uniqueness_pass_with_overlaps(policy: str) -> None:
    assert check(single("< 6", ">= 5", "-"), hit_policy=policy) == []


def test_unique_is_the_default_and_explicit_unique_checks_too() -> None:
    assert len(check(single("-", "-"))) == 1
    assert len(check(single("-", "-"), hit_policy="UNIQUE")) == 1


def test_any_with_same_outputs_passes() -> None:
    rows: list[Row] = [(["< 6"], ['"alto"']), ([">= 5"], ["'alto'"])]
    assert check(rows, hit_policy="ANY") == []


def test_any_with_different_outputs_fails() -> None:
    rows: list[Row] = [(["< 6"], ['"alto"']), ([">= 5"], ['"bajo"'])]
    problems = check(rows, hit_policy="ANY")
    assert len(problems) == 1
    assert "hit policy ANY" in problems[0].message
    assert problems[0].element_id == "rule_a / rule_b"


def test_unknown_hit_policy_reported() -> None:
    problems = check(single('"a"', '"b"'), hit_policy="UNIQE")
    assert len(problems) == 1
    assert "unknown hit policy" in problems[0].message


def test_unknown_expression_cannot_be_proved_exclusive() -> None:
    problems = check(single("len(?) > 3", '"alto"'))
    assert len(problems) == 1
    assert "cannot prove exclusivity" in problems[0].message
    assert "`len(?) > 3`" in problems[0].message
    assert problems[0].element_id == "rule_a / rule_b"


def test_unknown_expression_still_disjoint_through_another_column() -> None:
    rows: list[Row] = [(["len(?) > 3", "< 5"], ['"x"']), (['"alto"', ">= 5"], ['"y"'])]
    assert check(rows, inputs=("riesgo", "edad")) == []


def test_membership_list_against_other_literal() -> None:
    assert check(single('? in ["a", "b"]', '"c"')) == []
    assert len(check(single('? in ["a", "b"]', '"b"'))) == 1
    assert check(single('? not in ["a", "b"]', '"b"', "'a'")) == []


def test_not_equal_is_complement_of_a_point() -> None:
    assert check(single('!= "bajo"', '"bajo"')) == []
    assert len(check(single('!= "bajo"', '"alto"'))) == 1


def test_boolean_combinations_with_question_mark() -> None:
    assert check(single("? >= 5 and ? < 10", "? < 5 or ? >= 10")) == []
    assert check(single("not (? < 5)", "< 5")) == []
    assert len(check(single("? >= 5 and ? < 10", "? < 6"))) == 1
    # `not` of something not understood must not be taken as proof of anything.
    assert len(check(single("not (len(?) > 3)", "len(?) > 3"))) == 1


def test_comma_list_is_flagged_but_treated_as_a_set() -> None:
    problems = check(single('"a", "b"', '"c"'))
    assert len(problems) == 1
    assert "comma lists are not supported by the engine; use ? in [...]" in problems[0].message
    assert problems[0].element_id == "rule_a_in_0"
    assert len(check(single('"a", "b"', '"b"'))) == 2


def test_keyword_operator_glued_to_input_expression_is_flagged() -> None:
    problems = check(single('in ("a", "b")', '"c"'))
    assert len(problems) == 1
    assert '`riesgoin ("a", "b")`' in problems[0].message
    assert "? in" in problems[0].message


def test_syntax_error_reports_line() -> None:
    rows = single('"alto"', "< < 5")
    xml = dmn_xml(rows)
    expected_line = next(n for n, line in enumerate(xml.splitlines(), start=1) if "&lt; &lt; 5" in line)
    problems = check(rows)
    assert len(problems) == 1
    assert problems[0].line == expected_line
    assert problems[0].element_id == "rule_b_in_0"
    assert "not a valid Python expression" in problems[0].message


def test_blank_entry_is_not_treated_as_any() -> None:
    problems = check(single(" - ", '"alto"'))
    assert len(problems) == 1
    assert 'exactly "-"' in problems[0].message


def test_rule_with_wrong_number_of_entries() -> None:
    rows: list[Row] = [(["-"], ['"x"']), (['"alto"', "5"], ['"y"'])]
    problems = check(rows, inputs=("riesgo", "edad"))
    assert len(problems) == 1
    assert "has 1 input entries but the table has 2 inputs" in problems[0].message
    assert problems[0].element_id == "rule_a"


def test_dmn_11_namespace_is_checked_too() -> None:
    assert len(check(single("< 6", ">= 5"), namespace=DMN11)) == 1
    assert check(single("< 5", ">= 5"), namespace=DMN11) == []
