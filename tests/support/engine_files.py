"""The engine tests' own processes, forms and invariants (tests/engine/...), read as deploy input."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.definitions import SourceFile, read_directory

ENGINE_TESTS = Path(__file__).resolve().parents[1] / "engine"
BPMN_DIR = ENGINE_TESTS / "bpmn"
FORMS_DIR = ENGINE_TESTS / "forms"
INVARIANTS_DIR = ENGINE_TESTS / "invariants"  # a broken follow-up and the invariants that catch it
INVARIANTS = "test.invariants.json"


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



def protocol_files(*replaced: SourceFile) -> list[SourceFile]:
    """The test processes, forms, the broken follow-up and its invariants (some replaced)."""
    names = {f.name for f in replaced}
    files = [*read_directory(BPMN_DIR, FORMS_DIR), *read_directory(INVARIANTS_DIR)]
    return [*(f for f in files if f.name not in names), *replaced]


def invariants_file(change: Any) -> SourceFile:
    """The test invariants with `change(raw)` applied."""
    raw = json.loads((INVARIANTS_DIR / INVARIANTS).read_text(encoding="utf-8"))
    change(raw)
    return SourceFile(INVARIANTS, json.dumps(raw).encode("utf-8"))
