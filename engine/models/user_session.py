"""Signed-in sessions kept on the server: a browser's or an API token's, revocable one by one or all at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base

KIND_BROWSER, KIND_API = "browser", "api"


class UserSession(Base):
    """One sign-in: the cookie or token carries a random key whose SHA-256 is stored here, never the key."""

    __tablename__ = "user_session"
    __table_args__ = (Index("ix_user_session_user_id_revoked_at", "user_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    # Updated at most once a minute (see webapp/auth/sessions.py), so reading pages writes rarely.
    last_seen_at: Mapped[datetime]
    # A summary such as "Firefox · Linux": enough to recognise one's own devices, no version or address.
    agent: Mapped[str] = mapped_column(String(60))
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(20))
