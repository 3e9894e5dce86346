"""Request helpers shared by the views: the audited refusal, the posted version, a posted number."""

from __future__ import annotations

from typing import Any, NoReturn, overload

from flask import abort, g, request
from sqlalchemy import select

from engine.models import Case
from webapp.audit import audit_apart
from webapp.extensions import db
from webapp.limits import parse_count
from webapp.tasks.queries import task_case_id


def act_as(action: str) -> None:
    """Name the audit action of this request: a refusal (`deny`, an engine error) is audited under it."""
    g.audit_action = action


def current_action() -> str:
    """Return the audit action of this request: the one named with `act_as`, else the view's endpoint."""
    action: str = g.get("audit_action") or request.endpoint or "request"
    return action


def deny(status: int = 404, *, action: str | None = None, **audit_fields: Any) -> NoReturn:
    """Audit a refusal in its own transaction (undoing the request's work) and answer `status`.

    404 for what the user may not see (never reveal that it exists), 403 for what she sees but may not
    do. The refused object is the URL's task or case (with its case) unless `audit_fields` name one.
    """
    if "object_id" not in audit_fields and "object_type" not in audit_fields:
        audit_fields = {**object_of_request(), **audit_fields}
    audit_fields.setdefault("detail", {"status": status})
    audit_apart(action or current_action(), outcome="denied", **audit_fields)
    abort(status)


def object_of_request() -> dict[str, Any]:
    """Return the task, meeting or case the URL names as audit fields, with its case if known; none for other URLs."""
    args = request.view_args or {}
    if "task_id" in args:
        task_id = args["task_id"]
        return {"object_type": "task", "object_id": task_id, "case_id": task_case_id(db.session(), task_id)}
    if "meeting_id" in args:  # a Mesa meeting's page or edit (its case, if the URL names one, is on the agenda)
        return {"object_type": "meeting", "object_id": args["meeting_id"]}
    if "case_id" in args:
        case_id = args["case_id"]
        exists = db.session.execute(select(Case.id).where(Case.id == case_id)).first() is not None
        return {"object_type": "case", "object_id": case_id, "case_id": case_id if exists else None}
    return {}


def posted_version() -> int:
    """Return the `version` the form was shown with (optimistic locking); 400 if missing or not a number."""
    version = parse_count(request.form.get("version"))
    if version is None:
        abort(400)
    return version


@overload
def posted_int(name: str) -> int | None: ...
@overload
def posted_int(name: str, default: int) -> int: ...
def posted_int(name: str, default: int | None = None) -> int | None:
    """Return the posted field `name` as a whole number (0…2³¹−1), or `default` when absent or not one."""
    value = parse_count(request.form.get(name))
    return default if value is None else value
