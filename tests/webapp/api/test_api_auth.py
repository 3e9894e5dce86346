"""API authentication: tokens for passwords, bearer tokens on every call, and every way a token fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from engine.models import UserAccount
from tests.support.api import ApiWorld, fields_of
from tests.support.web import PASSWORD
from webapp.auth.operations import create_user, reset_password, set_active
from webapp.auth.throttle import PAIR_FREE
from webapp.auth.tokens import TOKEN_LIFETIME, issue_token
from webapp.extensions import db


def sign_in(api: ApiWorld, username: str, password: str = PASSWORD) -> tuple[int, dict[str, Any]]:
    response = api.call(None, "POST", "/api/v1/auth/token", json={"username": username, "password": password})
    return response.status_code, response.get_json()


def test_a_password_buys_a_bearer_token_that_opens_the_api(api: ApiWorld) -> None:
    with api.app.app_context():
        user = create_user(db.session(), username="ana", display_name="Ana Prueba", agency_id=api.agencies["social"],
                           roles=["professional"], password=PASSWORD)
        db.session.commit()
        user_id = user.id
    before = datetime.now(UTC)
    status, body = sign_in(api, "ana")
    assert status == 200
    assert body["token_type"] == "Bearer"
    expires_at = datetime.fromisoformat(str(body["expires_at"]))
    assert before + TOKEN_LIFETIME <= expires_at <= datetime.now(UTC) + TOKEN_LIFETIME
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.get_json() == {
        "id": user_id, "username": "ana", "display_name": "Ana Prueba", "roles": ["professional"],
        "agency": {"id": api.agencies["social"], "name": "social_services here", "kind": "social_services"},
        "territories": [{"id": api.territories["here"], "code": "vegas-bajas", "name": "Mancomunidad Vegas Bajas"}],
    }
    assert [e.outcome for e in api.audit("login", user_id=user_id)] == ["ok"]
    assert "Set-Cookie" not in me.headers  # the API keeps no session


def test_a_user_without_agency_is_described_without_one(api: ApiWorld) -> None:
    me = api.call("nobody", "GET", "/api/v1/me").get_json()
    assert (me["agency"], me["territories"]) == (None, [])


def test_a_wrong_password_is_401_and_audited_as_failed(api: ApiWorld) -> None:
    status, body = sign_in(api, "police", "no-es-la-clave-correcta")
    assert status == 401
    assert body == {"error": {"status": 401, "code": "unauthorized", "message": "Identificación necesaria"}}
    assert sign_in(api, "nadie-con-este-nombre")[0] == 401
    assert [e.outcome for e in api.audit("login", user_id=api.users["police"])] == ["failed"]
    assert len(api.audit("login", outcome="failed")) == 2


def test_repeated_failures_make_the_address_wait_with_429(api: ApiWorld) -> None:
    for _ in range(PAIR_FREE):
        assert sign_in(api, "police", "no-es-la-clave-correcta")[0] == 401
    response = api.call(None, "POST", "/api/v1/auth/token", json={"username": "police", "password": PASSWORD})
    assert response.status_code == 429  # the right password, too soon
    assert response.get_json()["error"]["code"] == "too_many_requests"
    assert 1 <= int(response.headers["Retry-After"]) <= 5
    assert api.audit("login", user_id=api.users["police"])[-1].outcome == "throttled"


def test_the_token_request_is_validated(api: ApiWorld) -> None:
    response = api.call(None, "POST", "/api/v1/auth/token", json={"username": "police", "clave": PASSWORD})
    assert fields_of(response) == {"password": ["Missing data for required field."], "clave": ["Unknown field."]}
    not_json = api.client.post("/api/v1/auth/token", data="{no json", content_type="application/json")
    assert not_json.status_code == 400
    assert not_json.get_json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-token", "Basic cG9saWNlOnNlY3JldA==", "Token {token}", "Bearer {token}x"],
)
def test_a_call_without_a_valid_bearer_token_is_401(api: ApiWorld, authorization: str | None) -> None:
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.format(token=api.token("police"))
    response = api.client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["error"]["status"] == 401


def test_a_token_signed_with_another_key_is_401(api: ApiWorld) -> None:
    forged = issue_token("not-the-app-key", api.users["police"], 1, "any-session-key")
    response = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer error=invalid_token"


def test_a_token_expires_after_its_lifetime(api: ApiWorld) -> None:
    issued_at = datetime.now(UTC)
    with time_machine.travel(issued_at, tick=False):
        token = api.token("police")
    headers = {"Authorization": f"Bearer {token}"}
    with time_machine.travel(issued_at + TOKEN_LIFETIME - timedelta(minutes=1), tick=False):
        assert api.client.get("/api/v1/me", headers=headers).status_code == 200
    with time_machine.travel(issued_at + TOKEN_LIFETIME + timedelta(seconds=2), tick=False):
        expired = api.client.get("/api/v1/me", headers=headers)
    assert expired.status_code == 401
    assert expired.headers["WWW-Authenticate"] == "Bearer error=invalid_token"


@pytest.mark.parametrize("change", ["disable", "reset_password"])
def test_disabling_a_user_or_resetting_her_password_voids_her_tokens(api: ApiWorld, change: str) -> None:
    token = api.token("police")
    headers = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/api/v1/me", headers=headers).status_code == 200
    with api.app.app_context():
        user = db.session.get_one(UserAccount, api.users["police"])
        if change == "disable":
            set_active(db.session(), user, False)
        else:
            reset_password(db.session(), user, "otra-clave-larga-nueva")
        db.session.commit()
    assert api.client.get("/api/v1/me", headers=headers).status_code == 401
    if change == "disable":
        assert sign_in(api, "police")[0] == 401  # and no new token either


def test_the_openapi_document_needs_no_token(api: ApiWorld) -> None:
    assert api.client.get("/api/v1/openapi.json").status_code == 200
