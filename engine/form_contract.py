"""A form's JSON Schema for one task, honest about its checks: what validates is what the server accepts.

A form's cross-field checks (`checks`) are expressions the schema cannot state in general, but the
usual ones are about a choice field and the task's data: "the level may be raised, never lowered"
(options below the computed level are refused) and "a reason is required when it is raised". For one
task, with its data known, both can be written in JSON Schema: the options a check on the field
refuses are left out, and a text field that a chosen option makes necessary is required (not blank)
under an `if`; a yes/no field that a check accepts only one way is that value (`const`). A rule
across more fields than that (e.g. "to inactivate, confirm the three conditions") is left to the
form's checks, which the server still applies: the schema states what it can, never more than the
server accepts on the fields it narrows.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from engine import sandbox
from engine.forms import FormCheck, FormDefinition

NOT_BLANK = r"\S"  # the checks read text of only spaces as no answer
_FILLER = "x"


def task_schema(form: FormDefinition, context: Mapping[str, Any], helpers: Mapping[str, Any]) -> FormDefinition:
    """Return the form with its choices and conditional answers narrowed to what its checks accept here."""
    properties = form.schema.get("properties", {})
    schema = copy.deepcopy(form.schema)
    changed = False
    for name, prop in properties.items():
        options = _options(prop)
        if not options or not any(name in _names(check) for check in form.checks):
            continue
        accepted, needs = _accepted(form, name, options, context, helpers)
        # None accepted (a task no answer can complete) is a schema nothing validates, not an empty oneOf.
        schema["properties"][name]["oneOf"] = [o for o in prop["oneOf"] if o["const"] in accepted] or [False]
        for field, values in needs.items():
            schema.setdefault("allOf", []).append({
                "if": {"properties": {name: {"enum": values}}, "required": [name]},
                "then": {"required": [field], "properties": {field: {"pattern": NOT_BLANK}}},
            })
        changed = True
    for check in form.checks:
        prop = properties.get(check.field)
        if _names(check) & set(properties) != {check.field} or not isinstance(prop, Mapping) or prop.get(
                "type") != "boolean":
            continue
        accepted = [value for value in (True, False) if _passes(check, form, {check.field: value}, context, helpers)]
        if len(accepted) == 1:
            schema["properties"][check.field]["const"] = accepted[0]
            if check.field not in schema.setdefault("required", []):  # left out, it reads as None: refused
                schema["required"].append(check.field)
            changed = True
    return replace(form, schema=schema) if changed else form


def _options(prop: Any) -> list[Any]:
    """Return the values a choice field offers (`oneOf` of `const`s), none for another field."""
    if not isinstance(prop, Mapping) or not isinstance(prop.get("oneOf"), list):
        return []
    values = [option.get("const") for option in prop["oneOf"] if isinstance(option, Mapping)]
    return values if values and None not in values else []


def _accepted(
    form: FormDefinition, name: str, options: list[Any], context: Mapping[str, Any], helpers: Mapping[str, Any],
) -> tuple[list[Any], dict[str, list[Any]]]:
    """Return the options of a choice field the checks accept, and the text fields each option requires."""
    fields = set(form.schema.get("properties", {}))
    properties = form.schema["properties"]
    accepted: list[Any] = []
    needs: dict[str, list[Any]] = {}
    for value in options:
        required: list[str] = []
        ok = True
        for check in form.checks:
            others = (_names(check) & fields) - {name}
            if check.field == name and not others:
                ok = _passes(check, form, {name: value}, context, helpers)
            elif (name in _names(check) and others == {check.field} and _is_text(properties[check.field])
                  and not _passes(check, form, {name: value, check.field: ""}, context, helpers)):
                ok = _passes(check, form, {name: value, check.field: _FILLER}, context, helpers)
                required.append(check.field)
            if not ok:
                break
        if ok:
            accepted.append(value)
            for field in required:
                needs.setdefault(field, []).append(value)
    return accepted, needs


def _passes(
    check: FormCheck, form: FormDefinition, answers: Mapping[str, Any], context: Mapping[str, Any],
    helpers: Mapping[str, Any],
) -> bool:
    """Evaluate one check as `run_checks` does, with only `answers` given."""
    namespace = {**context, **{k: None for k in form.schema.get("properties", {})}, **answers}
    try:
        return bool(sandbox.evaluate(check.expression, namespace, helpers))
    except Exception:  # a check that cannot be evaluated fails closed, as when the form is submitted
        return False


def _names(check: FormCheck) -> set[str]:
    """Return the names an expression reads."""
    try:
        tree = ast.parse(check.expression, mode="eval")
    except SyntaxError:
        return set()
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def _is_text(prop: Any) -> bool:
    """Tell whether a field is free text (no options of its own)."""
    return isinstance(prop, Mapping) and prop.get("type") == "string" and "oneOf" not in prop and "enum" not in prop
