"""Signing in: argon2 passwords, lock-out, throttling, idle timeout, CSRF, cookies, audit."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from engine.models import Agency, AuditEvent, Territory, UserAccount
from tests.support.web import AppFactory
from webapp.auth.operations import create_user, reset_password, set_active
from webapp.auth.throttle import ADDRESS_SLOW_AFTER, PAIR_BASE, PAIR_FREE
from webapp.extensions import db

PASSWORD = "una-clave-larga-de-prueba"
# Browsers send a Referer on same-site HTTPS posts; Flask-WTF checks it (strict CSRF over HTTPS).
HTTPS = {"base_url": "https://localhost", "headers": {"Referer": "https://localhost/login"}}


@pytest.fixture
def accounts_app(make_app: AppFactory) -> Flask:
    """An app with one agency and one professional, CSRF on (as in production)."""
    app = make_app()
    with app.app_context():
        territory = Territory(code="t1", name="Territorio uno", region="EX")
        agency = Agency(name="Servicios sociales uno", kind="social_services", territories=[territory])
        db.session.add_all([territory, agency])
        db.session.flush()
        create_user(db.session, username="ana", display_name="Ana Prueba", agency_id=agency.id,
                    roles=["professional"], password=PASSWORD)
        db.session.commit()
    return app


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path, **HTTPS).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page carries a CSRF token"
    return match.group(1)


def sign_in(client: FlaskClient, username: str, password: str) -> int:
    token = csrf_token(client)
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                           **HTTPS)
    return response.status_code


def audit_rows(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.execute(select(AuditEvent).where(AuditEvent.action == action)
                                       .order_by(AuditEvent.id)).scalars())


def test_a_user_signs_in_and_the_session_cookie_is_locked_down(accounts_app: Flask) -> None:
    client = accounts_app.test_client()
    token = csrf_token(client)
    response = client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token},
                           **HTTPS)
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert client.get("/estado", **HTTPS).status_code == 200
    [row] = audit_rows(accounts_app, "login")
    assert (row.outcome, row.username) == ("ok", "ana")
    with accounts_app.app_context():
        stored = db.session.execute(select(UserAccount.password_hash).where(UserAccount.username == "ana")).scalar()
    assert stored is not None
    assert stored.startswith("$argon2id$")


def test_pages_need_a_signed_in_user(accounts_app: Flask) -> None:
    response = accounts_app.test_client().get("/estado", **HTTPS)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_a_form_posted_without_its_csrf_token_is_refused(accounts_app: Flask) -> None:
    client = accounts_app.test_client()
    response = client.post("/login", data={"username": "ana", "password": PASSWORD}, **HTTPS)
    assert response.status_code == 400
    assert audit_rows(accounts_app, "login") == []


def test_a_wrong_password_is_refused_and_logged_without_the_password(accounts_app: Flask) -> None:
    client = accounts_app.test_client()
    assert sign_in(client, "ana", "no-es-la-clave") == 401
    assert client.get("/estado", **HTTPS).status_code == 302
    [row] = audit_rows(accounts_app, "login")
    assert row.outcome == "failed"
    assert "no-es-la-clave" not in str(row.detail)


def test_repeated_failures_from_one_address_make_it_wait_even_for_the_right_password(accounts_app: Flask) -> None:
    client = accounts_app.test_client()
    started = datetime.now(UTC)
    with time_machine.travel(started, tick=False):
        for _ in range(PAIR_FREE):
            assert sign_in(client, "ana", "no-es-la-clave") == 401
        assert sign_in(client, "ana", PASSWORD) == 429
    assert audit_rows(accounts_app, "login")[-1].outcome == "throttled"
    with time_machine.travel(started + PAIR_BASE + timedelta(seconds=1), tick=False):
        assert sign_in(client, "ana", PASSWORD) == 302


def test_many_failures_from_one_address_slow_it_but_the_right_password_still_signs_in(accounts_app: Flask) -> None:
    accounts_app.config["LOGIN_SLOWDOWN_SECONDS"] = 0.2  # a short pause in tests (2 s by default)
    client = accounts_app.test_client()
    for number in range(ADDRESS_SLOW_AFTER):
        assert sign_in(client, f"nadie{number}", "x" * 12) == 401
    started = time.monotonic()
    assert sign_in(client, "ana", PASSWORD) == 302
    assert time.monotonic() - started >= 0.1  # slowed: one failure past the threshold adds SLOWDOWN_STEP
    assert audit_rows(accounts_app, "login")[-1].outcome == "ok"


def test_an_idle_session_expires(accounts_app: Flask) -> None:
    client = accounts_app.test_client()
    assert sign_in(client, "ana", PASSWORD) == 302
    with client.session_transaction(**HTTPS) as session:
        session["seen"] = (datetime.now(UTC) - timedelta(minutes=31)).timestamp()
    response = client.get("/estado", **HTTPS)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    assert audit_rows(accounts_app, "logout")[-1].outcome == "timeout"


@pytest.mark.parametrize("change", ["disable", "reset"])
def test_disabling_a_user_or_resetting_the_password_ends_open_sessions(accounts_app: Flask, change: str) -> None:
    client = accounts_app.test_client()
    assert sign_in(client, "ana", PASSWORD) == 302
    with accounts_app.app_context():
        user = db.session.execute(select(UserAccount).where(UserAccount.username == "ana")).scalar_one()
        if change == "disable":
            set_active(db.session, user, False)
        else:
            reset_password(db.session, user, "otra-clave-larga-nueva")
        db.session.commit()
    assert client.get("/estado", **HTTPS).status_code == 302


def test_a_disabled_user_cannot_sign_in(accounts_app: Flask) -> None:
    with accounts_app.app_context():
        user = db.session.execute(select(UserAccount).where(UserAccount.username == "ana")).scalar_one()
        set_active(db.session, user, False)
        db.session.commit()
    assert sign_in(accounts_app.test_client(), "ana", PASSWORD) == 401


def test_the_interface_is_spanish_by_default_and_english_on_request(accounts_app: Flask) -> None:
    client = accounts_app.test_client()
    page = client.get("/login", **HTTPS).get_data(as_text=True)
    assert "Entrar en Coordina" in page
    token = csrf_token(client)
    client.post("/language", data={"language": "en", "next": "/login", "csrf_token": token}, **HTTPS)
    page = client.get("/login", **HTTPS).get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Sign in to Coordina" in page


def test_the_audit_log_cannot_be_changed_or_deleted(accounts_app: Flask) -> None:
    assert sign_in(accounts_app.test_client(), "ana", "no-es-la-clave") == 401
    with accounts_app.app_context():
        row = db.session.execute(select(AuditEvent)).scalars().first()
        assert row is not None
        row.action = "tampered"
        with pytest.raises(Exception, match="append-only"):
            db.session.commit()
        db.session.rollback()
        db.session.delete(db.session.execute(select(AuditEvent)).scalars().first())
        with pytest.raises(Exception, match="append-only"):
            db.session.commit()
        db.session.rollback()


def test_the_cli_creates_an_agency_and_a_user_and_disables_and_resets(accounts_app: Flask) -> None:
    runner = accounts_app.test_cli_runner()
    made = runner.invoke(args=["agencies", "create", "Guardia Civil uno", "--kind", "state_police",
                               "--territory", "t1"])
    assert made.exit_code == 0, made.output
    agency_id = int(re.search(r"Agency (\d+)", made.output).group(1))  # type: ignore[union-attr]
    created = runner.invoke(args=["users", "create", "gc.uno", "--name", "Agente Uno", "--agency-id", str(agency_id),
                                  "--role", "professional", "--password", "clave-de-agente-uno"])
    assert created.exit_code == 0, created.output
    assert sign_in(accounts_app.test_client(), "gc.uno", "clave-de-agente-uno") == 302
    short = runner.invoke(args=["users", "reset-password", "gc.uno", "--password", "corta"])
    assert short.exit_code != 0
    assert "at least 12 characters" in short.output
    reset = runner.invoke(args=["users", "reset-password", "gc.uno", "--password", "clave-nueva-de-agente"])
    assert reset.exit_code == 0
    assert runner.invoke(args=["users", "disable", "gc.uno"]).exit_code == 0
    assert sign_in(accounts_app.test_client(), "gc.uno", "clave-nueva-de-agente") == 401
    unknown_kind = runner.invoke(args=["agencies", "create", "X", "--kind", "bomberos", "--territory", "t1"])
    assert unknown_kind.exit_code != 0
    assert "unknown agency kind" in unknown_kind.output
