"""The site's icon at /favicon.ico, where browsers ask for it by default (no 404 in every page's log)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue

bp = Blueprint("favicon", __name__)
ICON = (Path(__file__).parent / "static" / "favicon.svg").read_bytes()


@bp.get("/favicon.ico")
def favicon() -> ResponseReturnValue:
    """Serve the icon (an SVG, which browsers accept under this name), cached for a day."""
    response = Response(ICON, mimetype="image/svg+xml")
    response.set_etag("favicon-1")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response.make_conditional(request)
