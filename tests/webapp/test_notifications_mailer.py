"""The SMTP outbox delivery on its own: a plain session, settings passed in, a real local SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import OutboxEmail
from tests.support.mail import Mailbox, free_port
from webapp.notifications.mailer import SmtpSettings, deliver_outbox, retry_delay

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class PickyMailbox(Mailbox):
    """A mailbox that refuses some recipients for good (550) and others for now (451)."""

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        if address.startswith("nadie@"):
            return "550 5.1.1 No such user"
        if address.startswith("luego@"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def picky() -> Iterator[PickyMailbox]:
    """A running local SMTP server with refusals."""
    box = PickyMailbox(free_port())
    box.start()
    yield box
    box.stop()


def queue(session: Session, *recipients: str) -> list[OutboxEmail]:
    rows = [OutboxEmail(recipient=r, subject=f"Coordina · VG-2026-000001 · {r}", body="Paso: Revisar\n",
                        status="pending", attempts=0, next_attempt_at=NOW, created_at=NOW) for r in recipients]
    session.add_all(rows)
    session.commit()
    return rows


def statuses(session: Session) -> dict[str, tuple[str, int]]:
    session.expire_all()
    return {e.recipient: (e.status, e.attempts) for e in session.execute(select(OutboxEmail)).scalars()}


def test_a_refused_recipient_fails_for_good_and_a_busy_one_is_retried_while_the_rest_go(
    session: Session, picky: PickyMailbox
) -> None:
    queue(session, "uno@organismo.example", "nadie@organismo.example", "luego@organismo.example",
          "dos@organismo.example")
    report = deliver_outbox(session, SmtpSettings(host="127.0.0.1", port=picky.port), NOW)
    session.commit()
    assert (report.taken, report.sent, report.failed, report.deferred) == (4, 2, 1, 1)
    assert statuses(session) == {"uno@organismo.example": ("sent", 1), "dos@organismo.example": ("sent", 1),
                                 "nadie@organismo.example": ("failed", 1), "luego@organismo.example": ("pending", 1)}
    assert sorted(m["To"] for m in picky.messages) == ["dos@organismo.example", "uno@organismo.example"]
    assert all("@" not in line.split(":")[0] for line in report.errors)
    assert all("organismo.example" not in line for line in report.errors)  # no address in logs
    # Nothing is sent twice; the deferred one is not due yet.
    assert deliver_outbox(session, SmtpSettings(host="127.0.0.1", port=picky.port), NOW).taken == 0


def test_delivery_logs_in_when_a_user_is_configured(session: Session) -> None:
    seen: list[tuple[bytes, bytes]] = []

    def authenticator(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        seen.append((data.login, data.password))
        return AuthResult(success=data.password == b"secreto", handled=False)  # aiosmtpd answers 235 or 535

    box = Mailbox(free_port())
    box.controller = Controller(box, hostname="127.0.0.1", port=box.port, authenticator=authenticator,
                                auth_require_tls=False)
    box.controller.start()
    try:
        queue(session, "uno@organismo.example")
        wrong = SmtpSettings(host="127.0.0.1", port=box.port, user="coordina", password="otro")
        assert deliver_outbox(session, wrong, NOW).deferred == 1
        session.commit()
        right = SmtpSettings(host="127.0.0.1", port=box.port, user="coordina", password="secreto")
        assert deliver_outbox(session, right, NOW + timedelta(minutes=1)).sent == 1
        session.commit()
    finally:
        box.stop()
    assert (seen[0], seen[-1]) == ((b"coordina", b"otro"), (b"coordina", b"secreto"))  # smtplib tries each mechanism
    assert len(box.messages) == 1


def test_settings_come_from_the_configuration_as_text_or_values() -> None:
    assert SmtpSettings.from_config({"SMTP_HOST": ""}) is None
    settings = SmtpSettings.from_config({"SMTP_HOST": "smtp.example", "SMTP_PORT": "587", "SMTP_STARTTLS": "true",
                                         "SMTP_USER": "coordina", "SMTP_PASSWORD": "clave-secreta",
                                         "MAIL_FROM": "a@b.example"})
    assert settings == SmtpSettings(host="smtp.example", port=587, user="coordina", password="clave-secreta",
                                    starttls=True, mail_from="a@b.example")
    assert "clave-secreta" not in repr(settings)  # the password stays out of logs


def test_the_wait_doubles_up_to_an_hour() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 4)] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert retry_delay(7) == timedelta(hours=1)
    assert retry_delay(500) == timedelta(hours=1)
