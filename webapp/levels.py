"""Risk levels in the pages: labels in the page's language and badge colours, from the deployed scale.

The scale (engine/levels.py) is read once per request. Badge colours come from a stylesheet made from
the scale (`.risk-<code>`), not from inline styles, so that a strict Content-Security-Policy stays possible.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, g, request
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _

from engine.levels import RiskScale, current_levels
from webapp.extensions import db

bp = Blueprint("levels", __name__)
DARK_TEXT, LIGHT_TEXT = "#1f2328", "#ffffff"


def scale() -> RiskScale:
    """Return the deployed risk scale, read once per request."""
    if "risk_scale" not in g:
        g.risk_scale = current_levels(db.session())
    found: RiskScale = g.risk_scale
    return found


def level_label(code: str | None) -> str:
    """Return a level's label in the page's language ("Sin valorar" for none)."""
    if not code:
        return str(_("Sin valorar"))
    locale = get_locale()
    return scale().label(code, locale.language if locale is not None else "es")


def text_colour(background: str) -> str:
    """Return dark or light text, whichever reads better on a #rrggbb background (WCAG luminance)."""
    channels = [int(background[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # Contrast against white (1.05 / (L + .05)) versus against near-black ((L + .05) / .05 roughly).
    return LIGHT_TEXT if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.0515 else DARK_TEXT


def stylesheet_text(risk_scale: RiskScale) -> str:
    """Return the badge rules of every level of a scale."""
    return "".join(f".badge.risk-{level.code} {{ background: {level.colour}; color: {text_colour(level.colour)}; }}\n"
                   for level in risk_scale.levels)


@bp.get("/niveles-de-riesgo.css")
def stylesheet() -> ResponseReturnValue:
    """Serve the badge colours of the deployed scale (revalidated: a deploy may change them)."""
    risk_scale = scale()
    response = Response(stylesheet_text(risk_scale), mimetype="text/css")
    response.set_etag(f"levels-{risk_scale.definition_id or 0}")
    response.headers["Cache-Control"] = "no-cache"
    return response.make_conditional(request)


def init_levels(app: Flask) -> None:
    """Offer the scale to templates: `level_label(code)` and `risk_scale()`."""
    app.jinja_env.globals["level_label"] = level_label
    app.jinja_env.globals["risk_scale"] = scale
