"""CI: the shipped protocol (processes/, forms/) verified on generated histories of a year breaks no invariant.

60 histories keep CI within its time (about 2 minutes on 2 cores at ~0.55 histories/second); the 500-history
run is `flask processes verify --histories 500` / `python -m benchmarks.verifier_bench --histories 500`.
"""

from __future__ import annotations

from engine.definitions import read_directory
from engine.models.agency import DEFAULT_KINDS
from engine.simulation import World
from engine.verifier import Settings, summary, verify
from tests.support.protocol import FORMS, PROCESSES

HISTORIES = 60


def test_the_shipped_protocol_breaks_no_invariant_over_60_histories_of_a_year() -> None:
    report = verify(read_directory(PROCESSES, FORMS), World(dict(DEFAULT_KINDS), "EX"),
                    Settings(histories=HISTORIES, days=365, seed=1, workers=2))
    told = "\n".join(summary(report))
    assert report.histories == HISTORIES, told
    assert report.cases == HISTORIES, told
    assert report.findings == [], told
    assert {"bajo", "medio", "alto", "extremo"} <= set(report.levels), told  # every level was lived through
    print(told)  # the speed and coverage, for the CI log (-s or -rA)
