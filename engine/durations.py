"""The duration vocabulary of deadlines: ISO-8601 durations and dates, working days, and the helpers
(`duration("PT72H")`, `days(2)`, `working_days(3)`...) every sandboxed expression and script is given.

Parsing lives here, apart from the sandbox that evaluates expressions, because the deadline code,
the invariants and the deploy-time checks read durations too.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone


@dataclass(frozen=True)
class WorkingDays:
    """A duration counted in working days (resolved against a business calendar by the deadline code)."""

    days: int


_DURATION = re.compile(
    r"""\A P
    (?:(?P<years>\d+(?:[.,]\d+)?)Y)?
    (?:(?P<months>\d+(?:[.,]\d+)?)M)?
    (?:(?P<weeks>\d+(?:[.,]\d+)?)W)?
    (?:(?P<days>\d+(?:[.,]\d+)?)D)?
    (?:T
        (?:(?P<hours>\d+(?:[.,]\d+)?)H)?
        (?:(?P<minutes>\d+(?:[.,]\d+)?)M)?
        (?:(?P<seconds>\d+(?:[.,]\d+)?)S)?
    )?
    \Z""",
    re.VERBOSE,
)


def parse_duration(iso: str) -> timedelta:
    """Parse an ISO-8601 duration such as "PT72H", "P7D", "P1W" or "P1DT12H"."""
    if not isinstance(iso, str):
        raise TypeError(f"duration must be text like 'P7D', not {type(iso).__name__}")
    text = iso.strip().upper()
    match = _DURATION.match(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(
            f"{iso!r} is not an ISO-8601 duration (expected e.g. 'PT72H', 'P7D', 'P1W' or 'P1DT12H')"
        )
    parts = {name: float(value.replace(",", ".")) for name, value in match.groupdict().items() if value}
    # Months and years have no fixed length, so a legal deadline written with them would
    # be ambiguous; make the modeller say how many days they mean.
    if "years" in parts or "months" in parts:
        raise ValueError(
            f"{iso!r} uses months or years, which have no fixed length; write the duration in days or weeks"
        )
    return timedelta(
        weeks=parts.get("weeks", 0),
        days=parts.get("days", 0),
        hours=parts.get("hours", 0),
        minutes=parts.get("minutes", 0),
        seconds=parts.get("seconds", 0),
    )


def parse_datetime(iso: str | datetime) -> datetime:
    """Parse an ISO-8601 date/time into an aware datetime (naive values are taken as UTC)."""
    if isinstance(iso, datetime):
        value = iso
    elif isinstance(iso, str):
        try:
            value = datetime.fromisoformat(iso.strip())
        except ValueError:
            raise ValueError(
                f"{iso!r} is not an ISO-8601 date/time (expected e.g. '2024-05-01T09:30:00+02:00')"
            ) from None
    else:
        raise TypeError(f"date/time must be text like '2024-05-01T09:30:00Z', not {type(iso).__name__}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _days(n: float) -> timedelta:
    """Return a duration of n calendar days."""
    return timedelta(days=n)


def _hours(n: float) -> timedelta:
    """Return a duration of n hours."""
    return timedelta(hours=n)


def _minutes(n: float) -> timedelta:
    """Return a duration of n minutes."""
    return timedelta(minutes=n)


def _weeks(n: float) -> timedelta:
    """Return a duration of n weeks."""
    return timedelta(weeks=n)


MAX_WORKING_DAYS = 3_660  # about fourteen years of working days; no protocol deadline is longer


def _working_days(n: int) -> WorkingDays:
    """Return a duration of n working days, for the deadline code to resolve."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"working_days() needs a whole number of days, not {n!r}")
    if n < 0:
        raise ValueError(f"working_days() needs zero or more days, not {n}")
    if n > MAX_WORKING_DAYS:
        # The deadline code counts working days one by one: a billion would hold the step for minutes.
        raise ValueError(f"working_days() counts at most {MAX_WORKING_DAYS} days, not {n}")
    return WorkingDays(n)


HELPERS: Mapping[str, object] = types.MappingProxyType(
    {
        "duration": parse_duration,
        "days": _days,
        "hours": _hours,
        "minutes": _minutes,
        "weeks": _weeks,
        "working_days": _working_days,
        "parse_datetime": parse_datetime,
        "date": date,
        "datetime": datetime,
        "time": time,
        "timedelta": timedelta,
        "timezone": timezone,
    }
)


def format_hours(delta: timedelta) -> str:
    """Write a duration for a message: whole hours up to three days ("72 h"), days beyond ("4.5 d")."""
    hours = delta.total_seconds() / 3600
    if hours <= 72:
        return f"{hours:.0f} h"
    return f"{hours / 24:.1f}".removesuffix(".0") + " d"
