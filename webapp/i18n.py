"""Languages and time zones: Spanish first, English selectable; stored in UTC, shown in the local time zone."""

from __future__ import annotations

from datetime import datetime

from flask import Flask, request, session
from flask_babel import format_datetime
from flask_login import current_user

from engine.localtime import LOCAL_TZ

LANGUAGES = ("es", "en")
DEFAULT_LANGUAGE = "es"


def select_locale() -> str:
    """Pick the language: the session's choice, then the user's, then Spanish."""
    chosen = session.get("language")
    if chosen in LANGUAGES:
        return str(chosen)
    if current_user and getattr(current_user, "is_authenticated", False):
        return str(current_user.language) if current_user.language in LANGUAGES else DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def select_timezone() -> str:
    """Every time is shown in the local time zone (COORDINA_TIMEZONE, Spain's peninsular time by default)."""
    return LOCAL_TZ.key


def local_time(value: datetime | None, style: str = "short") -> str:
    """Format an aware UTC datetime in local time for the page's language."""
    if value is None:
        return ""
    return str(format_datetime(value, style))


def init_i18n(app: Flask) -> None:
    """Register the template helpers for times and languages."""
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES

    @app.context_processor
    def _language() -> dict[str, str]:
        return {"current_language": select_locale(), "request_path": request.path}
