"""CSV exports of the board's tables: the same figures, no identifying data, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from engine.localtime import LOCAL_TZ
from webapp.auth.principal import Principal
from webapp.supervision.charts import risk_label
from webapp.supervision.queries import (
    EXPORT_LIMIT,
    BoardFilters,
    late_steps,
    open_step_counts,
    reassessments_due,
    risk_levels,
    step_timings,
)

# A spreadsheet runs a cell starting with one of these as a formula (CSV injection): quote it.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Table:
    """A table ready to write: header, rows, and the cases it names (for the audit log)."""

    header: list[str]
    rows: list[list[Any]]
    case_ids: list[int]


def safe_cell(value: Any) -> Any:
    """Return a cell a spreadsheet shows as text: text starting like a formula gets a leading quote.

    Numbers stay numbers (a negative count or delay is data we computed, not text someone typed).
    """
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(LOCAL_TZ).isoformat(timespec="minutes")
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def to_csv(table: Table) -> str:
    """Write a table as CSV text (with a byte-order mark, so spreadsheets read it as UTF-8)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([safe_cell(cell) for cell in table.header])
    writer.writerows([safe_cell(cell) for cell in row] for row in table.rows)
    return "\ufeff" + buffer.getvalue()


def _overdue_by_agency(session: Session, territories: Sequence[int], now: datetime, _period: int) -> Table:
    agencies, _steps, _people = open_step_counts(session, territories, now)
    return Table([_("Organismo"), _("Pasos vencidos")],
                 [[row.agency or _("Sin organismo"), row.overdue] for row in agencies if row.overdue], [])


def _overdue_by_step(session: Session, territories: Sequence[int], now: datetime, _period: int) -> Table:
    _agencies, steps, _people = open_step_counts(session, territories, now)
    return Table([_("Paso"), _("Identificador del paso"), _("Pasos vencidos"), _("Pasos abiertos")],
                 [[row.step, row.element_id, row.overdue, row.open] for row in steps], [])


def _load_by_agency(session: Session, territories: Sequence[int], now: datetime, _period: int) -> Table:
    agencies, _steps, _people = open_step_counts(session, territories, now)
    return Table([_("Organismo"), _("Pasos abiertos"), _("De ellos vencidos"), _("Sin asignar")],
                 [[row.agency or _("Sin organismo"), row.open, row.overdue, row.unassigned] for row in agencies], [])


def _load_by_professional(session: Session, territories: Sequence[int], now: datetime, _period: int) -> Table:
    _agencies, _steps, people = open_step_counts(session, territories, now)
    return Table([_("Profesional"), _("Organismo"), _("Pasos abiertos"), _("De ellos vencidos")],
                 [[row.name, row.agency, row.open, row.overdue] for row in people], [])


def _late(session: Session, territories: Sequence[int], now: datetime, _period: int) -> Table:
    rows = late_steps(session, territories, now, limit=EXPORT_LIMIT)
    return Table([_("Caso"), _("Paso"), _("Organismo"), _("Plazo"), _("Días de retraso")],
                 [[row.reference, row.step, row.agency, row.due_at, row.days_late] for row in rows],
                 sorted({row.case_id for row in rows}))


def _reassessments(session: Session, territories: Sequence[int], now: datetime, _period: int) -> Table:
    rows, _total = reassessments_due(session, territories, now, limit=EXPORT_LIMIT)
    return Table([_("Caso"), _("Paso"), _("Organismo"), _("Plazo"), _("Nivel de riesgo")],
                 [[row.reference, row.step, row.agency, row.due_at, row.risk_level and risk_label(row.risk_level)]
                  for row in rows],
                 sorted({row.case_id for row in rows}))


def _risks(session: Session, territories: Sequence[int], _now: datetime, _period: int) -> Table:
    return Table([_("Nivel de riesgo"), _("Casos en seguimiento")],
                 [[risk_label(row.level), row.cases] for row in risk_levels(session, territories)], [])


def _timings(session: Session, territories: Sequence[int], now: datetime, period: int) -> Table:
    rows = step_timings(session, territories, period, now)
    return Table([_("Paso"), _("Identificador del paso"), _("Completados"), _("En plazo"), _("Porcentaje en plazo"),
                  _("Mediana respecto del plazo (horas)"), _("Percentil 90 respecto del plazo (horas)")],
                 [[row.step, row.element_id, row.completed, row.on_time, round(row.on_time_share * 100, 1),
                   row.median_hours, row.p90_hours] for row in rows], [])


TABLES: dict[str, Callable[[Session, Sequence[int], datetime, int], Table]] = {
    "overdue_by_agency": _overdue_by_agency,
    "overdue_by_step": _overdue_by_step,
    "late_steps": _late,
    "load_by_agency": _load_by_agency,
    "load_by_professional": _load_by_professional,
    "risk_levels": _risks,
    "reassessments": _reassessments,
    "step_timing": _timings,
}


def export_table(session: Session, principal: Principal, filters: BoardFilters, name: str, now: datetime) -> Table:
    """Build one of the board's tables for export (`name` must be a key of TABLES)."""
    return TABLES[name](session, filters.territory_ids(principal), now, filters.period)
