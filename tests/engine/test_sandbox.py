"""Tests for the RestrictedPython sandbox used for scripts, conditions and DMN cells."""

from __future__ import annotations

from typing import Any

import pytest

from engine.durations import HELPERS
from engine.errors import SandboxError
from engine.sandbox import check_expression, check_script, evaluate, execute

# ---------------------------------------------------------------- evaluate


def test_arithmetic_and_comparisons_on_context_values() -> None:
    context = {"a": 7, "b": 3, "name": "Ana"}
    assert evaluate("a * 2 - b", context) == 11
    assert evaluate("a > b and name == 'Ana'", context) is True
    assert evaluate("a // b", context) == 2


def test_dmn_style_expression() -> None:
    assert evaluate("risk_score >= 10 and minors", {"risk_score": 12, "minors": True}) is True
    assert evaluate("risk_score >= 10 and minors", {"risk_score": 9, "minors": True}) is False


def test_generator_sees_context_values() -> None:
    assert evaluate("any(s > limit for s in scores)", {"scores": [1, 5], "limit": 3}) is True


def test_external_values_take_precedence_over_context() -> None:
    assert evaluate("x", {"x": 1}, {"x": 2}) == 2


def test_context_values_shadow_helpers() -> None:
    assert evaluate("days + 1", {"days": 4}) == 5


def test_surrounding_whitespace_is_ignored() -> None:
    assert evaluate("\n   x + 1  \n", {"x": 1}) == 2


def test_undefined_name_raises_name_error() -> None:
    with pytest.raises(NameError):
        evaluate("missing + 1", {})


def test_ordinary_runtime_errors_propagate() -> None:
    with pytest.raises(ZeroDivisionError):
        evaluate("1 / zero", {"zero": 0})


def test_underscore_context_keys_cannot_replace_guards() -> None:
    assert evaluate("x.real", {"x": 3, "_getattr_": getattr, "__builtins__": __builtins__}) == 3


# ---------------------------------------------------------------- escapes


@pytest.mark.parametrize("run", [evaluate, execute])
def test_subclasses_walk_is_refused(run: Any) -> None:
    with pytest.raises(SandboxError, match='attribute names starting with "_" are not allowed'):
        run("().__class__.__base__.__subclasses__()", {})


def test_dunder_import_is_refused() -> None:
    with pytest.raises(SandboxError, match='the name "__import__" starts with "_"'):
        evaluate("__import__('os')", {})


@pytest.mark.parametrize("script", ["import os", "from os import path"])
def test_import_statement_is_refused(script: str) -> None:
    with pytest.raises(SandboxError, match="forbidden: import is not allowed"):
        execute(script, {})


def test_open_is_refused_and_reads_nothing() -> None:
    context: dict[str, Any] = {}
    with pytest.raises(SandboxError, match=r"forbidden: open\(\) is not available") as caught:
        execute("content = open('/etc/passwd').read()", context)
    assert "root" not in str(caught.value)
    assert context == {}


def test_getattr_with_dunder_name_is_refused() -> None:
    with pytest.raises(SandboxError, match=r"getattr\(\) is not available"):
        evaluate("getattr(x, '__class__')", {"x": 1})


@pytest.mark.parametrize(
    "expression",
    ["eval('1')", "exec('x = 1')", "compile('1', '', 'eval')", "globals()", "vars()", "type(1)"],
)
def test_dangerous_builtins_are_unavailable(expression: str) -> None:
    with pytest.raises(SandboxError, match="forbidden: "):
        evaluate(expression, {})


def test_str_format_attribute_escape_is_refused() -> None:
    with pytest.raises(SandboxError, match=r"str\.format\(\) is not allowed"):
        evaluate("'{0.__class__}'.format(1)", {})


def test_str_format_through_the_class_is_refused() -> None:
    with pytest.raises(SandboxError, match=r"str\.format\(\) is not allowed"):
        evaluate("str.format('{0.__class__}', 1)", {})


def test_lambda_code_object_is_refused() -> None:
    with pytest.raises(SandboxError, match='attribute names starting with "_"'):
        evaluate("(lambda: 1).__code__", {})


def test_generator_frame_is_refused() -> None:
    with pytest.raises(SandboxError, match="attribute 'gi_frame' is not allowed"):
        evaluate("(x for x in []).gi_frame", {})


