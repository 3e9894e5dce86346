"""Notifications: what a user is told in the app, the e-mails waiting to go out, and her preferences."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base

# What a notification is about: a reminder before a deadline, then each level of escalation after it;
# "invariant": the watchdog found the protocol broken in a case (engine/watchdog.py).
NOTIFICATION_KINDS = ("reminder", "agency", "supervisor", "coordinator", "invariant")
OUTBOX_STATUSES = ("pending", "sent", "failed")


class Notification(Base):
    """An in-app notice to one user about one task of a case; never carries personal data."""

    __tablename__ = "notification"
    __table_args__ = (
        # One notice per user, task and kind: a second worker (or a second pass) cannot repeat it.
        UniqueConstraint("user_id", "task_id", "kind"),
        Index("ix_notification_user_created", "user_id", "created_at"),
        Index("ix_notification_user_unread", "user_id", "read_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    kind: Mapped[str] = mapped_column(String(16))
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    # The open_task the notice is about (rows are deleted on completion; the notice outlives them); none
    # for a broken invariant that no open step shows (told to the Mesa's coordination, linked to the case).
    task_id: Mapped[int | None] = mapped_column(Integer)
    # The step's name in the model (for "invariant": the invariant's title): no personal data.
    step: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]


class NotificationPreference(Base):
    """Whether a user wants e-mail for one kind of notification (no row: yes). In-app is always on."""

    __tablename__ = "notification_preference"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    email: Mapped[bool] = mapped_column(Boolean, default=True)


class OutboxEmail(Base):
    """One e-mail to send through SMTP, retried with back-off until the server takes it."""

    __tablename__ = "outbox_email"
    __table_args__ = (
        Index("ix_outbox_email_due", "status", "next_attempt_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notification.id", ondelete="SET NULL"),
                                                        index=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
