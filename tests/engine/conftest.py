"""Engine fixtures: the test processes and forms of this folder, deployed on demand."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from engine.clock import FakeClock
from engine.definitions import read_directory
from engine.deploy import DeployResult, deploy
from engine.forms import FormDefinition, load_catalog
from tests.support.engine_files import BPMN_DIR, FORMS_DIR


@pytest.fixture
def forms() -> dict[str, FormDefinition]:
    """The test forms (note, assessment)."""
    catalog, problems = load_catalog(FORMS_DIR)
    assert problems == []
    return catalog


@pytest.fixture
def deployed(session: Session, world: object, forms: dict[str, FormDefinition], clock: FakeClock) -> DeployResult:
    """Deploy every test BPMN/DMN file and commit."""
    result = deploy(session, read_directory(BPMN_DIR, FORMS_DIR), actor="tests", now=clock.now())
    session.commit()
    return result
