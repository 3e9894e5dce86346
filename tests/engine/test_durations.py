"""Tests for the duration vocabulary of deadlines: ISO durations and dates, working days, the expression helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.durations import WorkingDays, format_hours, parse_datetime, parse_duration
from engine.sandbox import evaluate


def test_duration_parses_hours() -> None:
    assert evaluate("duration('PT72H')", {}) == timedelta(hours=72)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("P7D", timedelta(days=7)), ("P1W", timedelta(weeks=1)), ("P1DT12H", timedelta(days=1, hours=12))],
)
def test_parse_duration_accepts_days_weeks_and_times(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["P1M", "P1Y", "P1Y2M3D"])
def test_parse_duration_refuses_months_and_years(text: str) -> None:
    with pytest.raises(ValueError, match="months or years, which have no fixed length"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["", "P", "PT", "72H", "P1DT"])
def test_parse_duration_refuses_non_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not an ISO-8601 duration"):
        parse_duration(text)


def test_working_days_helper() -> None:
    assert evaluate("working_days(5)", {}) == WorkingDays(5)


def test_parse_datetime_treats_naive_as_utc() -> None:
    assert parse_datetime("2026-03-06T10:00:00") == datetime(2026, 3, 6, 10, tzinfo=UTC)


def test_parse_datetime_keeps_offsets() -> None:
    parsed = parse_datetime("2026-03-06T10:00:00+01:00")
    assert parsed == datetime(2026, 3, 6, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "expected"),
    [(timedelta(hours=72), "72 h"), (timedelta(minutes=90), "2 h"), (timedelta(days=4), "4 d"),
     (timedelta(days=4, hours=12), "4.5 d")],
)
def test_format_hours_writes_hours_up_to_three_days_then_days(delta: timedelta, expected: str) -> None:
    assert format_hours(delta) == expected
