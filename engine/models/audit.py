"""The append-only audit log: every read and write of case data, every denial, every login."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base
from engine.models.append_only import make_append_only


class AuditEvent(Base):
    """Who did what to which object, when, and from where; never personal data in `detail`."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_case_at", "case_id", "at"),
        Index("ix_audit_event_user_at", "user_id", "at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    username: Mapped[str | None] = mapped_column(String(80))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agency.id"))
    action: Mapped[str] = mapped_column(String(40))  # case.read, task.complete, access.denied, login.failed...
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[int | None]
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_file.id"))
    outcome: Mapped[str] = mapped_column(String(16), default="ok")  # ok | denied | failed
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None]


# Append-only in the database itself, not only by convention: updates and deletes are refused.
make_append_only(AuditEvent, "audit_event is append-only")
