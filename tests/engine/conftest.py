"""Engine fixtures: the test processes and forms of this folder, deployed on demand."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from engine.clock import FakeClock
from engine.definitions import SourceFile, read_directory
from engine.deploy import DeployResult, deploy
from engine.forms import FormDefinition, load_catalog

HERE = Path(__file__).parent
BPMN_DIR = HERE / "bpmn"
FORMS_DIR = HERE / "forms"


@pytest.fixture
def forms() -> dict[str, FormDefinition]:
    """The test forms (note, assessment)."""
    catalog, problems = load_catalog(HERE / "forms")
    assert problems == []
    return catalog


@pytest.fixture
def deployed(session: Session, world: object, forms: dict[str, FormDefinition], clock: FakeClock) -> DeployResult:
    """Deploy every test BPMN/DMN file and commit."""
    result = deploy(session, read_directory(BPMN_DIR, FORMS_DIR), actor="tests", now=clock.now())
    session.commit()
    return result


def with_forms(files: Iterable[SourceFile]) -> list[SourceFile]:
    """Return the files with the test forms beside them (a first deployment needs the forms its steps use)."""
    return [*files, *read_directory(FORMS_DIR)]


def source(name: str, replace: dict[str, str] | None = None) -> SourceFile:
    """Read a test file, optionally with text replaced (to make a new version or a broken one)."""
    text = (BPMN_DIR / name).read_text(encoding="utf-8")
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    return SourceFile(name, text.encode("utf-8"))
