"""Web app fixtures: an app on the test database (SQLite and PostgreSQL), its client and CLI runner."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from engine.actor import Actor
from engine.clock import FakeClock
from engine.execution import complete_task, start_case
from engine.forms import FormDefinition, load_catalog
from engine.models import Agency, AgencyKind, AuditEvent, OpenTask, Territory, UserAccount
from engine.models.agency import DEFAULT_KINDS
from tests.processes.conftest import detection
from webapp import create_app
from webapp.auth.passwords import hash_password
from webapp.extensions import db

ENGINE_TESTS = Path(__file__).parent.parent / "engine"
BPMN_DIR = ENGINE_TESTS / "bpmn"
FORMS_DIR = ENGINE_TESTS / "forms"

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


@pytest.fixture
def make_app(db_engine: Engine) -> Iterator[AppFactory]:
    """Build apps on the test database (schema from the models, agency kinds seeded as the migration does)."""
    with db_engine.begin() as conn:
        conn.execute(insert(AgencyKind), [{"code": c, "name": n} for c, n in DEFAULT_KINDS.items()])
    url = db_engine.url.render_as_string(hide_password=False)
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        app = create_app(app_config(url, **overrides))
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            # Close the app's pooled connections: PostgreSQL truncates between tests.
            for engine in db.engines.values():
                engine.dispose()


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    """The app, with the engine's test processes and forms as PROCESSES_DIR and FORMS_DIR."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A runner of the app's `flask` commands."""
    return app.test_cli_runner()


@pytest.fixture
def processes_dir(tmp_path: Path) -> Path:
    """A writable copy of the test processes, to break or extend."""
    target = tmp_path / "processes"
    shutil.copytree(BPMN_DIR, target)
    return target


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


@pytest.fixture(scope="session")
def password_hash() -> str:
    """An argon2 hash of PASSWORD, computed once: hashing is slow on purpose."""
    return hash_password(PASSWORD)


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
        from tests.processes.conftest import risk_answers  # the real protocol's answers, shared with its tests

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


@pytest.fixture
def site(make_app: AppFactory, password_hash: str) -> Site:
    """The real processes/ and forms/ deployed; agencies of each kind here, state police there; users."""
    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))  # a Monday morning in Madrid
    app = make_app(PROCESSES_DIR=ROOT / "processes", FORMS_DIR=ROOT / "forms", SESSION_COOKIE_SECURE=False,
                   CLOCK=clock)
    deployed = app.test_cli_runner().invoke(args=["processes", "deploy"])
    assert deployed.exit_code == 0, deployed.output
    forms, problems = load_catalog(ROOT / "forms")
    assert problems == []
    with app.app_context():
        territories = {"here": Territory(code="vegas-bajas", name="Mancomunidad Vegas Bajas", region="EX"),
                       "there": Territory(code="madrid-centro", name="Madrid Centro", region="MD")}
        db.session.add_all(territories.values())
        agencies = {(kind, "here"): Agency(name=f"{label} de Vegas Bajas", kind=kind, territories=[territories["here"]])
                    for kind, label in DEFAULT_KINDS.items()}
        agencies[("state_police", "there")] = Agency(name="Policía estatal de Madrid Centro", kind="state_police",
                                                     territories=[territories["there"]])
        db.session.add_all(agencies.values())
        db.session.flush()
        users = {
            name: UserAccount(username=name, display_name=f"{name.capitalize()} (prueba)", roles=list(roles),
                              agency_id=agencies[(kind, where)].id if kind else None, active=True,
                              password_hash=password_hash, failed_logins=0, session_generation=1, language="es")
            for name, (kind, where, roles) in PEOPLE.items()
        }
        db.session.add_all(users.values())
        db.session.commit()
        return Site(app, clock, {k: t.id for k, t in territories.items()}, {k: a.id for k, a in agencies.items()},
                    {k: u.id for k, u in users.items()}, forms)  # the forms of forms/, as deployed


@pytest.fixture(scope="session", autouse=True)
def compiled_translations() -> None:
    """Compile each webapp/translations .po into the .mo the app reads, when missing or older than the .po."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po_path in (ROOT / "webapp" / "translations").glob("*/LC_MESSAGES/*.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=po_path.parent.parent.name)
        with mo_path.open("wb") as mo_file:
            write_mo(mo_file, catalog)
