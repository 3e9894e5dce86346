"""Sessions kept on the server: each browser sign-in and each API token is a revocable `UserSession`.

The browser's signed cookie carries a random key (the token carries one too); the database keeps only
its SHA-256. Every request looks its session up: a revoked, idle or too old one signs nobody in, so a
cookie or token saved before a logout, a password change, disabling or a role change is worth nothing.
`last_seen_at` is written at most once a minute per session, within the request's own transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app, g, request, session
from flask_login import login_user, logout_user
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from engine.models import UserAccount, UserSession
from engine.models.user_session import KIND_API, KIND_BROWSER
from webapp.auth.principal import Principal, load_principal
from webapp.auth.tokens import TOKEN_LIFETIME, issue_token
from webapp.extensions import db

TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is at most this stale: reads rarely write
KEEP_FOR = timedelta(days=7)  # ended sessions are forgotten after this (sign-ins stay in the audit log)
SESSION_KEY = "sid"  # the entry of the signed cookie that holds the browser session's key
# Browser families and systems recognised in a User-Agent, most specific first; the rest is "otro".
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("Chromium/", "Chromium"), ("Safari/", "Safari"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iOS"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


@dataclass(frozen=True)
class Lifetime:
    """How long a session lives: since it began, and (browsers) since it was last used."""

    max_age: timedelta
    idle: timedelta | None


def key_hash(key: str) -> str:
    """Return what is stored of a session key: its SHA-256, so the table alone opens no session."""
    return hashlib.sha256(key.encode()).hexdigest()


def agent_summary(user_agent: str) -> str:
    """Summarise a User-Agent as "browser · system" (no versions, nothing that singles a person out)."""
    browser = next((name for marker, name in _BROWSERS if marker in user_agent), "otro")
    system = next((name for marker, name in _SYSTEMS if marker in user_agent), "otro")
    return f"{browser} · {system}"


def open_session(session: Session, user_id: int, *, kind: str, agent: str, now: datetime) -> str:
    """Record a new session of a user and return its key (shown once: only its hash is stored)."""
    # Sessions this old ended long ago (every lifetime is shorter): drop the user's, so the table stays small.
    session.execute(delete(UserSession).where(UserSession.user_id == user_id, UserSession.created_at < now - KEEP_FOR))
    key = secrets.token_urlsafe(32)
    session.add(UserSession(key_hash=key_hash(key), user_id=user_id, kind=kind, created_at=now, last_seen_at=now,
                            agent=agent[:60]))
    session.flush()
    return key


def is_expired(row: UserSession, now: datetime, lifetime: Lifetime) -> bool:
    """Tell whether a session has outlived its lifetime (the idle limit is checked to the minute)."""
    if now - row.created_at > lifetime.max_age:
        return True
    return lifetime.idle is not None and now - row.last_seen_at > lifetime.idle + TOUCH_EVERY


def live_session(session: Session, key: str, user_id: int, *, now: datetime, lifetime: Lifetime) -> UserSession | None:
    """Return the user's unrevoked, unexpired session with this key, noting its use at most once a minute."""
    row = session.execute(select(UserSession).where(UserSession.key_hash == key_hash(key))).scalar_one_or_none()
    if row is None or row.user_id != user_id or row.revoked_at is not None or is_expired(row, now, lifetime):
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return row


def revoke_key(session: Session, key: str, *, now: datetime, reason: str) -> None:
    """End the session with this key (signing out, an idle timeout)."""
    session.execute(update(UserSession).where(UserSession.key_hash == key_hash(key), UserSession.revoked_at.is_(None))
                    .values(revoked_at=now, revoked_reason=reason))


def revoke_all(session: Session, user_id: int, *, now: datetime, reason: str, keep: int | None = None) -> int:
    """End every open session and token of a user (but `keep`); return how many were ended."""
    statement = update(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
    if keep is not None:
        statement = statement.where(UserSession.id != keep)
    result = session.execute(statement.values(revoked_at=now, revoked_reason=reason),
                             execution_options={"synchronize_session": False})
    return int(getattr(result, "rowcount", 0) or 0)


def open_sessions(session: Session, user_id: int, *, now: datetime,
                  lifetimes: dict[str, Lifetime]) -> Sequence[UserSession]:
    """Return a user's sessions still open (unrevoked, unexpired), the most recently used first."""
    rows = session.execute(
        select(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    ).scalars().all()
    return [row for row in rows if not is_expired(row, now, lifetimes.get(row.kind, lifetimes[KIND_BROWSER]))]


# --- The web app's side: the cookie, Flask-Login's user loader, API tokens ------------------------------

def lifetimes() -> dict[str, Lifetime]:
    """Return the lifetime of each kind of session, from the configuration."""
    config = current_app.config
    return {KIND_BROWSER: Lifetime(config["PERMANENT_SESSION_LIFETIME"], config["IDLE_TIMEOUT"]),
            KIND_API: Lifetime(TOKEN_LIFETIME, None)}


def begin_browser_session(principal: Principal) -> None:
    """Sign a user in on this browser: a fresh cookie session and its record on the server."""
    now = datetime.now(UTC)
    session.clear()  # a new session for the signed-in user
    login_user(principal)
    session["seen"] = now.timestamp()
    session[SESSION_KEY] = open_session(db.session(), principal.user_id, kind=KIND_BROWSER,
                                        agent=agent_summary(request.user_agent.string), now=now)


def end_browser_session(reason: str) -> None:
    """Sign this browser out: its server-side session is revoked, so a saved cookie no longer works."""
    key = session.get(SESSION_KEY)
    if isinstance(key, str):
        revoke_key(db.session(), key, now=datetime.now(UTC), reason=reason)
    logout_user()
    session.clear()


def load_user(session_id: str) -> Principal | None:
    """Flask-Login's user loader: the cookie's user, if its server-side session is still open."""
    user_id, _, generation = session_id.partition(":")
    key = session.get(SESSION_KEY)
    if not user_id.isdigit() or not generation.isdigit() or not isinstance(key, str):
        return None
    row = live_session(db.session(), key, int(user_id), now=datetime.now(UTC), lifetime=lifetimes()[KIND_BROWSER])
    if row is None:
        return None
    g.user_session_id = row.id
    return load_principal(db.session(), int(user_id), int(generation))


def issue_api_token(user: UserAccount, *, now: datetime, agent: str = "API") -> str:
    """Open an API session for a user and return its bearer token (the request's answer commits it)."""
    key = open_session(db.session(), user.id, kind=KIND_API, agent=agent, now=now)
    return issue_token(str(current_app.config["SECRET_KEY"]), user.id, user.session_generation, key)


def load_api_principal(user_id: int, generation: int, key: str) -> Principal | None:
    """Return the principal of a bearer token whose API session is still open."""
    row = live_session(db.session(), key, user_id, now=datetime.now(UTC), lifetime=lifetimes()[KIND_API])
    if row is None:
        return None
    g.user_session_id = row.id
    return load_principal(db.session(), user_id, generation)


def end_api_session() -> None:
    """Revoke the token of this API request: from now on it answers 401."""
    session_id = current_session_id()
    if session_id is not None:
        db.session.execute(update(UserSession).where(UserSession.id == session_id)
                           .values(revoked_at=datetime.now(UTC), revoked_reason="logout"))


def current_session_id() -> int | None:
    """Return the id of this request's server-side session (browser or token), if signed in."""
    value = g.get("user_session_id")
    return value if isinstance(value, int) else None
