"""Sign-in throttling that cannot lock out others, behind a reverse proxy (COORDINA_TRUSTED_PROXIES).

Back-off per (address, name) and per account; many failures from one address only slow it; the
client's address comes from X-Forwarded-For only when proxies are trusted, and only as far as trusted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from engine.models import Agency, AuditEvent, Territory, UserAccount
from tests.support.web import PASSWORD, AppFactory, csrf_token_of
from webapp.extensions import db

WRONG = "no-es-la-clave-correcta"
FREE_PER_ADDRESS_AND_NAME = 3  # failures of one name from one address before that pair waits
FREE_PER_ACCOUNT = 5  # failures of an account, from anywhere, before the account waits (a minute at most)
SLOW_AFTER = 20  # failures from one address (any names) before it is slowed


def make_accounts(make_app: AppFactory, password_hash: str, **config: object) -> Flask:
    """An app with one user, ana, and the given configuration; pauses kept short for tests."""
    app = make_app(SESSION_COOKIE_SECURE=False, LOGIN_SLOWDOWN_SECONDS=0.05, **config)
    with app.app_context():
        territory = Territory(code="t1", name="Territorio uno", region="EX")
        agency = Agency(name="Servicios sociales uno", kind="social_services", territories=[territory])
        db.session.add_all([territory, agency])
        db.session.flush()
        db.session.add(UserAccount(username="ana", display_name="Ana", roles=["professional"], agency_id=agency.id,
                                   active=True, password_hash=password_hash, failed_logins=0, session_generation=1,
                                   language="es"))
        db.session.commit()
    return app


@pytest.fixture
def proxied(make_app: AppFactory, password_hash: str) -> Flask:
    """The app behind one trusted reverse proxy."""
    return make_accounts(make_app, password_hash, TRUSTED_PROXIES=1)


def token(app: Flask, username: str, password: str, forwarded_for: str | None = None) -> TestResponse:
    """Ask the API for a token, through the proxy for the client at `forwarded_for`."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return app.test_client().post("/api/v1/auth/token", json={"username": username, "password": password},
                                  headers=headers)


def login_form(app: Flask, username: str, password: str, forwarded_for: str) -> int:
    """Sign in through the login page, through the proxy for the client at `forwarded_for`."""
    client = app.test_client()
    headers = {"X-Forwarded-For": forwarded_for}
    csrf = csrf_token_of(client.get("/login", headers=headers).get_data(as_text=True))
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": csrf},
                           headers=headers)
    return response.status_code


def login_ips(app: Flask) -> list[str | None]:
    with app.app_context():
        return list(db.session.execute(select(AuditEvent.ip).where(AuditEvent.action == "login")
                                       .order_by(AuditEvent.id)).scalars())


def test_two_clients_behind_the_proxy_do_not_lock_each_other_out(proxied: Flask) -> None:
    for number in range(SLOW_AFTER + 2):
        assert token(proxied, f"nadie{number}", WRONG, "203.0.113.5").status_code == 401
    for _ in range(FREE_PER_ADDRESS_AND_NAME):
        assert token(proxied, "ana", WRONG, "203.0.113.5").status_code == 401
    assert token(proxied, "ana", PASSWORD, "203.0.113.5").status_code == 429  # that address waits for that name
    assert token(proxied, "ana", PASSWORD, "203.0.113.6").status_code == 200  # ana, elsewhere, does not
    assert login_form(proxied, "ana", PASSWORD, "203.0.113.6") == 302
    assert set(login_ips(proxied)) == {"203.0.113.5", "203.0.113.6"}


def test_the_right_password_after_many_unknown_names_from_the_same_address_still_signs_in(proxied: Flask) -> None:
    for number in range(SLOW_AFTER):
        assert login_form(proxied, f"nadie{number}", WRONG, "203.0.113.5") == 401
    assert login_form(proxied, "ana", PASSWORD, "203.0.113.5") == 302
    assert token(proxied, "ana", PASSWORD, "203.0.113.5").status_code == 200


