"""The web app under test: its configuration, the real protocol's site with users, a signed-in browser."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from engine.actor import Actor
from engine.clock import FakeClock
from engine.execution import complete_task, start_case
from engine.forms import FormDefinition
from engine.models import AuditEvent, OpenTask
from tests.support.engine_files import BPMN_DIR, FORMS_DIR
from tests.support.protocol import detection, risk_answers
from webapp.extensions import db

AppFactory = Callable[..., Flask]


def app_config(url: str, **overrides: Any) -> dict[str, Any]:
    """Return the configuration of a test app on the database at `url`."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-only",
        "SQLALCHEMY_DATABASE_URI": url,
        "PROCESSES_DIR": BPMN_DIR,
        "FORMS_DIR": FORMS_DIR,
        # Deploys in tests are not verified first (test_designer_verify.py turns it on, with few short histories).
        "DESIGNER_VERIFY_BEFORE_DEPLOY": False,
        "DESIGNER_VERIFY_HISTORIES": 4,
        "DESIGNER_VERIFY_DAYS": 30,
        **overrides,
    }


# --- Pages: the real protocol deployed, agencies and users with passwords, a signed-in browser ----------
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "una-clave-larga-de-prueba"
# username -> (agency kind, territory key, roles); one agency per kind and territory.
PEOPLE: dict[str, tuple[str | None, str, tuple[str, ...]]] = {
    "policia": ("state_police", "here", ("professional",)),
    "policia2": ("state_police", "here", ("professional",)),
    "policia.jefa": ("state_police", "here", ("professional", "supervisor")),
    "salud": ("health_centre", "here", ("professional",)),
    "social": ("social_services", "here", ("professional",)),
    "igualdad": ("equality_office", "here", ("professional",)),
    "colegio": ("school", "here", ("professional",)),
    "policia.madrid": ("state_police", "there", ("professional",)),
    "admin": (None, "here", ("admin",)),
    "disenadora": (None, "here", ("designer",)),
}
# The police measures the shipped police_measures table requires at level bajo.
LOW_MEASURES = ["phone_contact", "self_protection_advice", "social_services_referral", "weapons_withdrawal"]


@dataclass
class Site:
    """The app with the real protocol, its agencies (by kind and territory) and users, on a fake clock."""

    app: Flask
    clock: FakeClock
    territories: dict[str, int]
    agencies: dict[tuple[str, str], int]
    users: dict[str, int]
    forms: dict[str, FormDefinition] = field(default_factory=dict)

    def actor(self, username: str) -> Actor:
        """Return the engine actor of a user."""
        kind, where, roles = PEOPLE[username]
        agency = self.agencies[(kind, where)] if kind else None
        return Actor(user_id=self.users[username], name=username, agency_id=agency, roles=frozenset(roles))

    def open_case(self, data: dict[str, Any] | None = None, reporter: str = "salud", **parties: Any) -> int:
        """Register a detection through the engine (as `reporter`); return the case id."""
        with self.app.app_context():
            case, _ = start_case(db.session(), territory_id=self.territories["here"], process_key="intake",
                                 data=data or detection(), now=self.clock.now(), actor=self.actor(reporter),
                                 check_form=True, **parties)
            db.session.commit()
            return case.id

    def tasks(self, case_id: int) -> dict[str, OpenTask]:
        """Return the open tasks of a case by element id."""
        with self.app.app_context():
            rows = db.session.execute(select(OpenTask).where(OpenTask.case_id == case_id)).scalars().all()
            return {row.element_id: row for row in rows}

    def task(self, case_id: int, element_id: str) -> OpenTask:
        """Return one open task of a case."""
        tasks = self.tasks(case_id)
        assert element_id in tasks, f"{element_id} not open; open: {sorted(tasks)}"
        return tasks[element_id]

    def complete(self, case_id: int, element_id: str, data: dict[str, Any], username: str = "policia") -> None:
        """Complete an open task through the engine as `username`."""
        task = self.task(case_id, element_id)
        with self.app.app_context():
            complete_task(db.session(), task.id, data, expected_version=task.version, now=self.clock.now(),
                          actor=self.actor(username))
            db.session.commit()

    def settle_police_line(self, case_id: int) -> None:
        """Do at once the police steps a detection starts beside the complaint: assessment at *bajo*, its review,
        the measures and the safety plan (the police line then waits for its 60-day re-assessment)."""
        self.complete(case_id, "police_risk_assessment", risk_answers("bajo"))
        self.complete(case_id, "reassessment_review", {"final_level": "bajo", "especial_relevancia": False,
                                                       "minors_at_risk": False})
        self.complete(case_id, "apply_police_measures", {"measures_applied": LOW_MEASURES, "weapons_withdrawn": True})
        self.complete(case_id, "personal_safety_plan", {
            "agreed_on": self.clock.now().date().isoformat(), "emergency_contacts_set": True, "safe_places": True,
            "self_protection_advice": True, "plan_summary": "Plan acordado."})

    def audit(self, action: str, **where: Any) -> list[AuditEvent]:
        """Return the audit events of an action (optionally filtered by column values), oldest first."""
        with self.app.app_context():
            query = select(AuditEvent).where(AuditEvent.action == action)
            for column, value in where.items():
                query = query.where(getattr(AuditEvent, column) == value)
            return list(db.session.execute(query.order_by(AuditEvent.id)).scalars())

    def browser(self, username: str | None = None) -> Browser:
        """Return a test client, signed in as `username` through the login form when given."""
        browser = Browser(self.app.test_client())
        if username:
            browser.login(username)
        return browser


@dataclass
class Browser:
    """A test client that signs in through the login page and posts forms with their CSRF token."""

    client: FlaskClient
    token: str = ""

    def login(self, username: str, password: str = PASSWORD) -> None:
        """Sign in through the login form (CSRF protection is on, as in production)."""
        token = csrf_token_of(self.client.get("/login").get_data(as_text=True))
        response = self.client.post("/login", data={"username": username, "password": password, "csrf_token": token})
        assert response.status_code == 302, response.get_data(as_text=True)
        self.token = csrf_token_of(self.client.get("/estado").get_data(as_text=True))

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        """GET a page."""
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: Any = None, **kwargs: Any) -> TestResponse:
        """POST a form with the session's CSRF token (`data` a dict or a list of pairs)."""
        pairs = list(data.items()) if isinstance(data, dict) else list(data or [])
        form = MultiDict([*pairs, ("csrf_token", self.token)])
        return self.client.post(path, data=form, **kwargs)


def csrf_token_of(html: str) -> str:
    """Return the CSRF token a page carries in its forms."""
    match = re.search(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"', html)
    assert match, "the page carries a CSRF token"
    return match.group(1)


def as_form(data: dict[str, Any], **extra: Any) -> list[tuple[str, str]]:
    """Encode typed answers as a browser posts them (yes/no radios, repeated checkboxes)."""
    pairs: list[tuple[str, str]] = []
    for name, value in {**data, **extra}.items():
        if isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        elif isinstance(value, list):
            pairs.extend((name, str(item)) for item in value)
        else:
            pairs.append((name, str(value)))
    return pairs
