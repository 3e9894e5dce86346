"""Tests for the business calendar (national and regional Spanish holidays, Madrid time)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import holidays
import pytest

from engine.calendar import add_working_days, is_working_day, working_day_on_or_after
from engine.localtime import LOCAL_TZ


def madrid(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    """Build an aware datetime at the given Madrid wall-clock time."""
    return datetime(year, month, day, hour, minute, tzinfo=LOCAL_TZ)


def test_weekend_is_not_a_working_day() -> None:
    assert is_working_day(date(2026, 3, 6), None)  # Friday
    assert not is_working_day(date(2026, 3, 7), None)  # Saturday
    assert not is_working_day(date(2026, 3, 8), None)  # Sunday


def test_friday_plus_one_working_day_is_monday_same_local_time() -> None:
    result = add_working_days(madrid(2026, 3, 6), 1, None)
    assert result.astimezone(LOCAL_TZ) == madrid(2026, 3, 9)


@pytest.mark.parametrize("holiday", [date(2026, 12, 8), date(2026, 10, 12)])
def test_national_holiday_is_skipped_everywhere(holiday: date) -> None:
    assert holiday.weekday() < 5
    assert not is_working_day(holiday, None)
    assert not is_working_day(holiday, "MD")
    before = holiday - timedelta(days=1)
    result = add_working_days(madrid(before.year, before.month, before.day), 1, "EX")
    assert result.astimezone(LOCAL_TZ).date() == holiday + timedelta(days=1)


def test_regional_holiday_only_skipped_in_its_region() -> None:
    extremadura_day = date(2026, 9, 8)
    # Guard against the holidays package changing its data under us.
    assert extremadura_day in holidays.Spain(subdiv="EX", years=2026)
    assert extremadura_day not in holidays.Spain(subdiv="MD", years=2026)
    assert extremadura_day.weekday() == 1  # Tuesday

    start = madrid(2026, 9, 7)  # Monday
    assert add_working_days(start, 1, "EX").astimezone(LOCAL_TZ) == madrid(2026, 9, 9)
    assert add_working_days(start, 1, "MD").astimezone(LOCAL_TZ) == madrid(2026, 9, 8)
    assert add_working_days(start, 1, None).astimezone(LOCAL_TZ) == madrid(2026, 9, 8)
    assert not is_working_day(extremadura_day, "EX")
    assert is_working_day(extremadura_day, "MD")


@pytest.mark.parametrize(("day", "region", "expected"), [
    (date(2026, 3, 6), "EX", date(2026, 3, 6)),  # a working Friday stays
    (date(2026, 3, 7), "EX", date(2026, 3, 9)),  # Saturday moves to Monday
    (date(2026, 9, 8), "EX", date(2026, 9, 9)),  # Extremadura's day moves there...
    (date(2026, 9, 8), "MD", date(2026, 9, 8)),  # ...and is an ordinary Tuesday in Madrid
    (date(2026, 4, 2), "EX", date(2026, 4, 6)),  # Maundy Thursday, Good Friday and the weekend
])
def test_a_day_rolls_forward_to_the_first_working_day_of_its_region(day: date, region: str, expected: date) -> None:
    assert working_day_on_or_after(day, region) == expected


def test_dst_change_keeps_local_time() -> None:
    # Summer time ends on Sunday 2026-10-25: 10:00 Madrid is 08:00 UTC before, 09:00 UTC after.
    start = madrid(2026, 10, 23)
    result = add_working_days(start, 1, None)
    assert result.astimezone(LOCAL_TZ) == madrid(2026, 10, 26)
    assert start.astimezone(UTC).hour == 8
    assert result.hour == 9
    # And the other way, across the start of summer time on Sunday 2026-03-29.
    spring = add_working_days(madrid(2026, 3, 27, 9, 30), 1, None)
    assert (spring.hour, spring.minute) == (7, 30)
    assert spring.astimezone(LOCAL_TZ) == madrid(2026, 3, 30, 9, 30)


def test_result_is_utc_aware_and_start_in_other_zone_is_converted() -> None:
    # 23:30 UTC on Friday is already Saturday 00:30 in Madrid, so the next working day is Monday.
    start = datetime(2026, 3, 6, 23, 30, tzinfo=UTC)
    result = add_working_days(start, 1, None)
    assert result.tzinfo is UTC
    assert result.astimezone(LOCAL_TZ) == madrid(2026, 3, 9, 0, 30)


def test_several_working_days_and_zero() -> None:
    start = madrid(2026, 12, 4)  # Friday; 7 Dec is holiday in EX, 8 Dec is national
    result = add_working_days(start, 3, "EX")
    assert result.astimezone(LOCAL_TZ) == madrid(2026, 12, 11)
    zero = add_working_days(start, 0, "EX")
    assert zero == start
    assert zero.tzinfo is UTC


def test_naive_datetime_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_working_days(datetime(2026, 3, 6, 10, 0), 1, None)


def test_negative_days_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_working_days(madrid(2026, 3, 6), -1, None)


def test_unknown_region_rejected() -> None:
    with pytest.raises(ValueError, match="'XX'"):
        is_working_day(date(2026, 3, 6), "XX")
    with pytest.raises(ValueError, match="'Barcelona'"):
        add_working_days(madrid(2026, 3, 6), 1, "Barcelona")
