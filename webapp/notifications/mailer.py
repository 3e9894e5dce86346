"""Deliver the e-mail outbox through SMTP, retrying with exponential back-off while the server is away.

No Flask globals here: the SMTP settings, the session and the time are passed in, so the worker,
a test or a script can call `deliver_outbox` alike. The caller commits.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db import is_postgresql
from engine.models import OutboxEmail

log = logging.getLogger(__name__)

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)
TRUE_WORDS = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to hand e-mail over: the SMTP server, its credentials and the sender address."""

    host: str
    port: int = 25
    user: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = False
    mail_from: str = "coordina@localhost"
    timeout: float = 10.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmtpSettings | None:
        """Read SMTP_* and MAIL_FROM from a configuration; None when no SMTP host is set (e-mail off)."""
        host = str(config.get("SMTP_HOST") or "").strip()
        if not host:
            return None
        starttls = config.get("SMTP_STARTTLS")
        return cls(
            host=host, port=int(config.get("SMTP_PORT") or 25), user=str(config.get("SMTP_USER") or ""),
            password=str(config.get("SMTP_PASSWORD") or ""),
            starttls=starttls if isinstance(starttls, bool) else str(starttls).strip().lower() in TRUE_WORDS,
            mail_from=str(config.get("MAIL_FROM") or "coordina@localhost"),
        )


@dataclass
class DeliveryReport:
    """What one batch of `deliver_outbox` did."""

    taken: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def retry_delay(attempts: int) -> timedelta:
    """Return how long to wait after the `attempts`-th failure: 1, 2, 4... minutes, at most an hour."""
    return min(FIRST_RETRY * (1 << min(max(attempts - 1, 0), 16)), LONGEST_RETRY)


def deliver_outbox(session: Session, settings: SmtpSettings, now: datetime, *, limit: int = 100) -> DeliveryReport:
    """Send up to `limit` pending e-mails due at `now` over one SMTP connection (call again while `taken == limit`).

    A message the server takes is marked sent; a refused recipient (5xx) fails for good; anything
    else (server down, 4xx, a dropped connection) leaves it pending with one more attempt and a later
    `next_attempt_at`. On PostgreSQL rows are locked and busy ones skipped, so workers never send twice.
    """
    query = (select(OutboxEmail).where(OutboxEmail.status == "pending", OutboxEmail.next_attempt_at <= now)
             .order_by(OutboxEmail.next_attempt_at, OutboxEmail.id).limit(limit))
    if is_postgresql(session):
        query = query.with_for_update(skip_locked=True)
    emails = list(session.execute(query).scalars())
    report = DeliveryReport(taken=len(emails))
    if not emails:
        return report
    try:
        smtp = _connect(settings)
    except (OSError, smtplib.SMTPException) as exc:
        _defer_all(emails, now, exc, report)
        session.flush()
        return report
    try:
        for index, email in enumerate(emails):
            try:
                smtp.send_message(_message(email, settings, now))
            except smtplib.SMTPServerDisconnected as exc:
                _defer_all(emails[index:], now, exc, report)
                break
            except (OSError, smtplib.SMTPException) as exc:
                if _permanent(exc):
                    _fail(email, exc, report)
                else:
                    _defer(email, now, exc, report)
            else:
                email.status, email.sent_at, email.last_error = "sent", now, None
                email.attempts += 1
                report.sent += 1
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
    session.flush()
    return report


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.user:
            smtp.login(settings.user, settings.password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def _message(email: OutboxEmail, settings: SmtpSettings, now: datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = email.recipient
    message["Subject"] = email.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(idstring=f"outbox-{email.id}", domain=settings.mail_from.rpartition("@")[2]
                                       or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the worker
    message.set_content(email.body)
    return message


def _permanent(exc: BaseException) -> bool:
    """Tell a refusal that retrying cannot fix (5xx for the recipient or the message) from a hiccup."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500


def _defer(email: OutboxEmail, now: datetime, exc: BaseException, report: DeliveryReport) -> None:
    email.attempts += 1
    email.last_error = _describe(exc)
    email.next_attempt_at = now + retry_delay(email.attempts)
    report.deferred += 1
    report.errors.append(f"e-mail {email.id} deferred: {_kind_of(exc)}")


def _defer_all(emails: Sequence[OutboxEmail], now: datetime, exc: BaseException, report: DeliveryReport) -> None:
    log.warning("SMTP unavailable, %d e-mail(s) deferred: %s", len(emails), type(exc).__name__)
    for email in emails:
        _defer(email, now, exc, report)


def _fail(email: OutboxEmail, exc: BaseException, report: DeliveryReport) -> None:
    email.attempts += 1
    email.status, email.last_error = "failed", _describe(exc)
    report.failed += 1
    report.errors.append(f"e-mail {email.id} refused: {_kind_of(exc)}")


def _describe(exc: BaseException) -> str:
    """The full error, kept on the outbox row (which holds the address anyway)."""
    return f"{type(exc).__name__}: {exc}"[:2000]


def _kind_of(exc: BaseException) -> str:
    """The error without its text, for logs and command output: servers quote the address in it."""
    code = getattr(exc, "smtp_code", None)
    return f"{type(exc).__name__} {code}" if code else type(exc).__name__
