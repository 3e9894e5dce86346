"""Protocol fixtures: the real processes/ and forms/ deployed into the synthetic world, and a driver."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from engine.clock import FakeClock
from engine.definitions import read_directory
from engine.deploy import deploy
from engine.forms import FormDefinition, load_catalog
from tests.support.protocol import (
    FORMS,
    PROCESSES,
    Protocol,
)
from tests.support.world import World


@pytest.fixture
def protocol_forms() -> dict[str, FormDefinition]:
    """Every form of forms/ (all must be valid)."""
    catalog, problems = load_catalog(FORMS)
    assert problems == []
    return catalog


@pytest.fixture
def protocol(session: Session, world: World, clock: FakeClock, protocol_forms: dict[str, FormDefinition]) -> Protocol:
    """The real protocol deployed, ready to drive."""
    deploy(session, read_directory(PROCESSES, FORMS), actor="tests", now=clock.now())
    session.commit()
    return Protocol(session, world, clock, protocol_forms)