def test_only_the_address_the_trusted_proxy_saw_counts(proxied: Flask) -> None:
    for forged in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"):  # the client writes its own entry first
        token(proxied, "ana", WRONG, f"{forged}, 203.0.113.5")
    assert login_ips(proxied) == ["203.0.113.5"] * 4
    assert token(proxied, "ana", PASSWORD, "10.0.0.9, 203.0.113.5").status_code == 429


def test_without_trusted_proxies_x_forwarded_for_is_ignored(make_app: AppFactory, password_hash: str) -> None:
    app = make_accounts(make_app, password_hash)
    for number in range(FREE_PER_ADDRESS_AND_NAME):
        assert token(app, "ana", WRONG, f"198.51.100.{number}").status_code == 401
    assert token(app, "ana", PASSWORD, "198.51.100.99").status_code == 429  # a new header is not a new address
    assert set(login_ips(app)) == {"127.0.0.1"}


def test_the_number_of_trusted_proxies_is_read_from_the_environment(make_app: AppFactory, password_hash: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COORDINA_TRUSTED_PROXIES", "1")
    app = make_accounts(make_app, password_hash)
    assert token(app, "ana", PASSWORD, "203.0.113.7").status_code == 200
    assert login_ips(app) == ["203.0.113.7"]


def test_an_account_failing_from_many_addresses_waits_a_minute_at_most(proxied: Flask) -> None:
    started = datetime.now(UTC)
    with time_machine.travel(started, tick=False):
        for number in range(FREE_PER_ACCOUNT):
            assert token(proxied, "ana", WRONG, f"198.51.100.{number}").status_code == 401
        refused = token(proxied, "ana", PASSWORD, "203.0.113.9")  # the owner, from her own address
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 5
    with time_machine.travel(started + timedelta(seconds=6), tick=False):
        assert token(proxied, "ana", WRONG, "198.51.100.50").status_code == 401  # the wait doubles
        assert 6 <= int(token(proxied, "ana", PASSWORD, "203.0.113.9").headers["Retry-After"]) <= 10
    with time_machine.travel(started + timedelta(minutes=5), tick=False):
        for number in range(6):  # an attacker keeps failing, once each time it may
            token(proxied, "ana", WRONG, f"192.0.2.{number}")
            with proxied.app_context():
                user = db.session.execute(select(UserAccount).where(UserAccount.username == "ana")).scalar_one()
                assert user.locked_until is not None
                assert user.locked_until - datetime.now(UTC) <= timedelta(minutes=1)
                user.locked_until = datetime.now(UTC)  # as if the wait had passed
                db.session.commit()
    with time_machine.travel(started + timedelta(minutes=6, seconds=1), tick=False):
        assert token(proxied, "ana", PASSWORD, "203.0.113.9").status_code == 200
    outcomes = [e.outcome for e in audit_logins(proxied)]
    assert outcomes.count("locked") == 2


def test_one_address_failing_one_name_waits_longer_each_time(proxied: Flask) -> None:
    started = datetime.now(UTC)
    with time_machine.travel(started, tick=False):
        for _ in range(FREE_PER_ADDRESS_AND_NAME):
            assert token(proxied, "ana", WRONG, "203.0.113.5").status_code == 401
        assert 1 <= int(token(proxied, "ana", WRONG, "203.0.113.5").headers["Retry-After"]) <= 5
    with time_machine.travel(started + timedelta(seconds=6), tick=False):
        assert token(proxied, "ana", WRONG, "203.0.113.5").status_code == 401
        assert 6 <= int(token(proxied, "ana", PASSWORD, "203.0.113.5").headers["Retry-After"]) <= 10
    with time_machine.travel(started + timedelta(seconds=17), tick=False):
        assert token(proxied, "ana", PASSWORD, "203.0.113.5").status_code == 200
        # success clears the pair's count: the next slip starts afresh
        assert token(proxied, "ana", WRONG, "203.0.113.5").status_code == 401
        assert token(proxied, "ana", PASSWORD, "203.0.113.5").status_code == 200


def audit_logins(app: Flask) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.execute(select(AuditEvent).where(AuditEvent.action == "login")
                                       .order_by(AuditEvent.id)).scalars())
