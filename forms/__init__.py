"""Form definitions for user tasks: JSON Schema (draft 2020-12) plus UI hints, one file per form."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from engine.errors import Problem

FORMS_DIR = Path(__file__).parent
UI_KEYS = frozenset({"sections", "widgets", "help", "order"})


@dataclass(frozen=True)
class FormDefinition:
    """A form: its name (file stem), title, JSON Schema and UI hints."""

    name: str
    title: str
    schema: dict[str, Any]
    ui: dict[str, Any]


def load_catalog(directory: Path = FORMS_DIR) -> tuple[dict[str, FormDefinition], list[Problem]]:
    """Load and check every `*.json` form of `directory`; return the valid ones and the problems."""
    forms: dict[str, FormDefinition] = {}
    problems: list[Problem] = []
    for path in sorted(directory.glob("*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(Problem(file=path.name, message=f"not valid JSON: {exc}"))
            continue
        found = check_form(path.stem, raw, file_name=path.name)
        if found:
            problems.extend(found)
            continue
        forms[path.stem] = FormDefinition(path.stem, raw["title"], raw["schema"], raw.get("ui", {}))
    return forms, problems


def check_form(name: str, raw: Any, *, file_name: str) -> list[Problem]:
    """Check one form definition: a title, a valid draft 2020-12 schema, UI hints naming real fields."""
    if not isinstance(raw, dict):
        return [Problem(file=file_name, message="a form definition is a JSON object")]
    problems = []
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
    return problems


def validate_data(form: FormDefinition, data: Mapping[str, Any]) -> dict[str, list[str]]:
    """Validate submitted data against the form's schema; map each field path to its messages."""
    validator = Draft202012Validator(form.schema, format_checker=FormatChecker())
    errors: dict[str, list[str]] = {}
    for error in validator.iter_errors(dict(data)):
        if error.validator == "required" and isinstance(error.validator_value, list):
            missing = [f for f in error.validator_value if f not in (error.instance or {})]
            prefix = "/".join(str(p) for p in error.absolute_path)
            for name in missing:
                errors.setdefault(f"{prefix}/{name}" if prefix else name, []).append("required")
            continue
        path = "/".join(str(p) for p in error.absolute_path) or "(form)"
        errors.setdefault(path, []).append(error.message)
    return errors
