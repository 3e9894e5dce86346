"""Between the password and the session: who must give a second factor, and the sign-in waiting for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import current_app, redirect, session, url_for
from flask.typing import ResponseReturnValue

from engine.models import UserAccount
from webapp.auth.mfa import DEFAULT_REQUIRED_ROLES, is_enrolled, mfa_required, parse_roles
from webapp.extensions import db

PENDING_KEY = "mfa_pending"
PENDING_FOR = timedelta(minutes=5)  # the second step must follow the password within this time


def configured_roles() -> frozenset[str]:
    """Return the roles that require MFA unless an administrator chose otherwise (none when testing)."""
    configured = current_app.config.get("REQUIRE_MFA_ROLES")
    if configured is None:
        configured = "" if current_app.testing else DEFAULT_REQUIRED_ROLES
    return parse_roles(str(configured))


def mfa_key() -> str:
    """Return the key the TOTP secrets are encrypted with (COORDINA_MFA_KEY, else the app's secret key)."""
    return str(current_app.config.get("MFA_KEY") or current_app.config["SECRET_KEY"])


def begin_second_factor(user: UserAccount, next_url: str) -> ResponseReturnValue | None:
    """After a correct password: ask for the second factor, or for enrolment when required; None if neither."""
    account = db.session.get(UserAccount, user.id)
    assert account is not None
    enrolled = is_enrolled(db.session(), account.id)
    if not enrolled and not mfa_required(db.session(), account, configured_roles()):
        return None
    session.clear()  # nothing of an earlier session survives into the half-signed-in one
    session[PENDING_KEY] = {"user": account.id, "generation": account.session_generation,
                            "at": datetime.now(UTC).timestamp(), "next": next_url}
    return redirect(url_for("mfa.second_factor" if enrolled else "mfa.enrol"))


def pending_user() -> UserAccount | None:
    """Return the active user whose password was just accepted and who owes the second step, if any."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or not isinstance(pending.get("user"), int):
        return None
    if datetime.now(UTC).timestamp() - float(pending.get("at", 0)) > PENDING_FOR.total_seconds():
        session.pop(PENDING_KEY, None)
        return None
    user = db.session.get(UserAccount, pending["user"])
    if user is None or not user.active or user.session_generation != pending.get("generation"):
        return None
    return user


def pending_next() -> str:
    """Return where the sign-in waiting for its second step goes afterwards (checked when it was stored)."""
    pending = session.get(PENDING_KEY)
    target = pending.get("next") if isinstance(pending, dict) else None
    return target if isinstance(target, str) else url_for("worklist.index")
