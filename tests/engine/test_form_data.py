"""Generated answers: a choice the form refused is not drawn again at the same step while others remain."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from engine.form_data import Leaning, reanswer
from engine.forms import FormDefinition

LEVELS = ("no_apreciado", "bajo", "medio", "alto", "extremo")
REVIEW = FormDefinition("review", "Revisión", {"type": "object", "properties": {
    "final_level": {"type": "string", "enum": list(LEVELS)},
    "note": {"type": "string"},
}}, {})
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_a_refused_level_is_not_drawn_again_so_the_only_accepted_one_comes_within_the_scale_s_length() -> None:
    """The server accepts only extremo (the computed level): every other level is tried at most once."""
    for seed in range(200):
        rng = random.Random(seed)  # noqa: S311 -- reproducible answers, not secrecy
        leaning = Leaning(LEVELS, "bajo", 0.1)
        data = {"final_level": "bajo", "note": "x"}
        refused: dict[str, list[object]] = {}
        tries = 1
        while data["final_level"] != "extremo":
            data = reanswer(REVIEW, data, ["final_level"], rng, NOW, leaning, attempt=tries, refused=refused)
            tries += 1
        assert tries <= len(LEVELS), (seed, refused)
        assert data["note"] == "x"  # the fields not refused are kept


def test_once_every_choice_was_refused_the_draw_goes_on_among_all_of_them() -> None:
    rng = random.Random(1)  # noqa: S311 -- reproducible answers, not secrecy
    refused: dict[str, list[object]] = {"final_level": list(LEVELS)}
    drawn = {reanswer(REVIEW, {"final_level": "bajo"}, ["final_level"], rng, NOW, refused=refused)["final_level"]
             for _ in range(50)}
    assert drawn <= set(LEVELS)
    assert len(drawn) > 1
