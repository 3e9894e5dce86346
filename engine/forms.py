"""Form definitions for user tasks: JSON Schema (draft 2020-12) plus UI hints, one file per form.

The files themselves are data, in `forms/` (like the processes in `processes/`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from engine import sandbox
from engine.errors import ExecutionError, Problem, TaskDataError
from engine.form_patterns import FormValidator, check_patterns
from engine.resource_kinds import RESOURCE_KINDS

# `resources` maps a field to the kinds of the territory's resources offered next to it (a referral).
UI_KEYS = frozenset({"sections", "widgets", "help", "order", "resources"})
TOP_KEYS = frozenset({"title", "description", "schema", "ui", "checks"})
# Choice lists a field may take from the deployed protocol (`"x-choices": "risk_levels"`) instead of
# listing its options: the engine fills them in (`with_choices`) before validating or showing the form.
CHOICE_LISTS = frozenset({"risk_levels"})
WIDGETS = frozenset({"text", "textarea", "checkboxes", "radio", "select", "date", "datetime", "number", "checkbox"})


@dataclass(frozen=True)
class FormCheck:
    """A rule across fields and task data, e.g. the level may be raised but never lowered."""

    field: str
    expression: str
    message: str


@dataclass(frozen=True)
class FormDefinition:
    """A form: its name (file stem), title, JSON Schema, UI hints and cross-field checks."""

    name: str
    title: str
    schema: dict[str, Any]
    ui: dict[str, Any]
    description: str = ""
    checks: tuple[FormCheck, ...] = ()


def load_catalog(directory: Path) -> tuple[dict[str, FormDefinition], list[Problem]]:
    """Load and check every `*.json` form of `directory`; return the valid ones and the problems."""
    forms: dict[str, FormDefinition] = {}
    problems: list[Problem] = []
    for path in sorted(directory.glob("*.json")):
        form, found = parse_form(path.name, path.read_bytes())
        problems.extend(found)
        if form is not None:
            forms[form.name] = form
    return forms, problems


def parse_form(file_name: str, content: bytes) -> tuple[FormDefinition | None, list[Problem]]:
    """Read and check one form file (`<name>.json`); return the form (None if invalid) and its problems."""
    name = file_name.rsplit("/", 1)[-1].removesuffix(".json")
    try:
        raw = json.loads(content.decode("utf-8"))
    except UnicodeDecodeError:
        return None, [Problem(file=file_name, message="not UTF-8 text: save the form as UTF-8")]
    except json.JSONDecodeError as exc:
        return None, [Problem(file=file_name, line=exc.lineno, message=f"not valid JSON: {exc.msg} "
                                                                        f"(line {exc.lineno}, column {exc.colno})")]
    found = check_form(name, raw, file_name=file_name)
    if found:
        return None, found
    return form_from_raw(name, raw), []


def form_from_raw(name: str, raw: Mapping[str, Any]) -> FormDefinition:
    """Build a form from its checked JSON object."""
    return FormDefinition(
        name, raw["title"], raw["schema"], raw.get("ui", {}), raw.get("description", ""),
        tuple(FormCheck(c["field"], c["expression"], c["message"]) for c in raw.get("checks", [])),
    )


def check_form(name: str, raw: Any, *, file_name: str) -> list[Problem]:
    """Check one form definition: a title, a valid draft 2020-12 schema, UI hints naming real fields."""
    if not isinstance(raw, dict):
        return [Problem(file=file_name, message="a form definition is a JSON object")]
    problems = []
    unknown_keys = set(raw) - TOP_KEYS
    if unknown_keys:
        allowed = sorted(TOP_KEYS)
        problems.append(Problem(file=file_name, message=f"unknown keys {sorted(unknown_keys)}; allowed: {allowed}"))
    if not isinstance(raw.get("title"), str) or not raw["title"].strip():
        problems.append(Problem(file=file_name, message="missing 'title'"))
    schema = raw.get("schema")
    if not isinstance(schema, dict):
        return [*problems, Problem(file=file_name, message="missing 'schema' object")]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        path = "/".join(str(p) for p in exc.path) or "(root)"
        problems.append(Problem(file=file_name, message=f"invalid JSON Schema at {path}: {exc.message}"))
        return problems
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        problems.append(Problem(file=file_name, message="the schema must be an object with 'properties'"))
        return problems
    fields = set(schema["properties"])
    ui = raw.get("ui", {})
    if not isinstance(ui, dict) or set(ui) - UI_KEYS:
        problems.append(Problem(file=file_name, message=f"'ui' may only hold {sorted(UI_KEYS)}"))
        return problems
    for section in ui.get("sections", []):
        unknown = set(section.get("fields", [])) - fields
        if unknown:
            problems.append(Problem(
                file=file_name, message=f"section {section.get('title')!r} names unknown fields {sorted(unknown)}"
            ))
    for key in ("widgets", "help"):
        unknown = set(ui.get(key, {})) - fields
        if unknown:
            problems.append(Problem(file=file_name, message=f"ui.{key} names unknown fields {sorted(unknown)}"))
    problems.extend(_check_choices(schema["properties"], file_name))
    problems.extend(check_patterns(schema, name, file_name))
    problems.extend(_check_resources(ui.get("resources", {}), fields, file_name))
    bad_widgets = {f: w for f, w in ui.get("widgets", {}).items() if w not in WIDGETS}
    if bad_widgets:
        problems.append(Problem(file=file_name, message=f"unknown widgets {bad_widgets}; known: {sorted(WIDGETS)}"))
    problems.extend(_check_checks(raw.get("checks", []), fields, file_name))
    return problems


def _check_choices(properties: Mapping[str, Any], file_name: str) -> list[Problem]:
    """Check `x-choices`: a known list, on a text field that lists no options of its own."""
    problems = []
    for name, prop in properties.items():
        if not isinstance(prop, dict) or "x-choices" not in prop:
            continue
        if prop["x-choices"] not in CHOICE_LISTS:
            problems.append(Problem(file=file_name, message=f"field {name!r}: unknown x-choices {prop['x-choices']!r};"
                                                            f" known: {sorted(CHOICE_LISTS)}"))
        if prop.get("type") != "string" or "oneOf" in prop or "enum" in prop:
            problems.append(Problem(file=file_name, message=f"field {name!r}: x-choices needs type 'string' and "
                                                            "no oneOf or enum of its own"))
    return problems


def with_choices(form: FormDefinition, lists: Mapping[str, Sequence[tuple[str, str]]]) -> FormDefinition:
    """Return the form with each `x-choices` field offering the (value, label) options of its list."""
    properties = form.schema.get("properties", {})
    marked = {name: prop["x-choices"] for name, prop in properties.items()
              if isinstance(prop, dict) and prop.get("x-choices") in lists}
    if not marked:
        return form
    schema = copy.deepcopy(form.schema)
    for name, list_name in marked.items():
        schema["properties"][name]["oneOf"] = [{"const": value, "title": label} for value, label in lists[list_name]]
    return replace(form, schema=schema)


def _check_resources(hint: Any, fields: set[str], file_name: str) -> list[Problem]:
    """Check `ui.resources`: each named field exists and lists known resource kinds."""
    if not isinstance(hint, dict):
        return [Problem(file=file_name, message="ui.resources must map fields to lists of resource kinds")]
    problems = []
    for field, kinds in hint.items():
        if field not in fields:
            problems.append(Problem(file=file_name, message=f"ui.resources names unknown field {field!r}"))
        if not isinstance(kinds, list) or not kinds or any(kind not in RESOURCE_KINDS for kind in kinds):
            problems.append(Problem(file=file_name, message=f"ui.resources of {field!r} must list resource kinds "
                                                            f"among {list(RESOURCE_KINDS)}, got {kinds!r}"))
    return problems


def _check_checks(checks: Any, fields: set[str], file_name: str) -> list[Problem]:
    if not isinstance(checks, list):
        return [Problem(file=file_name, message="'checks' must be a list")]
    problems = []
    for number, check in enumerate(checks, start=1):
        if not isinstance(check, dict) or set(check) != {"field", "expression", "message"}:
            problems.append(Problem(file=file_name, message=f"check {number} needs exactly field, expression, message"))
            continue
        if check["field"] not in fields:
            problems.append(Problem(file=file_name, message=f"check {number} names unknown field {check['field']!r}"))
        refusal = sandbox.check_expression(check["expression"])
        if refusal:
            problems.append(Problem(file=file_name, message=f"check {number} expression refused: {refusal}"))
    return problems


def run_checks(
    form: FormDefinition, data: Mapping[str, Any], context: Mapping[str, Any],
    helpers: Mapping[str, Any] | None = None,
) -> dict[str, list[str]]:
    """Evaluate the form's cross-field checks on submitted data over the task's data (blank text counts as empty).

    `helpers` are functions the checks may call, e.g. `level_rank(code)` from the deployed risk scale.
    """
    errors: dict[str, list[str]] = {}
    # Text of only spaces is no answer: checks see it as "", so "a reason is required" cannot be met with blanks
    # (the web form drops blank answers itself; the API posts them as they come).
    answers = {k: "" if isinstance(v, str) and not v.strip() else v for k, v in data.items()}
    namespace = {**context, **{k: None for k in form.schema.get("properties", {})}, **answers}
    for check in form.checks:
        try:
            ok = bool(sandbox.evaluate(check.expression, namespace, helpers))
        except Exception:  # a check that cannot be evaluated (missing data) fails closed
            ok = False
        if not ok:
            errors.setdefault(check.field, []).append(check.message)
    return errors


def validate_data(form: FormDefinition, data: Mapping[str, Any]) -> dict[str, list[str]]:
    """Validate submitted data against the form's schema; map each field path to its messages."""
    validator = FormValidator(form.schema, format_checker=FormatChecker())
    errors: dict[str, list[str]] = {}
    for error in validator.iter_errors(dict(data)):
        if error.validator == "required" and isinstance(error.validator_value, list):
            missing = [f for f in error.validator_value if f not in (error.instance or {})]
            prefix = "/".join(str(p) for p in error.absolute_path)
            for name in missing:  # jsonschema reports each missing field once, each time naming them all
                messages = errors.setdefault(f"{prefix}/{name}" if prefix else name, [])
                if "required" not in messages:
                    messages.append("required")
            continue
        path = "/".join(str(p) for p in error.absolute_path) or "(form)"
        errors.setdefault(path, []).append(error.message)
    return errors


def validated_data(
    form: FormDefinition | None, form_name: str | None, data: Mapping[str, Any], context: Mapping[str, Any],
    where: str, *, helpers: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Accept only fields the form declares, valid for its schema and its cross-field checks."""
    if form is None:
        raise ExecutionError(f"the form {form_name!r} of {where} is not available")
    fields = form.schema.get("properties", {})
    unknown = sorted(set(data) - set(fields))
    errors: dict[str, list[str]] = {name: ["unknown field"] for name in unknown}
    errors.update(validate_data(form, data))
    # An optional field left out takes the default its form declares: the process reads every field.
    completed = {**{name: prop["default"] for name, prop in fields.items()
                    if isinstance(prop, Mapping) and "default" in prop}, **data}
    if not errors:
        errors.update(run_checks(form, completed, context, helpers))
    if errors:
        raise TaskDataError(errors)
    return completed
