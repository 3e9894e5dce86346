"""Time left before a step's deadline, in words ("vence en 45 min", "vencida hace 2 días")."""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext, ngettext

HOUR = 3600
DAY = 24 * HOUR


def time_left(due_at: datetime | None, now: datetime) -> str:
    """Return the time left (or past) as words: minutes under an hour, hours under a day, "mañana"
    from 24 to 48 hours ahead, days beyond; an empty string without a deadline."""
    if due_at is None:
        return ""
    seconds = int((due_at - now).total_seconds())
    if seconds >= 0:
        if seconds < HOUR:
            return str(ngettext("vence en %(num)d min", "vence en %(num)d min", max(1, -(-seconds // 60))))
        if seconds < DAY:
            return str(ngettext("vence en %(num)d h", "vence en %(num)d h", seconds // HOUR))
        if seconds < 2 * DAY:
            return str(gettext("vence mañana"))
        return str(ngettext("vence en %(num)d día", "vence en %(num)d días", seconds // DAY))
    late = -seconds
    if late < HOUR:
        return str(ngettext("vencida hace %(num)d min", "vencida hace %(num)d min", max(1, late // 60)))
    if late < DAY:
        return str(ngettext("vencida hace %(num)d h", "vencida hace %(num)d h", late // HOUR))
    return str(ngettext("vencida hace %(num)d día", "vencida hace %(num)d días", late // DAY))
