"""The web app's clock: the system time, or the CLOCK of the configuration (tests, demos)."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from engine.clock import Clock, SystemClock

_SYSTEM = SystemClock()


def now() -> datetime:
    """Return the current time (aware, UTC) from the configured clock."""
    clock: Clock = current_app.config.get("CLOCK") or _SYSTEM
    return clock.now()
