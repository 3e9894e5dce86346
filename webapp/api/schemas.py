"""marshmallow schemas of the JSON API: every request body is loaded, every response dumped, through one.

Request schemas refuse unknown fields (marshmallow's default) and wrong types (integers as JSON
Schema counts them); form data (`detection`, `data`) is an object here, checked field by field against
its form by the engine, and documented as its form's JSON Schema (`openapi.with_forms`). Datetimes
are dumped as ISO-8601 in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, fields, pre_dump, validate

from webapp.limits import MAX_ID
from webapp.worklist.queries import DUE_WINDOWS, MAX_PER_PAGE, PER_PAGE, TABS

SCOPES = TABS
ID_RANGE = validate.Range(min=1, max=MAX_ID)  # a database id: 1…2³¹−1 (webapp/limits.py)


def field_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten marshmallow's (nested) messages into `field/subfield` paths, as the engine names them."""
    if isinstance(messages, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            name = prefix if key == "_schema" and prefix else f"{prefix}/{key}" if prefix else str(key)
            for path, texts in field_errors(value, name).items():
                flat.setdefault(path, []).extend(texts)
        return flat
    if isinstance(messages, list | tuple):
        return {prefix or "_schema": [str(m) for m in messages]}
    return {prefix or "_schema": [str(messages)]}


class JsonInteger(fields.Integer):
    """An integer as JSON Schema counts them: `3` and `3.0`, never `"3"` or `true`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return super()._validated(value)


# --- Requests ------------------------------------------------------------------------------------
class TokenRequest(Schema):
    """Credentials exchanged for a bearer token."""

    username = fields.String(required=True, validate=validate.Length(min=1, max=80))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))
    # A current code from the authenticator app (or a recovery code): required of users with a second factor.
    code = fields.String(validate=validate.Length(min=1, max=32))


class PartyIn(Schema):
    """Who the victim or the aggressor is: identifying data, kept apart from the workflow."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    phone = fields.String(validate=validate.Length(max=40))
    address = fields.String(validate=validate.Length(max=400))


class CaseCreateRequest(Schema):
    """A detection registered by an agency: the case's territory, the detection form and the parties."""

    territory_id = JsonInteger(required=True, validate=ID_RANGE)
    detection = fields.Dict(required=True, metadata={"description": "Data of the `detection` form."})
    victim = fields.Nested(PartyIn)
    aggressor = fields.Nested(PartyIn)


class IncidentRequest(Schema):
    """A new incident on a case."""

    data = fields.Dict(required=True, metadata={"description": "Data of the `incident` form."})


class VersionRequest(Schema):
    """The task version the client last saw (optional: without it the action is not version-checked)."""

    version = JsonInteger()


class CompleteRequest(Schema):
    """The answers of a task's form, and the task version they were given on."""

    data = fields.Dict(required=True, metadata={"description": "Data of the task's form."})
    version = JsonInteger(required=True)


class TaskListQuery(Schema):
    """Worklist scope, filters and page."""

    scope = fields.String(load_default="mine", validate=validate.OneOf(SCOPES))
    page = fields.Integer(load_default=1, validate=ID_RANGE)
    per_page = fields.Integer(load_default=PER_PAGE, validate=validate.Range(min=1, max=MAX_PER_PAGE))
    step = fields.String(validate=validate.Length(min=1, max=120), metadata={"description": "Element id."})
    risk = fields.String(validate=validate.Regexp(r"\A[a-z][a-z0-9_]{0,31}\Z"),
                         metadata={"description": "A level of the deployed risk scale (e.g. alto).",
                                   "pattern": "^[a-z][a-z0-9_]{0,31}$"})  # the same, as ECMA-262 reads it
    due = fields.String(validate=validate.OneOf(DUE_WINDOWS))
    territory = fields.Integer(validate=ID_RANGE, metadata={"description": "Territory id."})


# --- Responses -----------------------------------------------------------------------------------
def _user(user_id: int | None, name: str | None) -> dict[str, Any] | None:
    return None if user_id is None else {"id": user_id, "name": name}


def _agency(agency_id: int | None, name: str | None, kind: str | None) -> dict[str, Any] | None:
    return None if agency_id is None else {"id": agency_id, "name": name, "kind": kind}


class ErrorBody(Schema):
    """What went wrong."""

    status = fields.Integer(required=True)
    code = fields.String(required=True, metadata={"description": "Stable code: invalid_data, conflict, ..."})
    message = fields.String(required=True, metadata={"description": "Spanish text for people."})
    fields_ = fields.Dict(
        data_key="fields", keys=fields.String(), values=fields.List(fields.String()),
        metadata={"description": "With 422 invalid_data: messages per field (`a/b` for nested fields)."},
    )


class ErrorEnvelope(Schema):
    """The one error envelope of every API error."""

    error = fields.Nested(ErrorBody, required=True)


class TokenOut(Schema):
    """A bearer token and when it expires."""

    token = fields.String(required=True)
    token_type = fields.String(required=True, dump_default="Bearer")
    expires_at = fields.DateTime(required=True)


class AgencyOut(Schema):
    """An agency."""

    id = fields.Integer()
    name = fields.String()
    kind = fields.String()


class TerritoryOut(Schema):
    """A territory."""

    id = fields.Integer()
    code = fields.String()
    name = fields.String()


class MeOut(Schema):
    """The signed-in user."""

    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    agency = fields.Nested(AgencyOut, allow_none=True)
    roles = fields.List(fields.String())
    territories = fields.List(fields.Nested(TerritoryOut))


class CaseCreatedOut(Schema):
    """The case just registered."""

    id = fields.Integer()
    reference = fields.String()


class IncidentOut(Schema):
    """The incident process just started."""

    case_id = fields.Integer()
    reference = fields.String()
    instance_id = fields.Integer()
    process_key = fields.String()


class UserRefOut(Schema):
    """A user, by id and name."""

    id = fields.Integer()
    name = fields.String()


class OpenTaskOut(Schema):
    """A step of a case waiting for an agency."""

    id = fields.Integer(attribute="task_id")
    version = fields.Integer()
    element_id = fields.String()
    name = fields.String()
    agency = fields.Nested(AgencyOut, allow_none=True, metadata={"description": "Null if no agency serves it."})
    assignee = fields.Nested(UserRefOut, allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    visible_from = fields.DateTime()
    overdue = fields.Boolean()

    @pre_dump
    def _nest(self, step: Any, **_kwargs: Any) -> dict[str, Any]:
        return {**vars(step), "agency": _agency(step.agency_id, step.agency_name, step.agency_kind),
                "assignee": _user(step.assignee_id, step.assignee_name)}


class HistoryEntryOut(Schema):
    """One entry of a case's history."""

    at = fields.DateTime()
    action = fields.String()
    element_id = fields.String(allow_none=True)
    step = fields.String(allow_none=True)
    agency = fields.String(attribute="agency_name", allow_none=True)
    actor = fields.String(attribute="actor_name", allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    on_time = fields.Boolean(allow_none=True)
    level = fields.String(allow_none=True, metadata={
        "description": "for reminded/escalated: who was told (reminder, agency, supervisor, coordinator)"})


class PartyOut(Schema):
    """Identifying data of the victim or the aggressor (need-to-know)."""

    name = fields.String()
    phone = fields.String()
    address = fields.String()


class CaseOut(Schema):
    """A case as an agency allowed to see it sees it; `victim` and `aggressor` only with need-to-know."""

    id = fields.Integer()
    reference = fields.String()
    territory = fields.Nested(TerritoryOut)
    status = fields.String()
    risk_level = fields.String(allow_none=True)
    computed_level = fields.String(allow_none=True)
    level_rule = fields.String(allow_none=True)
    risk_score = fields.Integer(allow_none=True)
    risk_reasons = fields.List(fields.String())
    raise_reason = fields.String(allow_none=True)
    especial_relevancia = fields.Boolean()
    minors_at_risk = fields.Boolean()
    next_reassessment_due = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()
    open_tasks = fields.List(fields.Nested(OpenTaskOut), attribute="open_steps")
    history = fields.List(fields.Nested(HistoryEntryOut))
    victim = fields.Nested(PartyOut)
    aggressor = fields.Nested(PartyOut)

    @pre_dump
    def _nest(self, case: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        return {**case, "territory": {"id": case["territory_id"], "name": case["territory"]}}


class CaseRefOut(Schema):
    """A case, by id and reference."""

    id = fields.Integer()
    reference = fields.String()


class TaskListItemOut(Schema):
    """One worklist line."""

    id = fields.Integer(attribute="task_id")
    version = fields.Integer()
    case_id = fields.Integer()
    case = fields.Nested(CaseRefOut)
    agency = fields.Nested(AgencyOut, allow_none=True, metadata={"description": "The agency the task waits for."})
    element_id = fields.String()
    name = fields.String(attribute="step")
    risk_level = fields.String(allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    visible_from = fields.DateTime()
    overdue = fields.Boolean()
    assignee = fields.Nested(UserRefOut, allow_none=True)
    territory = fields.String(metadata={"description": "The case's territory."})
    form = fields.String(allow_none=True)

    @pre_dump
    def _nest(self, row: Any, **_kwargs: Any) -> dict[str, Any]:
        return {**vars(row), "case": {"id": row.case_id, "reference": row.reference},
                "agency": _agency(row.agency_id, row.agency_name, row.agency_kind),
                "assignee": _user(row.assignee_id, row.assignee_name)}


class TaskPageOut(Schema):
    """One page of a worklist scope."""

    items = fields.List(fields.Nested(TaskListItemOut), attribute="rows")
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    pages = fields.Integer()


class TaskOut(Schema):
    """An open task."""

    id = fields.Integer()
    version = fields.Integer()
    case = fields.Nested(CaseRefOut)
    element_id = fields.String()
    name = fields.String()
    agency = fields.Nested(AgencyOut, allow_none=True)
    assignee = fields.Nested(UserRefOut, allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    visible_from = fields.DateTime()
    overdue = fields.Boolean()
    form_name = fields.String(allow_none=True)


class FormOut(Schema):
    """A task's form: JSON Schema (draft 2020-12) and UI hints."""

    name = fields.String()
    title = fields.String()
    description = fields.String()
    schema = fields.Dict()
    ui = fields.Dict()


class TaskDetailOut(TaskOut):
    """An open task with its form and the draft answers kept on it."""

    form = fields.Nested(FormOut, allow_none=True)
    draft = fields.Dict(allow_none=True)


class CompletedOut(Schema):
    """A completed task."""

    status = fields.String(dump_default="completed")
    case_id = fields.Integer()

