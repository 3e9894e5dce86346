"""The local time zone: working days, deadlines and meeting dates are counted in it; times are stored in UTC.

An IANA name from the COORDINA_TIMEZONE environment variable (default Europe/Madrid), read once at import so
the engine and the web app (which shows every time in it) share one zone without the engine knowing Flask.
"""

from __future__ import annotations

import os
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Europe/Madrid"
LOCAL_TZ = ZoneInfo(os.environ.get("COORDINA_TIMEZONE") or DEFAULT_TIMEZONE)
