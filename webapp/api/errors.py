"""The API's side of the one error envelope: request bodies and form errors as HTTP errors (422)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import request
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import BadRequest

from engine.errors import TaskDataError
from webapp.api.schemas import field_errors
from webapp.errors import InvalidData, audit_refusal


def load_body(schema: Schema) -> dict[str, Any]:
    """Load the request's JSON body with `schema` (no body is an empty object); 400 if not JSON."""
    data = request.get_json(silent=True)
    if data is None:
        if request.get_data(cache=True):
            raise BadRequest()
        data = {}
    return _load(schema, data)


def load_args(schema: Schema) -> dict[str, Any]:
    """Load the request's query arguments with `schema` (the first value of each)."""
    return _load(schema, request.args.to_dict())


def _load(schema: Schema, data: Any) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError as exc:
        raise InvalidData(field_errors(exc.messages)) from exc
    return loaded


@contextmanager
def form_errors_at(field: str) -> Iterator[None]:
    """Report the engine's form errors under the request field that carried the form's data."""
    try:
        yield
    except TaskDataError as exc:
        audit_refusal(exc)
        raise InvalidData({f"{field}/{name}": messages for name, messages in exc.errors.items()}) from exc
