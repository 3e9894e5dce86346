"""The API's OpenAPI 3 document, built with apispec from the app's real routes and marshmallow schemas.

Each view declares what it takes and answers with `@documented(...)`; whether it needs a token and
a casework role is read from `token_required`. A route under /api/v1 without a declaration makes
the document fail to build, so a new route cannot go undocumented.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from apispec import APISpec, BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema
from werkzeug.routing import Rule

from engine.forms import FormDefinition
from webapp.api.auth import BEARER_AUTH, CASEWORK_ONLY
from webapp.api.schemas import ErrorEnvelope
from webapp.errors import MESSAGES
from webapp.limits import MAX_ID

API_TITLE, API_VERSION, OPENAPI_VERSION = "Coordina API", "1.0.0", "3.1.0"
PREFIX = "/api/v1"
DOC_ATTRIBUTE = "api_doc"
SECURITY_SCHEME = "bearerAuth"
_SPEC_KEY = "coordina.api.openapi"
# The English reason of each error status, for the document's readers.
ERROR_DESCRIPTIONS = {
    400: "The body is not JSON.",
    401: "No token, or an invalid, expired or revoked one (see the WWW-Authenticate header).",
    403: "Not allowed (role, territory, or a task claimed by someone else).",
    404: "Unknown, or not visible to the user: existence is never revealed.",
    409: "Stale version, or the task was completed or claimed meanwhile.",
    422: "Invalid data: `error.fields` maps each field (`a/b` when nested) to its messages.",
    429: "Too many failed sign-ins: the account or address is locked for a while.",
}
SUCCESS_DESCRIPTIONS = {200: "OK", 201: "Created"}
RESPONSE_ONLY = frozenset({"ErrorEnvelope", "ErrorBody"})
NO_NUL = "^[^\\x00]*$"  # the API refuses text holding NUL (PostgreSQL cannot store it); RE2 and ECMA-262 read \x00
# The request field that carries a task's answers; its form depends on the task.
TASK_FORM_FIELD = ("CompleteRequest", "data")
TASK_FORM_NOTE = ("The answers of the task's form. Its JSON Schema for this very task is `form.schema` of "
                  "GET /api/v1/tasks/{task_id}: there the options and conditions that depend on the case "
                  "(e.g. a risk level never below the computed one) are stated exactly.")
CONVERTER_TYPES = {"int": "integer", "id": "integer", "float": "number"}
_FLASK_ARGUMENT = re.compile(r"<(?:([^:<>]+):)?([^<>]+)>")  # <converter:name> or <name>

F = TypeVar("F", bound=Callable[..., Any])
SchemaRef = type[Schema] | Mapping[str, Any]


@dataclass(frozen=True)
class ApiDoc:
    """What a view takes and answers: body and query schemas, success responses, its own error statuses."""

    responses: Mapping[int, SchemaRef]
    body: type[Schema] | None = None
    body_required: bool = True
    query: type[Schema] | None = None
    errors: Sequence[int] = ()
    tags: Sequence[str] = field(default_factory=tuple)


def documented(
    *, responses: Mapping[int, SchemaRef], body: type[Schema] | None = None, body_required: bool = True,
    query: type[Schema] | None = None, errors: Sequence[int] = (), tags: Sequence[str] = (),
) -> Callable[[F], F]:
    """Declare a view's request and response schemas for the OpenAPI document."""

    def decorate(view: F) -> F:
        setattr(view, DOC_ATTRIBUTE, ApiDoc(responses, body, body_required, query, errors, tuple(tags)))
        return view

    return decorate


class FlaskPlugin(BasePlugin):
    """Turn a Flask URL rule into an OpenAPI path and its typed path parameters.

    apispec 6 ships no Flask plugin (it moved to apispec-webframeworks, which reads YAML docstrings);
    our operations come from `@documented`, so this is all of it we need.
    """

    def path_helper(
        self, path: str | None = None, operations: dict[Any, Any] | None = None,
        parameters: list[dict[str, Any]] | None = None, *, rule: Rule | None = None, **kwargs: Any,
    ) -> str | None:
        """Return the rule's path in OpenAPI form and add a parameter for each of its arguments."""
        if rule is None:
            return path
        if parameters is not None:
            for converter, name in _FLASK_ARGUMENT.findall(rule.rule):
                kind = CONVERTER_TYPES.get(converter, "string")
                schema: dict[str, Any] = {"type": kind}
                if kind == "integer":  # every integer of a path is an id
                    schema.update(minimum=1, maximum=MAX_ID)
                parameters.append({"in": "path", "name": name, "required": True, "schema": schema})
        return _FLASK_ARGUMENT.sub(r"{\2}", rule.rule)


def api_rules(app: Flask) -> list[Rule]:
    """List the app's rules under /api/v1, in path order."""
    return sorted((r for r in app.url_map.iter_rules() if r.rule.startswith(PREFIX + "/")), key=lambda r: r.rule)


