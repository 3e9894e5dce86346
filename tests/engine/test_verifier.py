"""The protocol verifier on two small protocols: one safe, one whose intake waits for social services."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.definitions import SourceFile, read_directory
from engine.models import Case, OpenTask
from engine.simulation import Checker, Simulator, World
from engine.verifier import Report, Settings, describe, summary, verify

HERE = Path(__file__).parent / "verifier"
WORLD = World({"state_police": "Policía estatal", "social_services": "Servicios sociales"})
POLICE_STEPS = ("assess", "reassess")


@dataclass(frozen=True)
class Missing:
    """What a checker reports: the invariant, the case, the kind of breach and a sentence."""

    invariant_id: str
    case_id: int
    kind: str
    message: str
    message_en: str


def find_missing(session: Session, now: datetime, case_ids: Sequence[int]) -> list[Missing]:
    """An active case with a risk level has an open police assessment or re-assessment."""
    open_cases = set(session.execute(select(OpenTask.case_id).where(
        OpenTask.element_id.in_(POLICE_STEPS), OpenTask.case_id.in_(case_ids))).scalars())
    cases = session.execute(select(Case.id, Case.risk_level).where(
        Case.id.in_(case_ids), Case.status == "active", Case.risk_level.is_not(None))).all()
    return [Missing("reassessment", case_id, "missing", f"nivel {level} sin revaloración pendiente",
                    f"level {level} with no re-assessment pending")
            for case_id, level in cases if case_id not in open_cases]


def police_checker(_session: Session) -> Checker:
    """The one invariant of these tests, with its titles."""
    return Checker(find_missing, {"reassessment": ("Revaloración pendiente", "Re-assessment pending")})


def protocol(name: str) -> list[SourceFile]:
    return read_directory(HERE / name, HERE / "forms")


def run(name: str, **settings: int) -> Report:
    return verify(protocol(name), WORLD, Settings(**{"histories": 12, "days": 120, **settings}), police_checker)


@pytest.fixture(scope="module")
def safe() -> Report:
    """The safe protocol verified once for the module (a year, so late and missing answers and incidents occur)."""
    return run("safe", histories=12, days=365)


@pytest.fixture(scope="module")
def blocking() -> Report:
    """The blocking protocol verified once for the module."""
    return run("blocking")


def test_a_safe_protocol_breaks_no_invariant(safe: Report) -> None:
    report = safe
    assert report.histories == 12
    assert report.findings == []
    assert report.errors == []
    assert set(report.levels) == {"bajo", "medio", "alto", "extremo"}  # every level of the form was reached


def test_an_intake_that_waits_for_social_services_is_caught_and_shrunk_to_two_events(blocking: Report) -> None:
    [finding] = blocking.findings
    assert finding.invariant_id == "reassessment"
    assert finding.histories >= 1
    # Detection, the assessment; then the case sits at its level with the care plan open and nothing for the police.
    assert [(e.action, e.target) for e in finding.sequence] == [("start", "intake"), ("complete", "assess")]
    assert ("Plan de atención social", "Servicios sociales") in finding.breach.open_steps


def test_the_sequence_is_told_in_spanish_and_english(blocking: Report) -> None:
    finding = blocking.findings[0]
    spanish, english = finding.lines("es"), finding.lines("en")
    assert spanish[0].startswith("día 0, 08:00: detección registrada, «Detección»")
    assert "Policía estatal completa «Valorar el riesgo»" in spanish[1]
    assert "se incumple «Revaloración pendiente»: nivel" in spanish[2]
    assert "Pasos abiertos en ese momento: «Plan de atención social» (Servicios sociales)" in spanish[3]
    assert "completes \"Valorar el riesgo\"" in english[1]
    assert "\"Re-assessment pending\" is broken" in english[2]
    assert any("Secuencia más corta (2 sucesos)" in line for line in summary(blocking))


def test_the_same_seed_gives_the_same_histories_and_sequence() -> None:
    first, second = run("blocking", seed=5, histories=4, days=30), run("blocking", seed=5, histories=4, days=30)
    assert [describe(e) for e in first.findings[0].sequence] == [describe(e) for e in second.findings[0].sequence]
    assert first.findings[0].histories == second.findings[0].histories
    assert (first.levels, first.late, first.incidents) == (second.levels, second.late, second.incidents)


def test_histories_cover_late_and_missing_answers_and_incidents(safe: Report) -> None:
    report = safe
    assert report.late > 0
    assert report.unanswered > 0
    assert report.incidents > 0


def test_a_history_is_the_same_whichever_worker_plays_it() -> None:
    files = protocol("blocking")
    alone = Simulator(files, WORLD, police_checker, days=60, seed=3)
    try:
        expected = [describe(e) for e in alone.history(4).events]
        alone.history(0)  # another history in between leaves nothing behind
        assert [describe(e) for e in alone.history(4).events] == expected
    finally:
        alone.close()


@pytest.mark.parametrize("workers", [2])
def test_worker_processes_find_what_one_process_finds(workers: int) -> None:
    one, many = run("blocking", histories=4, days=30), run("blocking", histories=4, days=30, workers=workers)
    assert [describe(e) for e in one.findings[0].sequence] == [describe(e) for e in many.findings[0].sequence]
    assert one.findings[0].histories == many.findings[0].histories
