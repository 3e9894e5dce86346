"""Append-only tables, enforced by the database itself: a trigger refuses every update and delete.

The trigger and function names (`<table>_no_update`, `<table>_no_delete`, `<table>_append_only()`)
are the ones the migrations create, so a database built by `create_all` (the tests) and one built
by the migrations refuse the same statements with the same message.
"""

from __future__ import annotations

from sqlalchemy import DDL, event

from engine.db import Base


def append_only_ddl(table: str, message: str) -> dict[str, list[str]]:
    """Return, per dialect, the statements that make `table` refuse updates and deletes with `message`."""
    return {
        "postgresql": [
            f"""CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION '{message}'; END; $$ LANGUAGE plpgsql""",
            f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION {table}_append_only()""",
        ],
        "sqlite": [
            f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
        BEGIN SELECT RAISE(ABORT, '{message}'); END""",
            f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
        BEGIN SELECT RAISE(ABORT, '{message}'); END""",
        ],
    }


def make_append_only(model: type[Base], message: str) -> None:
    """Create the append-only triggers whenever the model's table is created (`create_all`), on either dialect."""
    for dialect, statements in append_only_ddl(model.__tablename__, message).items():
        for statement in statements:
            event.listen(
                model.__table__, "after_create",
                DDL(statement).execute_if(dialect=dialect),  # type: ignore[no-untyped-call]
            )
