"""Sign-in throttling that slows guessing without letting anyone lock others out.

- Per (address, name): after PAIR_FREE failures of one name from one address, that pair waits, doubling
  from PAIR_BASE up to PAIR_MAX. This is what stops one source guessing one account.
- Per account, from any address: after ACCOUNT_FREE consecutive failures the account waits, doubling from
  ACCOUNT_BASE but never longer than ACCOUNT_MAX, so an attacker elsewhere can delay its owner a minute at
  most, never lock her out.
- Per address and globally: many failures (across names) only *slow* further attempts, by a pause that grows
  to LOGIN_SLOWDOWN_SECONDS; the password is then checked as usual, so a correct one always signs in.

Failures are read from the audit log (a failed sign-in is always audited, kept apart from the request);
the account's consecutive failures are `UserAccount.failed_logins` with `locked_until` as its wait.
Behind a reverse proxy the address is the client's only if COORDINA_TRUSTED_PROXIES says how many
proxies to trust (see webapp/proxies.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from engine.models import AuditEvent

WINDOW = timedelta(minutes=15)  # failures older than this are forgotten
PAIR_FREE, PAIR_BASE, PAIR_MAX = 3, timedelta(seconds=5), timedelta(minutes=15)
ACCOUNT_FREE, ACCOUNT_BASE, ACCOUNT_MAX = 5, timedelta(seconds=5), timedelta(minutes=1)
ADDRESS_SLOW_AFTER = 20  # failures from one address (any names) before its attempts are slowed
GLOBAL_WINDOW, GLOBAL_SLOW_AFTER = timedelta(minutes=1), 200  # failures from everywhere, a guard on floods
SLOWDOWN_STEP = 0.1  # seconds added per failure beyond the threshold, up to the configured maximum


def backoff(failures: int, free: int, base: timedelta, cap: timedelta) -> timedelta:
    """Return the wait after `failures` failures: none for the first `free`, then doubling up to `cap`."""
    if failures < free:
        return timedelta(0)
    wait: timedelta = base * 2 ** min(failures - free, 30)
    return min(cap, wait)


def _failed_logins() -> tuple[ColumnElement[bool], ...]:
    return AuditEvent.action == "login", AuditEvent.outcome == "failed"


def slowdown(reader: Session, ip: str | None, *, now: datetime, longest: float) -> float:
    """Return the pause, in seconds, before checking a password from `ip` (0 unless failures abound)."""
    everywhere = reader.execute(
        select(func.count()).select_from(AuditEvent).where(*_failed_logins(), AuditEvent.at > now - GLOBAL_WINDOW)
    ).scalar_one()
    from_ip = reader.execute(
        select(func.count()).select_from(AuditEvent).where(*_failed_logins(), AuditEvent.ip == ip,
                                                           AuditEvent.at > now - WINDOW)
    ).scalar_one() if ip else 0
    excess = max(from_ip - ADDRESS_SLOW_AFTER + 1, everywhere - GLOBAL_SLOW_AFTER + 1, 0)
    return min(longest, SLOWDOWN_STEP * excess)


def pair_wait_until(session: Session, ip: str | None, username: str, *, now: datetime) -> datetime | None:
    """Return until when this address must wait before trying this name again (None: it need not)."""
    if not ip:
        return None
    pair = (AuditEvent.ip == ip, AuditEvent.username == username[:80])
    # A sign-in completed (the password, or the second factor after it) forgives the failures before it.
    last_ok = select(func.max(AuditEvent.at)).where(
        *pair, AuditEvent.action.in_(("login", "login.second_factor")), AuditEvent.outcome == "ok").scalar_subquery()
    failures, last = session.execute(
        select(func.count(), func.max(AuditEvent.at)).select_from(AuditEvent).where(
            *pair, AuditEvent.action == "login", AuditEvent.outcome == "failed", AuditEvent.at > now - WINDOW,
            or_(last_ok.is_(None), AuditEvent.at > last_ok),
        )
    ).one()
    wait = backoff(int(failures), PAIR_FREE, PAIR_BASE, PAIR_MAX)
    if not wait or last is None:
        return None
    last_at: datetime = last if last.tzinfo else last.replace(tzinfo=now.tzinfo)
    return last_at + wait if last_at + wait > now else None


def account_wait(failures: int) -> timedelta:
    """Return how long an account waits after `failures` consecutive failures (at most ACCOUNT_MAX)."""
    return backoff(failures, ACCOUNT_FREE, ACCOUNT_BASE, ACCOUNT_MAX)
