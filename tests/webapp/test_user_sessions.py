"""Sessions that really end: kept on the server, revoked on logout, password, disabling and role changes.

A saved cookie or API token is replayed after each event; "Mis sesiones" lists one's sessions and closes
the others; reading pages writes `last_seen_at` at most once a minute.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from engine.models import Agency, Territory, UserAccount, UserSession
from tests.support.web import PASSWORD, AppFactory, Browser
from webapp.extensions import db

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@pytest.fixture
def accounts(make_app: AppFactory, password_hash: str) -> Flask:
    """An app with one agency and two users (ana, a professional; admin), CSRF on, cookies over HTTP."""
    app = make_app(SESSION_COOKIE_SECURE=False)
    with app.app_context():
        territory = Territory(code="t1", name="Territorio uno", region="EX")
        agency = Agency(name="Servicios sociales uno", kind="social_services", territories=[territory])
        db.session.add_all([territory, agency])
        db.session.flush()
        for username, roles in (("ana", ["professional"]), ("admin", ["admin"])):
            db.session.add(UserAccount(username=username, display_name=username.capitalize(), roles=roles,
                                       agency_id=agency.id, active=True, password_hash=password_hash,
                                       failed_logins=0, session_generation=1, language="es"))
        db.session.commit()
    return app


def browser(app: Flask, user_agent: str = FIREFOX) -> Browser:
    """Return a browser signed in as ana."""
    signed_in = Browser(app.test_client())
    signed_in.client.environ_base["HTTP_USER_AGENT"] = user_agent
    signed_in.login("ana")
    return signed_in


def replay(app: Flask, saved: Browser) -> FlaskClient:
    """Return a new client carrying the session cookie `saved` had (as an attacker who copied it)."""
    cookie = saved.client.get_cookie("session")
    assert cookie is not None
    client = app.test_client()
    client.set_cookie("session", cookie.value)
    return client


def api_token(app: Flask) -> dict[str, str]:
    """Return the API headers of a fresh token of ana's."""
    response = app.test_client().post("/api/v1/auth/token", json={"username": "ana", "password": PASSWORD})
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


def is_signed_in(client: FlaskClient) -> bool:
    """Tell whether a client's cookie still opens a page (a redirect to the login page if not)."""
    response = client.get("/estado")
    assert response.status_code in (200, 302)
    return response.status_code == 200 and "/login" not in response.headers.get("Location", "")


def test_a_cookie_saved_before_logout_does_not_open_pages_afterwards(accounts: Flask) -> None:
    signed_in = browser(accounts)
    copied = replay(accounts, signed_in)
    assert is_signed_in(copied)
    assert signed_in.post("/logout").status_code == 302
    response = copied.get("/estado")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    assert not is_signed_in(signed_in.client)


@pytest.mark.parametrize("change", [
    ["users", "disable", "ana"],
    ["users", "reset-password", "ana", "--password", "otra-clave-larga-nueva"],
    ["users", "set-roles", "ana", "--role", "professional", "--role", "supervisor"],
])
def test_disabling_a_new_password_or_new_roles_end_every_session_and_token(accounts: Flask,
                                                                            change: list[str]) -> None:
    signed_in, headers = browser(accounts), api_token(accounts)
    assert accounts.test_client().get("/api/v1/me", headers=headers).status_code == 200
    done = accounts.test_cli_runner().invoke(args=change)
    assert done.exit_code == 0, done.output
    assert not is_signed_in(signed_in.client)
    assert accounts.test_client().get("/api/v1/me", headers=headers).status_code == 401
    with accounts.app_context():
        reasons = db.session.execute(select(UserSession.revoked_reason).order_by(UserSession.id)).scalars().all()
    assert reasons == [{"disable": "disabled", "reset-password": "password", "set-roles": "roles"}[change[1]]] * 2


def test_new_roles_apply_from_the_next_sign_in(accounts: Flask) -> None:
    done = accounts.test_cli_runner().invoke(args=["users", "set-roles", "ana", "--role", "supervisor"])
    assert done.exit_code == 0, done.output
    me = accounts.test_client().get("/api/v1/me", headers=api_token(accounts)).get_json()
    assert me["roles"] == ["supervisor"]
    assert [e.detail for e in audit_events(accounts, "user.roles")] == [{"from": ["professional"],
                                                                          "to": ["supervisor"]}]


def audit_events(app: Flask, action: str) -> list[object]:
    from engine.models import AuditEvent

    with app.app_context():
        return list(db.session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars())


