"""Where the tests run: the PostgreSQL server to use, and whether this is CI (where nothing may be skipped)."""

from __future__ import annotations

import os

import psycopg
import pytest

PG_ADMIN_DSN = os.environ.get("COORDINA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip a test whose real part is missing here, or fail it in CI, where everything must run."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: these tests must run)")
    pytest.skip(reason)


def pg_unavailable_reason() -> str | None:
    """Return why the PostgreSQL server cannot be used here, or None when it can."""
    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {exc}"
