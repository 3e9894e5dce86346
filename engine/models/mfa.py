"""Multi-factor sign-in: each user's TOTP enrolment and recovery codes, and which roles require it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base


class UserMfa(Base):
    """A user's second factor: the TOTP secret (encrypted), one being enrolled, and an exemption."""

    __tablename__ = "user_mfa"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    # Encrypted with a key derived from the app's secret key (webapp/auth/mfa.py); never shown again.
    secret: Mapped[str | None] = mapped_column(String(255))
    enrolled_at: Mapped[datetime | None]
    # The secret shown on the enrolment page until a code from it confirms it.
    pending_secret: Mapped[str | None] = mapped_column(String(255))
    # The last time step whose code was accepted: that code and older ones are refused (no replay).
    last_step: Mapped[int] = mapped_column(Integer, default=0)
    # Wrong codes since the last right one: a right password does not clear them (it clears failed_logins).
    failed_codes: Mapped[int] = mapped_column(Integer, default=0)
    # Not required to enrol whatever the roles' policy (the demo's synthetic accounts).
    exempt: Mapped[bool] = mapped_column(Boolean, default=False)


class MfaRecoveryCode(Base):
    """A one-time recovery code of a user, stored as an argon2 hash; used once, then kept as used."""

    __tablename__ = "mfa_recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    used_at: Mapped[datetime | None]


class MfaRolePolicy(Base):
    """An administrator's choice for one role (or "coordinator"): whether its users must use MFA."""

    __tablename__ = "mfa_role_policy"

    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    required: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime]
