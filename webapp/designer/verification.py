"""The designer's verification: the drafts over the deployed protocol, on generated histories.

A deploy is checked the same way, and the result of a verification of the same files with the same
settings is reused (the verifier is deterministic), so "Verificar" then "Desplegar" plays once.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from engine.definitions import SourceFile
from engine.drafts import draft_files, list_drafts
from engine.verifier import Report, Settings, deployed_protocol, verify, world_of

_REMEMBERED: OrderedDict[str, Report] = OrderedDict()
REMEMBER = 8  # reports kept per process


def settings_of(config: Mapping[str, Any]) -> Settings:
    """Return the designer's verification settings from the app's configuration."""
    seconds = float(config["DESIGNER_VERIFY_SECONDS"])
    return Settings(histories=int(config["DESIGNER_VERIFY_HISTORIES"]), days=int(config["DESIGNER_VERIFY_DAYS"]),
                    seed=1, workers=int(config["DESIGNER_VERIFY_WORKERS"]), budget=seconds,
                    shrink_seconds=seconds / 3)


def verify_drafts(session: Session, settings: Settings) -> tuple[Report, list[str]]:
    """Verify the drafts over the deployed protocol (or the deployed one, without drafts); name the drafts.

    Raises DefinitionError when the drafts do not validate.
    """
    drafts = draft_files(list_drafts(session))
    files = deployed_protocol(session, drafts)
    world = world_of(session)
    key = _digest(files, settings, repr(world))
    report = _REMEMBERED.get(key)
    if report is None:
        report = verify(files, world, settings)
        _REMEMBERED[key] = report
        while len(_REMEMBERED) > REMEMBER:
            _REMEMBERED.popitem(last=False)
    return report, [f.name for f in drafts]


def _digest(files: Sequence[SourceFile], settings: Settings, world: str) -> str:
    digest = hashlib.sha256(f"{settings!r}{world}".encode())
    for f in files:
        digest.update(f.name.encode() + b"\0" + hashlib.sha256(f.content).digest())
    return digest.hexdigest()
