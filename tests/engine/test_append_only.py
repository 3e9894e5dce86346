"""The append-only helper creates the same triggers the migrations do, and they refuse changes."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, text
from sqlalchemy.exc import DBAPIError

from engine.db import Base
from engine.models import AuditEvent
from engine.models.append_only import append_only_ddl

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"
TABLES = {
    "audit_event": ("20261122_92df8a512c93_accounts_audit_log_need_to_know.py", "APPEND_ONLY_DDL",
                    "audit_event is append-only"),
    "minutes_version": ("20261201_e7f3a94b0c21_mesa_de_coordinacion.py", "MINUTES_APPEND_ONLY_DDL",
                        "minutes_version is append-only: closed minutes cannot change"),
}


def _migration_ddl(file_name: str, name: str) -> dict[str, list[str]]:
    """Read the DDL constant a migration file declares (without running the migration)."""
    for node in ast.parse((MIGRATIONS / file_name).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id == name:
            value: dict[str, list[str]] = ast.literal_eval(node.value)
            return value
    raise AssertionError(f"{file_name} declares no {name}")


def _words(ddl: dict[str, list[str]]) -> dict[str, list[str]]:
    return {dialect: [re.sub(r"\s+", " ", statement) for statement in statements]
            for dialect, statements in ddl.items()}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_models_create_the_triggers_the_migrations_create(table: str) -> None:
    file_name, constant, message = TABLES[table]
    assert _words(append_only_ddl(table, message)) == _words(_migration_ddl(file_name, constant))


def test_tables_created_from_the_models_refuse_updates_and_deletes() -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine, tables=[Base.metadata.tables[name] for name in TABLES])
    with engine.connect() as connection:
        connection.execute(text("PRAGMA foreign_keys = OFF"))
        connection.execute(insert(AuditEvent).values(at=datetime(2026, 3, 2, 8, tzinfo=UTC), action="login",
                                                     outcome="ok"))
        for statement in ("UPDATE audit_event SET action = 'tampered'", "DELETE FROM audit_event"):
            with pytest.raises(DBAPIError, match="audit_event is append-only"):
                connection.execute(text(statement))
    engine.dispose()
