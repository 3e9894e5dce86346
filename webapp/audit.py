"""Write the audit log: who did what, to which object, when and from where (never personal data)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy.orm import Session

from engine.models import AuditEvent


def audit(
    session: Session, action: str, *, case_id: int | None = None, object_type: str | None = None,
    object_id: int | None = None, outcome: str = "ok", detail: Mapping[str, Any] | None = None,
    user_id: int | None = None, username: str | None = None, agency_id: int | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    """Append an audit event for the current request's user (or the one given); the caller commits."""
    if user_id is None and has_request_context() and current_user.is_authenticated:
        user_id, username, agency_id = current_user.user_id, current_user.username, current_user.agency_id
    event = AuditEvent(
        at=now or datetime.now(UTC), user_id=user_id, username=username, agency_id=agency_id, action=action,
        object_type=object_type, object_id=object_id, case_id=case_id, outcome=outcome,
        ip=request.remote_addr if has_request_context() else None,
        detail=dict(detail) if detail else None,
    )
    session.add(event)
    return event


def audit_now(session: Session, action: str, **kwargs: Any) -> None:
    """Append an audit event in its own transaction: a denial is recorded even if the request fails."""
    audit(session, action, **kwargs)
    session.commit()
