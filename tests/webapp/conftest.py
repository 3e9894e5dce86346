"""Web app fixtures: an app on the test database (SQLite and PostgreSQL), its client and CLI runner."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from engine.models import AgencyKind
from engine.models.agency import DEFAULT_KINDS
from webapp import create_app
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
