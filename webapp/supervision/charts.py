"""The data of the board's charts, embedded in the page as JSON (the tables stay the accessible source)."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from webapp.levels import level_label, scale
from webapp.supervision.queries import Board

NEUTRAL, LATE, ON_TIME = "#8c959f", "#cf222e", "#5b2a86"


def risk_label(level: str | None) -> str:
    """Return the label of a risk level in the page's language, from the deployed scale."""
    return level_label(level)


def chart_data(board: Board) -> dict[str, dict[str, Any]]:
    """Return each chart's type, labels and datasets, keyed by the `data-chart` of its canvas."""
    no_agency = _("Sin organismo")
    overdue = [row for row in board.agencies if row.overdue]
    return {
        "overdue_by_agency": {
            "type": "bar", "horizontal": True,
            "labels": [row.agency or no_agency for row in overdue],
            "datasets": [{"label": _("Pasos vencidos"), "data": [row.overdue for row in overdue],
                          "backgroundColor": LATE}],
        },
        "load_by_agency": {
            "type": "bar", "horizontal": True, "stacked": True,
            "labels": [row.agency or no_agency for row in board.agencies],
            "datasets": [
                {"label": _("En plazo"), "data": [row.open - row.overdue for row in board.agencies],
                 "backgroundColor": ON_TIME},
                {"label": _("Vencidos"), "data": [row.overdue for row in board.agencies], "backgroundColor": LATE},
            ],
        },
        "risk_levels": {
            "type": "doughnut",
            "labels": [risk_label(row.level) for row in board.risks],
            "datasets": [{"label": _("Casos en seguimiento"), "data": [row.cases for row in board.risks],
                          "backgroundColor": [scale().colour(row.level) or NEUTRAL for row in board.risks]}],
        },
        "on_time_by_step": {
            "type": "bar", "horizontal": True, "percent": True,
            "labels": [row.step for row in board.timings],
            "datasets": [{"label": _("Porcentaje en plazo"),
                          "data": [round(row.on_time_share * 100, 1) for row in board.timings],
                          "backgroundColor": ON_TIME}],
        },
    }
