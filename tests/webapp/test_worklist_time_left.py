"""Time left in words on each worklist row, at its boundaries, in Spanish and English."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask_babel import force_locale

from webapp.worklist.timeleft import time_left

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("delta", "spanish", "english"), [
    (timedelta(minutes=45), "vence en 45 min", "due in 45 min"),
    (timedelta(seconds=1), "vence en 1 min", "due in 1 min"),
    (timedelta(minutes=59, seconds=59), "vence en 60 min", "due in 60 min"),
    (timedelta(hours=1), "vence en 1 h", "due in 1 h"),
    (timedelta(hours=3), "vence en 3 h", "due in 3 h"),
    (timedelta(hours=23, minutes=59), "vence en 23 h", "due in 23 h"),
    (timedelta(hours=24), "vence mañana", "due tomorrow"),
    (timedelta(hours=47, minutes=59), "vence mañana", "due tomorrow"),
    (timedelta(hours=48), "vence en 2 días", "due in 2 days"),
    (timedelta(seconds=-1), "vencida hace 1 min", "overdue by 1 min"),
    (timedelta(hours=-5), "vencida hace 5 h", "overdue by 5 h"),
    (timedelta(hours=-24), "vencida hace 1 día", "overdue by 1 day"),
    (timedelta(days=-2), "vencida hace 2 días", "overdue by 2 days"),
])
def test_time_left_in_words(app: Flask, delta: timedelta, spanish: str, english: str) -> None:
    with app.test_request_context():
        with force_locale("es"):
            assert time_left(NOW + delta, NOW) == spanish
        with force_locale("en"):
            assert time_left(NOW + delta, NOW) == english


def test_no_deadline_no_words(app: Flask) -> None:
    with app.test_request_context():
        assert time_left(None, NOW) == ""
