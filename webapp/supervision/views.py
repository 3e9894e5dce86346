"""Supervision views (being built)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("supervision", __name__, template_folder="templates")
