"""Fixtures shared by every test: databases (SQLite and PostgreSQL), a seeded world, a fake clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.actor import Actor
from engine.clock import FakeClock
from engine.db import Base, make_engine
from engine.definitions import forget_cached_definitions
from engine.models import Agency, AgencyKind, Territory, UserAccount
from engine.models.agency import DEFAULT_KINDS
from tests.support.environment import PG_ADMIN_DSN, pg_unavailable_reason, unavailable
from tests.support.world import World


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """Create a throw-away PostgreSQL database for the session (required in CI)."""
    reason = pg_unavailable_reason()
    if reason:
        unavailable(reason)
    name = f"coordina_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """One PostgreSQL engine with the schema created once."""
    engine = make_engine(pg_url)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _truncate_all(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    forget_cached_definitions()  # ids start again: cached definitions would be someone else's


@pytest.fixture(params=["sqlite", "postgresql"])
def db_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database engine with an empty schema: every persistence test runs on both databases."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'test.sqlite'}")
        Base.metadata.create_all(engine)
        yield engine
        engine.dispose()
        return
    engine = request.getfixturevalue("pg_engine")
    _truncate_all(engine)
    yield engine


@pytest.fixture
def session_factory(db_engine: Engine) -> sessionmaker[Session]:
    """Make sessions bound to the test database."""
    return sessionmaker(bind=db_engine, expire_on_commit=False)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for the test body."""
    with session_factory() as s:
        yield s


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock starting on a Monday morning (Madrid), 2026-03-02 09:00 UTC."""
    return FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def world(session: Session) -> World:
    """Seed agency kinds, two territories (Extremadura, Madrid), agencies and users; committed."""
    for code, label in DEFAULT_KINDS.items():
        session.add(AgencyKind(code=code, name=label))
    here = Territory(code="vegas-bajas", name="Mancomunidad Vegas Bajas", region="EX")
    there = Territory(code="madrid-centro", name="Madrid Centro", region="MD")
    session.add_all([here, there])
    session.flush()
    agencies: dict[str, Agency] = {}
    users: dict[str, UserAccount] = {}
    for code in DEFAULT_KINDS:
        agency = Agency(name=f"{code} Vegas Bajas", kind=code, active=True, territories=[here])
        session.add(agency)
        session.flush()
        agencies[code] = agency
        users[code] = UserAccount(username=f"{code}_1", display_name=f"{code} uno", agency_id=agency.id,
                                  roles=["professional"], active=True)
        users[f"{code}_boss"] = UserAccount(username=f"{code}_boss", display_name=f"{code} jefa",
                                            agency_id=agency.id, roles=["professional", "supervisor"],
                                            active=True)
    session.add_all(users.values())
    session.commit()
    return World(here, there, agencies, users)


@pytest.fixture
def system() -> Actor:
    """The system actor (deployments, timers)."""
    return Actor.system()
