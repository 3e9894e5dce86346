"""CI: the shipped protocol (processes/, forms/) verified on 500 generated histories of a year breaks no invariant.

The 500 histories run as ten batches of 50, each with its own seed, so the test processes share them out
with the rest of the suite (about 1.2 s of one core per history here). Every batch lives through every
level of the scale (a history's target level is its index modulo the scale). Longer or other runs:
`flask processes verify --histories N --seed S` / `python -m benchmarks.verifier_bench`.
"""

from __future__ import annotations

import pytest

from engine.definitions import read_directory
from engine.models.agency import DEFAULT_KINDS
from engine.simulation import World
from engine.verifier import Settings, summary, verify
from tests.support.protocol import FORMS, PROCESSES

BATCHES = 10
PER_BATCH = 50


@pytest.mark.parametrize("seed", range(1, BATCHES + 1))
def test_the_shipped_protocol_breaks_no_invariant_over_500_histories_of_a_year(seed: int) -> None:
    report = verify(read_directory(PROCESSES, FORMS), World(dict(DEFAULT_KINDS), "EX"),
                    Settings(histories=PER_BATCH, days=365, seed=seed, workers=1))
    told = "\n".join(summary(report))
    assert report.histories == PER_BATCH, told
    assert report.cases == PER_BATCH, told
    assert report.findings == [], told
    assert report.errors == [], told  # no step refused its generated answers, no timer left unfired
    assert {"bajo", "medio", "alto", "extremo"} <= set(report.levels), told  # every level was lived through
    assert report.incidents > 0, told  # the unhappy paths ran: incidents, late answers, steps never answered
    assert report.late > 0, told
    assert report.unanswered > 0, told
    print(told)  # the speed and coverage, for the CI log (-s or -rA)
