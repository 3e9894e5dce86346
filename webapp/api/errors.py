"""The API's side of the one error envelope: request bodies, engine errors and form errors as HTTP errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import BadRequest, Conflict, Forbidden, HTTPException, NotFound, UnprocessableEntity

from engine.errors import (
    ConflictError,
    EngineError,
    NotFoundError,
    PermissionDeniedError,
    TaskDataError,
)
from webapp.api.auth import record_denial
from webapp.api.schemas import field_errors
from webapp.errors import InvalidData, handle_http_error
from webapp.extensions import db


class WorkflowFailed(UnprocessableEntity):
    """The workflow could not go on with these data (a script or expression of the model failed)."""

    slug = "workflow_error"


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
        db.session().rollback()
        raise InvalidData({f"{field}/{name}": messages for name, messages in exc.errors.items()}) from exc


def handle_engine_error(error: EngineError) -> ResponseReturnValue:
    """Undo the request's work and answer an engine error with its HTTP status."""
    db.session().rollback()
    http: HTTPException
    if isinstance(error, PermissionDeniedError):
        record_denial(403)
        http = Forbidden()
    elif isinstance(error, ConflictError):
        http = Conflict()
    elif isinstance(error, NotFoundError):
        http = NotFound()
    elif isinstance(error, TaskDataError):
        http = InvalidData(error.errors)
    else:
        # A model's script or expression failed: the protocol designers must hear of it.
        current_app.logger.error("workflow error on %s: %s", request.path, error)
        http = WorkflowFailed()
    return handle_http_error(http)
