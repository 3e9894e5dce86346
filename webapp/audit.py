"""Write the audit log: who did what, to which object, when and from where (never personal data)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from flask import g, has_request_context, request
from flask_login import current_user
from sqlalchemy.orm import Session

from engine.models import AuditEvent
from webapp.transaction import FIRST_FAILURE_STATUS, apart


def audit(
    session: Session, action: str, *, case_id: int | None = None, object_type: str | None = None,
    object_id: int | None = None, outcome: str = "ok", detail: Mapping[str, Any] | None = None,
    user_id: int | None = None, username: str | None = None, agency_id: int | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    """Append an audit event for the current request's user (or the one given) to `session`'s transaction."""
    if user_id is None and has_request_context():
        user_id, username, agency_id = _request_user()
    event = AuditEvent(
        at=now or datetime.now(UTC), user_id=user_id, username=username, agency_id=agency_id, action=action,
        object_type=object_type, object_id=object_id, case_id=case_id, outcome=outcome,
        ip=request.remote_addr if has_request_context() else None,
        detail=dict(detail) if detail else None,
    )
    session.add(event)
    return event


def audit_apart(action: str, **kwargs: Any) -> None:
    """Record an audit event in its own transaction (undoing the request's work): it survives the rollback.

    For what a 4xx answer must keep: a refusal, a failed attempt, the read of a page shown with an error.
    """
    with apart() as session:
        audit(session, action, **kwargs)


def _request_user() -> tuple[int | None, str | None, int | None]:
    """Return the id, username and agency of the request's user: the API's bearer or the signed-in one."""
    principal = g.get("api_principal")
    if principal is None and current_user.is_authenticated:
        principal = current_user
    if principal is None:
        return None, None, None
    return principal.user_id, principal.username, principal.agency_id


def audit_page(session: Session, action: str, status: int, **kwargs: Any) -> None:
    """Put the read of a page on record: with the request's work, or apart when the page answers an error."""
    audit_page_events(session, status, [(action, kwargs)])


def audit_page_events(session: Session, status: int, events: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """Put a page's events on record (its reads, the failed change it answers) with the request's work.

    When the page answers an error they are written all in one transaction apart, so the rollback keeps them.
    """
    if status < FIRST_FAILURE_STATUS:
        for action, fields in events:
            audit(session, action, **fields)
        return
    with apart() as separate:
        for action, fields in events:
            audit(separate, action, **fields)
