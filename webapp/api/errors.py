"""The API's side of the one error envelope: request bodies and form errors as HTTP errors (422)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import request
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import BadRequest

from engine.errors import TaskDataError
from webapp.api.schemas import field_errors
from webapp.errors import InvalidData, audit_refusal

NUL = "\x00"
NUL_MESSAGE = "NUL character not allowed"
NOT_FINITE_MESSAGE = "not a finite number"  # NaN and Infinity: Python's JSON reads them, JSON has none


def unstorable(data: Any) -> dict[str, str]:
    """Map the paths (`a/b`) of text holding NUL (keys too) and of NaN or infinite numbers to why (any depth)."""
    found: dict[str, str] = {}
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str) and NUL in value:
            found[path or "_schema"] = NUL_MESSAGE
        elif isinstance(value, float) and not math.isfinite(value):
            found[path or "_schema"] = NOT_FINITE_MESSAGE
        elif isinstance(value, dict):
            for key, item in value.items():
                name = str(key).replace(NUL, "\ufffd")
                stack.append((f"{path}/{name}" if path else name, NUL if NUL in str(key) else item))
        elif isinstance(value, list):
            stack.extend((f"{path}/{index}" if path else str(index), item) for index, item in enumerate(value))
    return found


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
    refused = unstorable(data)
    if refused:  # PostgreSQL cannot store them; the document's strings exclude NUL (`pattern`)
        raise InvalidData({path: [message] for path, message in refused.items()})
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
