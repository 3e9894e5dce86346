"""Account operations: sign in with throttling and lock-out, create and manage agencies and users."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.models import Agency, AgencyKind, AuditEvent, Territory, UserAccount
from engine.models.user import ROLES
from webapp.audit import audit
from webapp.auth.passwords import hash_password, password_problem, verify_password

MAX_FAILURES = 5  # consecutive failures before the account is locked
LOCK_FOR = timedelta(minutes=15)
IP_WINDOW, IP_MAX_FAILURES = timedelta(minutes=15), 20  # per address, across accounts


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message says why (English, for logs/CLI)."""


@dataclass(frozen=True)
class SignIn:
    """The result of a sign-in attempt."""

    user: UserAccount | None
    reason: str  # ok | invalid | locked | throttled


def authenticate(session: Session, username: str, password: str, *, now: datetime, ip: str | None) -> SignIn:
    """Check credentials, counting failures per account and per address; audit every attempt."""
    recent_from_ip = session.execute(
        select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "login", AuditEvent.outcome == "failed", AuditEvent.ip == ip,
            AuditEvent.at > now - IP_WINDOW,
        )
    ).scalar_one() if ip else 0
    user = session.execute(select(UserAccount).where(UserAccount.username == username)).scalar_one_or_none()
    if recent_from_ip >= IP_MAX_FAILURES:
        audit(session, "login", outcome="throttled", username=username[:80], now=now,
              user_id=user.id if user else None, agency_id=user.agency_id if user else None)
        return SignIn(None, "throttled")
    if user is not None and user.locked_until is not None and user.locked_until > now:
        verify_password(None, password)  # same cost as a real check
        audit(session, "login", outcome="locked", user_id=user.id, username=user.username,
              agency_id=user.agency_id, now=now)
        return SignIn(None, "locked")
    valid = verify_password(user.password_hash if user else None, password)
    if user is None or not user.active or not valid:
        detail = None
        if user is not None:
            user.failed_logins += 1
            if user.failed_logins >= MAX_FAILURES:
                user.locked_until = now + LOCK_FOR
                detail = {"locked_until": user.locked_until.isoformat()}
        audit(session, "login", outcome="failed", username=username[:80], now=now, detail=detail,
              user_id=user.id if user else None, agency_id=user.agency_id if user else None)
        return SignIn(None, "invalid")
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    audit(session, "login", user_id=user.id, username=user.username, agency_id=user.agency_id, now=now)
    return SignIn(user, "ok")


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


def set_active(session: Session, user: UserAccount, active: bool) -> None:
    """Disable (or enable) a user; disabling ends their sessions and API tokens at once."""
    user.active = active
    user.session_generation += 1
    audit(session, "user.enable" if active else "user.disable", object_type="user", object_id=user.id)


def reset_password(session: Session, user: UserAccount, password: str) -> None:
    """Set a new password, unlock the account and end its sessions and tokens."""
    problem = password_problem(password)
    if problem:
        raise AccountError(f"password: {problem}")
    user.password_hash = hash_password(password)
    user.failed_logins, user.locked_until = 0, None
    user.session_generation += 1
    audit(session, "user.reset_password", object_type="user", object_id=user.id)