def rule_methods(rule: Rule) -> list[str]:
    """Return the methods a rule was declared with (without the HEAD and OPTIONS Flask adds)."""
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def openapi_document(app: Flask) -> dict[str, Any]:
    """Return the app's OpenAPI document (built once per app)."""
    document: dict[str, Any] | None = app.extensions.get(_SPEC_KEY)
    if document is None:
        document = app.extensions[_SPEC_KEY] = build_spec(app).to_dict()
    return document


def build_spec(app: Flask) -> APISpec:
    """Build the OpenAPI document of every /api/v1 route; fail on an undocumented one."""
    spec = APISpec(
        title=API_TITLE, version=API_VERSION, openapi_version=OPENAPI_VERSION,
        plugins=[FlaskPlugin(), MarshmallowPlugin()],
        info={"description": "Coordina's JSON API: register detections, follow cases, work on the tasks "
                             "of your agency. Authenticate with POST /api/v1/auth/token."},
    )
    spec.components.security_scheme(SECURITY_SCHEME, {"type": "http", "scheme": "bearer"})
    spec.components.schema("ErrorEnvelope", schema=ErrorEnvelope)
    for rule in api_rules(app):
        view = app.view_functions[rule.endpoint]
        doc: ApiDoc | None = getattr(view, DOC_ATTRIBUTE, None)
        if doc is None:
            raise LookupError(f"{rule.rule} ({rule.endpoint}) has no @documented declaration")
        operation = _operation(view, doc)
        spec.path(rule=rule, operations={method.lower(): operation for method in rule_methods(rule)})
    return spec


def _operation(view: Callable[..., Any], doc: ApiDoc) -> dict[str, Any]:
    summary, _, description = (view.__doc__ or "").strip().partition("\n")
    operation: dict[str, Any] = {"operationId": view.__name__, "summary": summary.strip(), "responses": {}}
    if description.strip():
        operation["description"] = " ".join(description.split())
    if doc.tags:
        operation["tags"] = list(doc.tags)
    if doc.query is not None:
        operation["parameters"] = [{"in": "query", "schema": doc.query}]
    if doc.body is not None:
        operation["requestBody"] = {"required": doc.body_required,
                                    "content": {"application/json": {"schema": doc.body}}}
    for status, schema in doc.responses.items():
        operation["responses"][str(status)] = {
            "description": SUCCESS_DESCRIPTIONS.get(status, "OK"),
            "content": {"application/json": {"schema": schema}},
        }
    errors = set(doc.errors)
    if doc.body is not None:
        errors |= {400, 422}
    if doc.query is not None:
        errors.add(422)
    if getattr(view, BEARER_AUTH, False):
        operation["security"] = [{SECURITY_SCHEME: []}]
        errors.add(401)
        if getattr(view, CASEWORK_ONLY, False):
            errors.add(403)
    else:
        operation["security"] = []
    for status in sorted(errors):
        operation["responses"][str(status)] = {
            "description": ERROR_DESCRIPTIONS.get(status, MESSAGES.get(status, ("Error",))[0]),
            "content": {"application/json": {"schema": "ErrorEnvelope"}},
        }
    return operation


def form_component(name: str) -> str:
    """Return the name of a form's schema among the document's components."""
    return f"Form_{name}"


def with_forms(document: Mapping[str, Any], forms: Mapping[str, FormDefinition],
               starts: Mapping[str, str]) -> dict[str, Any]:
    """Return the document with each form's JSON Schema and the request fields that carry form data.

    `starts` maps `Schema/field` (e.g. `CaseCreateRequest/detection`) to the form it carries; the
    task completion's `data` is any task form, exactly the task's one on GET /tasks/{task_id}.
    """
    result = copy.deepcopy(dict(document))
    schemas = result["components"]["schemas"]
    for name, form in sorted(forms.items()):
        # A deep copy: the NUL patterns added below must not reach the engine's cached form definitions.
        schema = copy.deepcopy({key: value for key, value in form.schema.items() if key != "$schema"})
        schemas[form_component(name)] = {**schema, "title": form.title, "description": form.description}
    for path, name in starts.items():
        component, field_name = path.split("/")
        if name in forms:
            schemas[component]["properties"][field_name] = {"$ref": f"#/components/schemas/{form_component(name)}"}
    for name, schema in schemas.items():
        if not name.endswith("Out") and name not in RESPONSE_ONLY:
            _exclude_nul(schema)
    for path_item in result["paths"].values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                _exclude_nul(parameter)
    task_forms = sorted(set(forms) - set(starts.values()))
    if task_forms:
        component, field_name = TASK_FORM_FIELD
        schemas[component]["properties"][field_name] = {
            "anyOf": [{"$ref": f"#/components/schemas/{form_component(name)}"} for name in task_forms],
            "description": TASK_FORM_NOTE,
        }
    return result


def _exclude_nul(node: Any) -> None:
    """Give every free text of a request schema the pattern that excludes NUL, as the API refuses it."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") == "string" and not {"pattern", "enum", "const", "oneOf", "format"} & set(item):
                item["pattern"] = NO_NUL
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
