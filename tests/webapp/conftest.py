"""Web app fixtures: an app on the test database (SQLite and PostgreSQL), its client and CLI runner."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from engine.clock import FakeClock
from engine.forms import load_catalog
from engine.models import Agency, AgencyKind, Territory, UserAccount
from engine.models.agency import DEFAULT_KINDS
from tests.support.web import (
    BPMN_DIR,
    PASSWORD,
    PEOPLE,
    ROOT,
    AppFactory,
    Site,
    app_config,
)
from webapp import create_app
from webapp.auth.passwords import hash_password
from webapp.extensions import db


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


@pytest.fixture(scope="session")
def password_hash() -> str:
    """An argon2 hash of PASSWORD, computed once: hashing is slow on purpose."""
    return hash_password(PASSWORD)


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
        partial = mo_path.with_suffix(f".{os.getpid()}.tmp")  # test processes may compile it at once
        with partial.open("wb") as mo_file:
            write_mo(mo_file, catalog)
        partial.replace(mo_path)
