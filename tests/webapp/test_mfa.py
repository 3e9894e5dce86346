"""Multi-factor sign-in: TOTP enrolment, the second step, recovery codes, replay, policy per role, reset, demo."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from engine.actor import Actor
from engine.models import Agency, AuditEvent, Territory, UserMfa
from tests.support.web import AppFactory, csrf_token_of
from webapp.auth.mfa_step import configured_roles
from webapp.auth.operations import create_user
from webapp.auth.throttle import ACCOUNT_FREE
from webapp.demo.seed import DEMO_PASSWORD, seed_demo
from webapp.extensions import db

PASSWORD = "una-clave-larga-de-prueba"


@pytest.fixture
def mfa_app(make_app: AppFactory) -> Flask:
    """An app with a professional, a supervisor, a Mesa coordination member and an administrator."""
    app = make_app(SESSION_COOKIE_SECURE=False, REQUIRE_MFA_ROLES="supervisor,coordinator")
    with app.app_context():
        territory = Territory(code="t1", name="Territorio uno", region="EX")
        social = Agency(name="Servicios sociales uno", kind="social_services", territories=[territory])
        mesa = Agency(name="Coordinación de la Mesa uno", kind="mesa_coordinator", territories=[territory])
        db.session.add_all([territory, social, mesa])
        db.session.flush()
        for username, agency, role in (("ana", social, "professional"), ("jefa", social, "supervisor"),
                                       ("mesa", mesa, "professional"), ("root", None, "admin")):
            create_user(db.session(), username=username, display_name=username.capitalize(),
                        agency_id=agency.id if agency else None, roles=[role], password=PASSWORD)
        db.session.commit()
    return app


def post_form(client: FlaskClient, path: str, data: dict[str, str], page: str | None = None) -> TestResponse:
    """Post a form with the CSRF token of the page it is on (`page`, else `path`)."""
    token = csrf_token_of(client.get(page or path).get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token})


def password_step(client: FlaskClient, username: str, password: str = PASSWORD) -> TestResponse:
    """Give username and password on the login page."""
    return post_form(client, "/login", {"username": username, "password": password})


def enrol(client: FlaskClient) -> tuple[str, list[str]]:
    """Enrol an authenticator on the enrolment page; return its secret and the recovery codes shown."""
    page = client.get("/cuenta/doble-factor").get_data(as_text=True)
    match = re.search(r'id="mfa-secret">([A-Z2-7]+)<', page)
    assert match, page
    assert "<svg" in page  # the QR code is drawn in the page, nothing fetched
    secret = match.group(1)
    done = client.post("/cuenta/doble-factor", data={"code": pyotp.TOTP(secret).now(),
                                                     "csrf_token": csrf_token_of(page)})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.headers["Cache-Control"] == "no-store"
    codes = re.findall(r"<li><code>([a-z2-7]{4}-[a-z2-7]{4})</code></li>", done.get_data(as_text=True))
    assert len(codes) == 10
    return secret, codes


def sign_out(client: FlaskClient) -> None:
    """Sign out with the logout button."""
    assert post_form(client, "/logout", {}, page="/estado").status_code == 302


def second_step(client: FlaskClient, code: str) -> TestResponse:
    """Give a code on the second-step page."""
    return post_form(client, "/login/segundo-factor", {"code": code})


def audit_of(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars())


def test_an_enrolled_user_signs_in_with_a_current_code_and_a_used_one_is_refused(mfa_app: Flask) -> None:
    client = mfa_app.test_client()
    assert password_step(client, "ana").headers["Location"] == "/"  # not required of professionals
    secret, _ = enrol(client)
    with mfa_app.app_context():
        stored = db.session.get(UserMfa, db.session.execute(select(AuditEvent.object_id).where(
            AuditEvent.action == "mfa.enrol")).scalar_one())
        assert stored is not None
        assert stored.secret is not None
        assert secret not in stored.secret
    sign_out(client)

    answer = password_step(client, "ana")
    assert answer.headers["Location"] == "/login/segundo-factor"
    assert client.get("/").status_code == 302  # not signed in before the second step
    assert client.get("/cuenta/doble-factor").headers["Location"] == "/login"  # cannot replace it half-signed-in
    replayed = second_step(client, pyotp.TOTP(secret).now())  # the code that confirmed the enrolment
    assert replayed.status_code == 401
    assert "no es válido o ya se ha usado" in replayed.get_data(as_text=True)
    assert second_step(client, "000000").status_code == 401
    assert second_step(client, "١٢٣٤٥٦").status_code == 401  # digits, but not ASCII ones
    following = pyotp.TOTP(secret).at(time.time() + 30)
    assert second_step(client, following).headers["Location"] == "/"
    assert client.get("/").status_code == 200
    sign_out(client)

    password_step(client, "ana")
    assert second_step(client, following).status_code == 401  # the same code, within its window: replay
    failures = [e for e in audit_of(mfa_app, "login") if e.outcome == "failed"]
    assert [e.detail for e in failures] == [{"step": "second_factor"}] * 4


def test_a_recovery_code_signs_in_once(mfa_app: Flask) -> None:
    client = mfa_app.test_client()
    password_step(client, "ana")
    _, codes = enrol(client)
    sign_out(client)
    password_step(client, "ana")
    assert second_step(client, codes[3].upper()).headers["Location"] == "/"
    sign_out(client)
    password_step(client, "ana")
    assert second_step(client, codes[3]).status_code == 401
    assert len(audit_of(mfa_app, "mfa.recovery_code")) == 1


def test_a_role_that_requires_mfa_must_enrol_before_anything_else(mfa_app: Flask) -> None:
    for username in ("jefa", "mesa"):  # a supervisor; a member of the Mesa's coordination agency
        client = mfa_app.test_client()
        assert password_step(client, username).headers["Location"] == "/cuenta/doble-factor"
        assert client.get("/").status_code == 302
        assert client.get("/estado").status_code == 302
        page = client.get("/cuenta/doble-factor").get_data(as_text=True)
        assert "exige un segundo factor" in page
        for code in ("123456", "١٢٣٤٥٦", "ñ²"):
            wrong = client.post("/cuenta/doble-factor", data={"code": code, "csrf_token": csrf_token_of(page)})
            assert wrong.status_code == 422
        enrol(client)
        assert client.get("/").status_code == 200


def test_an_administrator_requires_mfa_for_a_role_and_resets_a_user_audited(mfa_app: Flask) -> None:
    ana, admin = mfa_app.test_client(), mfa_app.test_client()
    password_step(ana, "ana")
    enrol(ana)
    assert password_step(admin, "root").headers["Location"] == "/"  # admins not required in this app
    page = admin.get("/admin/doble-factor/").get_data(as_text=True)
    assert 'value="supervisor" checked' in page
    assert 'value="professional" checked' not in page
    with mfa_app.app_context():
        ana_id = db.session.execute(select(UserMfa.user_id)).scalar_one()
    reset = post_form(admin, f"/admin/doble-factor/usuarios/{ana_id}/restablecer", {}, page="/admin/doble-factor/")
    assert reset.status_code == 302
    assert [e.object_id for e in audit_of(mfa_app, "user.reset_mfa")] == [ana_id]
    assert password_step(mfa_app.test_client(), "ana").headers["Location"] == "/"  # the password alone again

    token = csrf_token_of(page)
    chosen = admin.post("/admin/doble-factor/politica", data=MultiDict(
        [("required", "professional"), ("required", "admin"), ("csrf_token", token)]))
    assert chosen.status_code == 302
    assert {e.detail["role"]: e.detail["required"] for e in audit_of(mfa_app, "mfa.policy") if e.detail} == {
        "professional": True, "admin": True, "supervisor": False, "coordinator": False}
    assert password_step(mfa_app.test_client(), "ana").headers["Location"] == "/cuenta/doble-factor"
    assert password_step(mfa_app.test_client(), "jefa").headers["Location"] == "/"
    assert post_form(ana, "/admin/doble-factor/politica", {}, page="/estado").status_code == 403


def test_production_requires_mfa_of_supervisors_coordinators_designers_and_admins(make_app: AppFactory) -> None:
    app = make_app()
    with app.test_request_context():
        assert configured_roles() == frozenset()  # testing
        app.testing = False
        assert configured_roles() == {"supervisor", "coordinator", "designer", "admin"}
        app.config["REQUIRE_MFA_ROLES"] = "none"
        assert configured_roles() == frozenset()


def test_the_demo_accounts_sign_in_without_mfa_where_others_must_enrol(make_app: AppFactory) -> None:
    app = make_app(SESSION_COOKIE_SECURE=False, REQUIRE_MFA_ROLES="supervisor,coordinator,designer,admin")
    with app.app_context():
        seed_demo(db.session(), now=datetime.now(UTC), actor=Actor.system("demo"))
        create_user(db.session(), username="root", display_name="Root", agency_id=None, roles=["admin"],
                    password=PASSWORD)
        db.session.commit()
    for username in ("admin", "disenadora"):
        assert password_step(app.test_client(), username, DEMO_PASSWORD).headers["Location"] == "/"
    assert password_step(app.test_client(), "root").headers["Location"] == "/cuenta/doble-factor"


def test_an_api_token_needs_the_second_factor_of_a_user_who_has_or_owes_one(mfa_app: Flask) -> None:
    client = mfa_app.test_client()
    password_step(client, "ana")
    secret, _ = enrol(client)
    api = mfa_app.test_client()
    alone = api.post("/api/v1/auth/token", json={"username": "ana", "password": PASSWORD})
    assert alone.status_code == 401
    assert alone.headers["WWW-Authenticate"] == "Bearer error=second_factor"
    wrong = api.post("/api/v1/auth/token", json={"username": "ana", "password": PASSWORD, "code": "000000"})
    assert wrong.status_code == 401
    code = pyotp.TOTP(secret).at(time.time() + 30)
    issued = api.post("/api/v1/auth/token", json={"username": "ana", "password": PASSWORD, "code": code})
    assert issued.status_code == 200
    token = (issued.get_json() or {})["token"]
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    owing = api.post("/api/v1/auth/token", json={"username": "jefa", "password": PASSWORD})
    assert owing.headers["WWW-Authenticate"] == "Bearer error=mfa_enrolment_required"
    assert [e.detail for e in audit_of(mfa_app, "login") if e.outcome == "failed"] == [{"step": "second_factor"}]


def test_the_cli_resets_a_second_factor_audited(mfa_app: Flask) -> None:
    client = mfa_app.test_client()
    password_step(client, "ana")
    enrol(client)
    result = mfa_app.test_cli_runner().invoke(args=["users", "reset-mfa", "ana"])
    assert result.exit_code == 0, result.output
    assert len(audit_of(mfa_app, "user.reset_mfa")) == 1
    assert password_step(mfa_app.test_client(), "ana").headers["Location"] == "/"


def test_wrong_codes_lock_the_account_even_with_the_right_password_given_between_them(mfa_app: Flask) -> None:
    client = mfa_app.test_client()
    password_step(client, "ana")
    enrol(client)
    sign_out(client)
    for _ in range(ACCOUNT_FREE):
        assert password_step(client, "ana").headers["Location"] == "/login/segundo-factor"
        assert second_step(client, "000000").status_code == 401
    assert password_step(client, "ana").status_code == 429
