"""Business calendar: Spanish national and regional holidays, counted in the local time zone (engine.localtime)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from holidays.countries.spain import Spain

from engine.localtime import LOCAL_TZ

# `holidays` also lists non-ISO subdivisions (e.g. the municipality "Barcelona"); regions are
# autonomous communities and cities identified by their ISO 3166-2:ES code, so keep only those.
_REGIONS: frozenset[str] = frozenset(
    code for code in Spain.subdivisions if len(code) == 2 and code.isalpha() and code.isupper()
)


def _check_region(region: str | None) -> None:
    """Raise ValueError unless region is None or a known ISO 3166-2:ES subdivision code."""
    if region is not None and region not in _REGIONS:
        raise ValueError(f"unknown region {region!r}; expected one of {', '.join(sorted(_REGIONS))} or None")


@lru_cache(maxsize=256)
def _holidays(region: str | None, year: int) -> frozenset[date]:
    """Return the holiday dates of one region (national only when None) for one year."""
    # Building a Spain object is slow and deadlines are computed on every task
    # transition, so the frozen set of dates is what is cached and looked up.
    return frozenset(Spain(subdiv=region, years=year).keys())


def is_working_day(day: date, region: str | None) -> bool:
    """Return whether day is Monday to Friday and not a national or regional holiday."""
    _check_region(region)
    if day.weekday() >= 5:
        return False
    return day not in _holidays(region, day.year)


def working_day_on_or_after(day: date, region: str | None) -> date:
    """Return day if it is a working day in region, else the first working day after it."""
    _check_region(region)
    while not is_working_day(day, region):
        day += timedelta(days=1)
    return day


def add_working_days(start: datetime, days: int, region: str | None) -> datetime:
    """Return start moved forward by days working days, keeping its local wall-clock time, in UTC."""
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be a timezone-aware datetime")
    if days < 0:
        raise ValueError(f"days must not be negative, got {days}")
    _check_region(region)
    if days == 0:
        return start.astimezone(UTC)
    local = start.astimezone(LOCAL_TZ)
    day = local.date()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day, region):
            counted += 1
    # Replacing the date on the locally aware datetime keeps the wall-clock time across DST
    # changes; zoneinfo recomputes the offset for the new date. A time that does not exist on
    # the target day (the spring-forward hour) resolves to the equivalent instant after the gap.
    moved = local.replace(year=day.year, month=day.month, day=day.day)
    return moved.astimezone(UTC)
