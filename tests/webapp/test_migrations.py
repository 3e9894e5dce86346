"""Migrations: from an empty database to head on SQLite and PostgreSQL, matching the models exactly."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, select, text

import engine.models  # noqa: F401 - every table on Base.metadata
from engine.db import Base
from engine.models import AgencyKind
from engine.models.agency import DEFAULT_KINDS
from tests.support.environment import IN_CI, PG_ADMIN_DSN, pg_unavailable_reason
from tests.support.web import app_config
from webapp import MIGRATIONS_DIR, create_app

REVISION_FILE = re.compile(r"^\d{8}_[0-9a-f]+_[a-z0-9_]+\.py$")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database (never the shared test schema made by create_all)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.sqlite'}"
        return
    reason = pg_unavailable_reason()
    if reason:
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)")
        pytest.skip(reason)
    name = f"coordina_migrate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def head_revision() -> str | None:
    """Return the newest revision of migrations/."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


def test_revision_files_are_date_prefixed_and_form_one_line() -> None:
    files = sorted(p.name for p in (MIGRATIONS_DIR / "versions").glob("*.py"))
    assert files, "no revision"
    assert all(REVISION_FILE.match(name) for name in files), files
    assert head_revision() is not None  # a single head (several would raise)


def test_upgrading_an_empty_database_gives_exactly_the_models_schema(empty_database: str) -> None:
    app = create_app(app_config(empty_database))
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    database = create_engine(empty_database)
    try:
        with database.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head_revision()
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            kinds = dict(conn.execute(select(AgencyKind.code, AgencyKind.name)).all())
        assert kinds == DEFAULT_KINDS
    finally:
        database.dispose()
        with app.app_context():
            from webapp.extensions import db

            db.engine.dispose()


def test_the_migrated_database_queues_completed_steps_for_the_board(empty_database: str) -> None:
    app = create_app(app_config(empty_database))
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    database = create_engine(empty_database)
    try:
        with database.begin() as conn:
            conn.execute(text("INSERT INTO territory (id, code, name) VALUES (1, 't', 'T')"))
            conn.execute(text("INSERT INTO case_file (id, reference, territory_id, status, facts, created_at, "
                              "updated_at, version) VALUES (1, 'VG-1', 1, 'active', '{}', :at, :at, 1)"),
                         {"at": "2026-03-02 09:00:00"})
            for action, due in (("completed", "2026-03-03 09:00:00"), ("completed", None), ("created", "2026-03-03")):
                conn.execute(text("INSERT INTO task_event (case_id, action, at, due_at) VALUES (1, :a, :at, :due)"),
                             {"a": action, "at": "2026-03-02 10:00:00", "due": due})
            queued = conn.execute(text("SELECT e.action, e.due_at IS NOT NULL FROM step_timing_pending p "
                                       "JOIN task_event e ON e.id = p.event_id")).all()
        assert [tuple(row) for row in queued] == [("completed", True)]
    finally:
        database.dispose()
        with app.app_context():
            from webapp.extensions import db

            db.engine.dispose()


def test_migrated_sqlite_never_reuses_the_id_of_a_deleted_task(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'migrated.sqlite'}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "test-only"})
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(tmp_path / "migrated.sqlite") as conn:
        for table in ("open_task", "due_timer"):
            ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
            assert "AUTOINCREMENT" in ddl, table  # a table rebuilt by a migration must keep it
