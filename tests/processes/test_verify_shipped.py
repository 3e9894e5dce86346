"""CI: the shipped protocol (processes/, forms/) verified on 500 generated histories of a year breaks no invariant."""

from __future__ import annotations

from engine.models.agency import DEFAULT_KINDS
from engine.registry import read_directory
from engine.simulation import World
from engine.verifier import Settings, summary, verify
from tests.processes.conftest import FORMS, PROCESSES


def test_the_shipped_protocol_breaks_no_invariant_over_500_histories_of_a_year() -> None:
    report = verify(read_directory(PROCESSES, FORMS), World(dict(DEFAULT_KINDS), "EX"),
                    Settings(histories=500, days=365, seed=1, workers=2))
    told = "\n".join(summary(report))
    assert report.histories == 500, told
    assert report.cases == 500, told
    assert report.findings == [], told
    assert {"bajo", "medio", "alto", "extremo"} <= set(report.levels), told  # every level was lived through
    print(told)  # the speed and coverage, for the CI log (-s or -rA)