def test_my_sessions_lists_browsers_and_tokens_and_marks_this_one(accounts: Flask) -> None:
    here, there = browser(accounts, FIREFOX), browser(accounts, CHROME)
    api_token(accounts)
    page = here.get("/sesiones/").get_data(as_text=True)
    assert "Mis sesiones" in page
    assert page.count("<tr") == 4  # a header row and three sessions
    assert "Firefox · Linux" in page
    assert "Chrome · Windows" in page
    assert page.count("Esta sesión") == 1
    current_row = next(row for row in page.split("<tr") if "Esta sesión" in row)
    assert "Firefox · Linux" in current_row
    assert "Mozilla" not in page  # a summary, not the whole User-Agent
    assert is_signed_in(there.client)


def test_close_the_others_ends_every_other_browser_and_token_but_not_this_one(accounts: Flask) -> None:
    here, there, headers = browser(accounts), browser(accounts, CHROME), api_token(accounts)
    missing_token = here.client.post("/sesiones/cerrar-las-demas")
    assert missing_token.status_code == 400  # CSRF
    assert is_signed_in(there.client)
    page = here.post("/sesiones/cerrar-las-demas", follow_redirects=True).get_data(as_text=True)
    assert "Se han cerrado 2 sesiones." in page
    assert page.count("<tr") == 2  # a header row and this session
    assert is_signed_in(here.client)
    assert not is_signed_in(there.client)
    assert accounts.test_client().get("/api/v1/me", headers=headers).status_code == 401
    [event] = audit_events(accounts, "session.close_others")
    assert event.detail == {"closed": 2}  # type: ignore[attr-defined]


def test_an_api_client_cannot_close_browser_sessions_with_a_cookie_less_post(accounts: Flask) -> None:
    here, headers = browser(accounts), api_token(accounts)
    response = accounts.test_client().post("/sesiones/cerrar-las-demas", headers=headers)
    assert response.status_code in (302, 400)  # to the login page or refused for CSRF: nothing closed
    assert is_signed_in(here.client)


def test_last_seen_is_written_at_most_once_a_minute(accounts: Flask) -> None:
    here = browser(accounts)

    def last_seen() -> datetime:
        with accounts.app_context():
            return db.session.execute(select(UserSession.last_seen_at)).scalar_one()

    first = last_seen()
    for _ in range(3):
        assert is_signed_in(here.client)
    assert last_seen() == first
    with accounts.app_context():
        db.session.execute(update(UserSession).values(last_seen_at=first - timedelta(minutes=2)))
        db.session.commit()
    assert is_signed_in(here.client)
    assert last_seen() > first - timedelta(seconds=1)


def test_a_session_idle_on_the_server_ends_even_with_a_fresh_cookie(accounts: Flask) -> None:
    here = browser(accounts)
    idle = accounts.config["IDLE_TIMEOUT"]
    with accounts.app_context():
        db.session.execute(update(UserSession).values(last_seen_at=datetime.now(UTC) - idle - timedelta(minutes=2)))
        db.session.commit()
    assert not is_signed_in(here.client)


def test_the_database_keeps_no_usable_session_key(accounts: Flask) -> None:
    here = browser(accounts)
    with here.client.session_transaction() as cookie_session:
        key = cookie_session["sid"]
    with accounts.app_context():
        stored = db.session.execute(select(UserSession.key_hash)).scalar_one()
    assert key not in stored
    assert len(stored) == 64


def test_sessions_ended_long_ago_are_forgotten_at_the_next_sign_in(accounts: Flask) -> None:
    browser(accounts)
    with accounts.app_context():
        db.session.execute(update(UserSession).values(created_at=datetime.now(UTC) - timedelta(days=8)))
        db.session.commit()
    browser(accounts)
    with accounts.app_context():
        assert len(db.session.execute(select(UserSession.id)).all()) == 1


def test_a_token_signed_out_through_the_api_is_401_afterwards(accounts: Flask) -> None:
    headers, other = api_token(accounts), api_token(accounts)
    client = accounts.test_client()
    assert client.delete("/api/v1/auth/token", headers=headers).get_json() == {"revoked": True}
    replayed = client.get("/api/v1/me", headers=headers)
    assert replayed.status_code == 401
    assert replayed.headers["WWW-Authenticate"] == "Bearer error=invalid_token"
    assert client.get("/api/v1/me", headers=other).status_code == 200  # her other tokens stay
    assert [e.outcome for e in audit_events(accounts, "logout")] == ["ok"]  # type: ignore[attr-defined]