def test_class_definition_is_refused() -> None:
    with pytest.raises(SandboxError, match="class definitions are not allowed"):
        execute("class A:\n    pass", {})


def test_attribute_assignment_on_non_container_is_refused() -> None:
    with pytest.raises(SandboxError, match="int values cannot be modified"):
        execute("x.real = 3", {"x": 1})


# ---------------------------------------------------------------- check_*


def test_check_expression_accepts_a_fine_expression() -> None:
    assert check_expression("risk_score >= 10 and minors") is None


def test_check_expression_reports_syntax_errors_with_line() -> None:
    assert check_expression("risk_score >=") == "syntax error: invalid syntax (line 1)"


def test_check_expression_reports_forbidden_constructs() -> None:
    assert check_expression("x.__class__") == (
        'forbidden: attribute names starting with "_" are not allowed (line 1)'
    )


def test_check_script_reports_forbidden_line() -> None:
    assert check_script("x = 1\nimport os") == "forbidden: import is not allowed (line 2)"


def test_check_script_refuses_print() -> None:
    message = check_script("print(x)")
    assert message is not None
    assert message.startswith("forbidden: print() is not available")


def test_check_script_accepts_an_indented_script() -> None:
    assert check_script("\n    total = a + b\n    ok = total > 3\n") is None


# ---------------------------------------------------------------- execute


def test_script_assignments_appear_in_context() -> None:
    context: dict[str, Any] = {"a": 2, "b": 3}
    execute("total = a + b\nlabel = f'total {total}'", context)
    assert context == {"a": 2, "b": 3, "total": 5, "label": "total 5"}


def test_helpers_and_guards_do_not_leak_into_context() -> None:
    context: dict[str, Any] = {"n": 3}
    execute("deadline_hours = hours(n) / hours(1)", context)
    assert context == {"n": 3, "deadline_hours": 3.0}
    assert not set(context) & set(HELPERS)


def test_external_values_do_not_leak_into_context() -> None:
    context: dict[str, Any] = {}
    execute("y = 1", context, {"service": len})
    assert context == {"y": 1}


def test_list_augmented_assignment_works() -> None:
    context: dict[str, Any] = {"agencies": ["policia"]}
    execute("agencies += ['servicios_sociales']\ncount = 1\ncount += 2", context)
    assert context == {"agencies": ["policia", "servicios_sociales"], "count": 3}


def test_tuple_unpacking_in_loop_works() -> None:
    context: dict[str, Any] = {"pairs": [["a", 1], ["b", 2]]}
    execute("total = 0\nfor _, n in pairs:\n    total += n", context)
    assert context["total"] == 3
    assert "_" not in context


def test_deleted_variable_leaves_context() -> None:
    context: dict[str, Any] = {"old": 1, "keep": 2}
    execute("del old", context)
    assert context == {"keep": 2}


def test_script_leaving_a_function_raises_naming_it() -> None:
    context: dict[str, Any] = {"x": 1}
    with pytest.raises(SandboxError, match='script left a function in variable "double"'):
        execute("def double(v):\n    return v * 2\ny = double(x)", context)
    assert context == {"x": 1}


def test_script_may_use_a_function_it_deletes() -> None:
    context: dict[str, Any] = {"x": 1}
    execute("def double(v):\n    return v * 2\ny = double(x)\ndel double", context)
    assert context == {"x": 1, "y": 2}


def test_script_leaving_a_timedelta_raises_naming_it() -> None:
    with pytest.raises(SandboxError, match=r'timedelta .* in variable "wait"'):
        execute("wait = days(3)", {})


def test_sets_become_sorted_lists() -> None:
    context: dict[str, Any] = {}
    execute("kinds = {'b', 'c', 'a'}\nnested = {'k': {3, 1}}", context)
    assert context == {"kinds": ["a", "b", "c"], "nested": {"k": [1, 3]}}


def test_failed_script_leaves_context_unchanged() -> None:
    context: dict[str, Any] = {"items": [1]}
    with pytest.raises(ZeroDivisionError):
        execute("items.append(2)\nnew = 1\n1 / 0", context)
    assert context == {"items": [1]}
