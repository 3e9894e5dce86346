"""The API under test: the real protocol deployed, agencies in two territories, users with tokens."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from engine.models import Agency, AuditEvent, OpenTask, Territory, UserAccount
from tests.support.protocol import detection
from tests.support.web import AppFactory
from webapp.auth.sessions import issue_api_token
from webapp.extensions import db

ROOT = Path(__file__).resolve().parents[2]
ROLES: dict[str, list[str]] = {
    "professional": ["professional"],
    "supervisor": ["professional", "supervisor"],
    "designer": ["designer"],
    "admin": ["admin"],
}
# Agencies by their part in the tests' cases: who registers, who gets the first step, who has nothing
# to do with it (same territory), the same kind elsewhere; plus the next agencies of the protocol.
AGENCIES: dict[str, tuple[str, str]] = {
    "health": ("health_centre", "here"),
    "police": ("state_police", "here"),
    "school": ("school", "here"),
    "police_there": ("state_police", "there"),
    "social": ("social_services", "here"),
}


@dataclass
class ApiWorld:
    """The deployed app, its territories, agencies and users, and a client that acts as any of them."""

    app: Flask
    client: FlaskClient
    territories: dict[str, int]
    agencies: dict[str, int]
    password_hash: str
    users: dict[str, int] = field(default_factory=dict)

    def add_user(self, name: str, agency: str | None, roles: list[str]) -> int:
        """Create an active user (of `agency`, a key of AGENCIES, or of none) with PASSWORD."""
        with self.app.app_context():
            user = UserAccount(username=name, display_name=f"{name} (prueba)", roles=roles, active=True,
                               agency_id=self.agencies[agency] if agency else None, password_hash=self.password_hash,
                               failed_logins=0, session_generation=1, language="es")
            db.session.add(user)
            db.session.commit()
            self.users[name] = user.id
        return self.users[name]

    def token(self, user: str) -> str:
        """Return a fresh bearer token of a user (without going through the password check)."""
        with self.app.test_request_context():
            token = issue_api_token(db.session.get_one(UserAccount, self.users[user]), now=datetime.now(UTC))
            db.session.commit()
            return token

    def call(self, user: str | None, method: str, path: str, json: Any = None, **kwargs: Any) -> TestResponse:
        """Call the API as `user` (None: without a token)."""
        headers = dict(kwargs.pop("headers", {}))
        if user is not None:
            headers["Authorization"] = f"Bearer {self.token(user)}"
        return self.client.open(path, method=method, json=json, headers=headers, **kwargs)

    def register(self, user: str = "health", territory: str = "here", **overrides: Any) -> int:
        """Register a detection through the API as `user`; return the case id."""
        body: dict[str, Any] = {"territory_id": self.territories[territory], "detection": detection(),
                                "victim": {"name": "Persona ficticia V", "phone": "600000000"},
                                "aggressor": {"name": "Persona ficticia A"}}
        body.update(overrides)
        response = self.call(user, "POST", "/api/v1/cases", json=body)
        assert response.status_code == 201, response.get_json()
        return int(response.get_json()["id"])

    def open_tasks(self, case_id: int) -> dict[str, OpenTask]:
        """Return the open tasks of a case by element id."""
        with self.app.app_context():
            rows = db.session.execute(select(OpenTask).where(OpenTask.case_id == case_id)).scalars().all()
            return {row.element_id: row for row in rows}

    def task_id(self, case_id: int, element_id: str) -> int:
        """Return the id of an open task of a case."""
        tasks = self.open_tasks(case_id)
        assert element_id in tasks, f"{element_id} not open; open: {sorted(tasks)}"
        return tasks[element_id].id

    def audit(self, action: str, **where: Any) -> list[AuditEvent]:
        """Return the audit events of an action (optionally filtered by column values), oldest first."""
        with self.app.app_context():
            query = select(AuditEvent).where(AuditEvent.action == action)
            for column, value in where.items():
                query = query.where(getattr(AuditEvent, column) == value)
            return list(db.session.execute(query.order_by(AuditEvent.id)).scalars())

    def set_user(self, user: str, **values: Any) -> None:
        """Change columns of a user account directly."""
        with self.app.app_context():
            account = db.session.get_one(UserAccount, self.users[user])
            for column, value in values.items():
                setattr(account, column, value)
            db.session.commit()


def build_world(make_app: AppFactory, password_hash: str) -> ApiWorld:
    """Deploy the real protocol and create two territories and the agencies of AGENCIES."""
    app = make_app(PROCESSES_DIR=ROOT / "processes", FORMS_DIR=ROOT / "forms")
    result = app.test_cli_runner().invoke(args=["processes", "deploy"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        territories = {
            "here": Territory(code="vegas-bajas", name="Mancomunidad Vegas Bajas", region="EX"),
            "there": Territory(code="madrid-centro", name="Madrid Centro", region="MD"),
        }
        db.session.add_all(territories.values())
        db.session.flush()
        agencies = {key: Agency(name=f"{kind} {where}", kind=kind, active=True, territories=[territories[where]])
                    for key, (kind, where) in AGENCIES.items()}
        db.session.add_all(agencies.values())
        db.session.commit()
        return ApiWorld(app, app.test_client(), {k: t.id for k, t in territories.items()},
                        {k: a.id for k, a in agencies.items()}, password_hash)


def fields_of(response: TestResponse) -> Mapping[str, list[str]]:
    """Return the per-field messages of a 422 answer (asserting the envelope)."""
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert (error["status"], error["code"]) == (422, "invalid_data")
    fields: Mapping[str, list[str]] = error["fields"]
    return fields


def agency_queue(api: ApiWorld, user: str) -> dict[str, dict[str, Any]]:
    response = api.call(user, "GET", "/api/v1/tasks?scope=agency")
    assert response.status_code == 200, response.get_json()
    return {item["element_id"]: item for item in response.get_json()["items"]}
