"""Account operations: sign in with throttling and lock-out, create and manage agencies and users."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Agency, AgencyKind, Territory, UserAccount
from engine.models.user import ROLES
from webapp.audit import audit
from webapp.auth.passwords import hash_password, password_problem, verify_password
from webapp.auth.sessions import revoke_all
from webapp.auth.throttle import account_wait, pair_wait_until, slowdown

SLOWDOWN_SECONDS = 2.0  # the longest pause a flood of failures adds (config LOGIN_SLOWDOWN_SECONDS)


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message says why (English, for logs/CLI)."""


@dataclass(frozen=True)
class SignIn:
    """The result of a sign-in attempt; `retry_after` says how many seconds to wait when refused for now."""

    user: UserAccount | None
    reason: str  # ok | invalid | locked (the account waits) | throttled (this address and name wait)
    retry_after: int = 0


def authenticate(
    session: Session, username: str, password: str, *, now: datetime, ip: str | None,
    pause: Callable[[float], None] = time.sleep,
) -> SignIn:
    """Check credentials, slowing floods and backing off per account and per (address, name); audit every try.

    See webapp/auth/throttle.py: nothing here refuses a correct password for longer than a back-off.
    """
    with Session(session.get_bind()) as reader:  # a short read of its own, ended before the pause
        delay = slowdown(reader, ip, now=now, longest=_longest_pause())
    if delay > 0:
        pause(delay)
    user = session.execute(select(UserAccount).where(UserAccount.username == username)).scalar_one_or_none()
    pair_until = pair_wait_until(session, ip, username, now=now)
    account_until = user.locked_until if user is not None and user.locked_until and user.locked_until > now else None
    until = pair_until or account_until
    if until is not None:
        verify_password(None, password)  # same cost as a real check
        reason = "throttled" if pair_until else "locked"
        _audit_attempt(session, reason, username, user, now=now)
        return SignIn(None, reason, max(1, math.ceil((until - now).total_seconds())))
    valid = verify_password(user.password_hash if user else None, password)
    if user is None or not user.active or not valid:
        detail = None
        if user is not None:
            user.failed_logins += 1
            wait = account_wait(user.failed_logins)
            user.locked_until = now + wait if wait else None
            detail = {"locked_until": user.locked_until.isoformat()} if user.locked_until else None
        _audit_attempt(session, "failed", username, user, now=now, detail=detail)
        return SignIn(None, "invalid")
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    audit(session, "login", user_id=user.id, username=user.username, agency_id=user.agency_id, now=now)
    return SignIn(user, "ok")


def _audit_attempt(session: Session, outcome: str, username: str, user: UserAccount | None, *, now: datetime,
                   detail: dict[str, str] | None = None) -> None:
    """Audit a refused sign-in under the name tried (and its account, if there is one)."""
    audit(session, "login", outcome=outcome, username=username[:80], now=now, detail=detail,
          user_id=user.id if user else None, agency_id=user.agency_id if user else None)


def _longest_pause() -> float:
    """Return the configured longest pause before a password check (LOGIN_SLOWDOWN_SECONDS)."""
    if not has_app_context():
        return SLOWDOWN_SECONDS
    return float(current_app.config.get("LOGIN_SLOWDOWN_SECONDS", SLOWDOWN_SECONDS))


def create_agency(session: Session, *, name: str, kind: str, territory_codes: Sequence[str]) -> Agency:
    """Create an agency of a known kind serving the given territories."""
    if session.get(AgencyKind, kind) is None:
        raise AccountError(f"unknown agency kind {kind!r}")
    territories = session.execute(select(Territory).where(Territory.code.in_(territory_codes))).scalars().all()
    missing = set(territory_codes) - {t.code for t in territories}
    if missing:
        raise AccountError(f"unknown territories: {', '.join(sorted(missing))}")
    agency = Agency(name=name.strip(), kind=kind, active=True, territories=list(territories))
    session.add(agency)
    session.flush()
    audit(session, "agency.create", object_type="agency", object_id=agency.id, detail={"kind": kind})
    return agency


def create_user(
    session: Session, *, username: str, display_name: str, agency_id: int | None, roles: Sequence[str],
    password: str, email: str | None = None, language: str = "es",
) -> UserAccount:
    """Create an active user of an agency with roles and an argon2-hashed password."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise AccountError(f"roles must be among {', '.join(ROLES)}")
    if agency_id is not None and session.get(Agency, agency_id) is None:
        raise AccountError(f"agency {agency_id} does not exist")
    if session.execute(select(UserAccount.id).where(UserAccount.username == username)).first():
        raise AccountError(f"username {username!r} is taken")
    problem = password_problem(password)
    if problem:
        raise AccountError(f"password: {problem}")
    user = UserAccount(
        username=username.strip(), display_name=display_name.strip(), agency_id=agency_id, roles=list(roles),
        active=True, password_hash=hash_password(password), email=email, language=language,
        failed_logins=0, session_generation=1,
    )
    session.add(user)
    session.flush()
    audit(session, "user.create", object_type="user", object_id=user.id, detail={"roles": sorted(roles)})
    return user


def end_sessions(session: Session, user: UserAccount, reason: str) -> None:
    """End every session and API token of a user: revoked on the server, and their generation moved on."""
    user.session_generation += 1
    revoke_all(session, user.id, now=datetime.now(UTC), reason=reason)


def set_active(session: Session, user: UserAccount, active: bool) -> None:
    """Disable (or enable) a user; disabling ends their sessions and API tokens at once."""
    user.active = active
    end_sessions(session, user, "enabled" if active else "disabled")
    audit(session, "user.enable" if active else "user.disable", object_type="user", object_id=user.id)


def reset_password(session: Session, user: UserAccount, password: str) -> None:
    """Set a new password, unlock the account and end its sessions and tokens."""
    problem = password_problem(password)
    if problem:
        raise AccountError(f"password: {problem}")
    user.password_hash = hash_password(password)
    user.failed_logins, user.locked_until = 0, None
    end_sessions(session, user, "password")
    audit(session, "user.reset_password", object_type="user", object_id=user.id)


def set_roles(session: Session, user: UserAccount, roles: Sequence[str]) -> None:
    """Give a user other roles; her sessions and tokens end, so she signs in again with the new ones."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise AccountError(f"roles must be among {', '.join(ROLES)}")
    before = sorted(user.roles or [])
    user.roles = sorted(set(roles))
    end_sessions(session, user, "roles")
    audit(session, "user.roles", object_type="user", object_id=user.id, detail={"from": before, "to": user.roles})
