"""User accounts: a professional belongs to one agency and holds roles."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base

ROLES = ("professional", "supervisor", "designer", "admin")


class UserAccount(Base):
    """A person who acts in Coordina on behalf of an agency."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agency.id"), index=True)
    roles: Mapped[list[str]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(5), default="es")
    # Sign-in back-off: consecutive failures and, after too many, a wait until this time (webapp/auth/throttle.py).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    # Bumped on password reset, disabling or new roles: every session and API token issued before is void.
    session_generation: Mapped[int] = mapped_column(Integer, default=1)

    def has_role(self, role: str) -> bool:
        """Tell whether the user holds `role`."""
        return role in (self.roles or [])
