"""The closed minutes as a PDF (fpdf2), from the frozen snapshot: references only unless names were allowed.

Liberation Sans (Debian's fonts-liberation, which CI installs) gives every Spanish character; without
it the PDF falls back to the core Helvetica font and replaces what Latin-1 cannot hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from flask_babel import format_datetime
from flask_babel import gettext as _
from fpdf import FPDF

from webapp.levels import level_label
from webapp.mesa import labels

FONT_DIR = Path("/usr/share/fonts/truetype/liberation")
FONT_FILES = {"": "LiberationSans-Regular.ttf", "B": "LiberationSans-Bold.ttf"}
FAMILY = "LiberationSans"
FALLBACK = "Helvetica"


class _Minutes(FPDF):
    def __init__(self, title: str, footer_text: str) -> None:
        super().__init__(format="A4")
        self.title_text, self.footer_text = title, footer_text
        self.family = FALLBACK
        if all((FONT_DIR / name).exists() for name in FONT_FILES.values()):
            for style, name in FONT_FILES.items():
                self.add_font(FAMILY, style, str(FONT_DIR / name))
            self.family = FAMILY
        self.set_auto_page_break(auto=True, margin=18)
        self.set_title(title)
        self.set_creator("Coordina")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family, "", 8)
        self.cell(0, 6, self.safe(f"{self.footer_text} · {self.page_no()}/{{nb}}"), align="C")

    def safe(self, value: str) -> str:
        """Return text the current font can write (Latin-1 for the core fallback font)."""
        if self.family == FAMILY:
            return value
        return value.replace("—", "-").replace("·", "-").encode("latin-1", "replace").decode("latin-1")

    def heading(self, value: str, size: int = 13) -> None:
        self.set_font(self.family, "B", size)
        self.multi_cell(0, 7, self.safe(value), new_x="LMARGIN", new_y="NEXT")
        self.ln(1)

    def paragraph(self, value: str, *, bold: bool = False, size: int = 10) -> None:
        self.set_font(self.family, "B" if bold else "", size)
        self.multi_cell(0, 5, self.safe(value), new_x="LMARGIN", new_y="NEXT")


def _when(value: str | None) -> str:
    if not value:
        return ""
    return str(format_datetime(datetime.fromisoformat(value), "short"))


def minutes_pdf(content: Mapping[str, Any], digest: str, names: Mapping[int, str]) -> bytes:
    """Render a minutes snapshot as PDF bytes; `names` are the victims' names the reader may see (by case id)."""
    meeting = content["meeting"]
    kind = labels.KIND_LABELS.get(meeting["kind"], meeting["kind"])
    title = _("Acta de la reunión %(kind)s de %(mesa)s", kind=str(kind).lower(), mesa=content["mesa"])
    pdf = _Minutes(title, _("Acta cerrada · sha256 %(digest)s", digest=digest[:16]))
    pdf.alias_nb_pages()
    pdf.add_page()
    pdf.heading(title, 15)
    pdf.paragraph(_("Territorio: %(territory)s", territory=content["territory"]))
    pdf.paragraph(_("Convocada para: %(when)s · Abierta: %(opened)s · Cerrada: %(closed)s por %(who)s",
                    when=_when(meeting["scheduled_at"]), opened=_when(meeting["opened_at"]),
                    closed=_when(meeting["closed_at"]), who=content.get("closed_by") or "-"))
    if meeting.get("reason"):
        pdf.paragraph(_("Motivo: %(reason)s", reason=meeting["reason"]))
    pdf.ln(3)
    pdf.heading(_("Asistencia"))
    for row in content["attendance"]:
        status = labels.ATTENDANCE_LABELS.get(row["status"], row["status"])
        who = f" ({row['attendee']})" if row.get("attendee") else ""
        pdf.paragraph(f"{row['agency']}: {status}{who}")
    pdf.ln(3)
    agreements = {a["id"]: a for a in content["agreements"]}
    pdf.heading(_("Casos revisados"))
    if not content["items"]:
        pdf.paragraph(_("Ningún caso en el orden del día."))
    for item in content["items"]:
        name = names.get(int(item["case_id"]))
        level = level_label(item.get("risk_level"))
        pdf.paragraph(f"{item['reference']}{f' — {name}' if name else ''} · {_('Nivel')}: {level}", bold=True, size=11)
        reasons = ", ".join(str(labels.REASON_LABELS.get(r, r)) for r in item["reasons"])
        pdf.paragraph(_("Motivos: %(reasons)s", reasons=reasons))
        for step in item["late_steps"]:
            pdf.paragraph(_("Paso vencido: %(step)s (%(agency)s), plazo %(due)s", step=step["step"],
                            agency=step.get("agency") or "-", due=_when(step.get("due_at"))))
        if item.get("note"):
            pdf.paragraph(_("Nota: %(note)s", note=item["note"]))
        for agreement_id in item["agreements"]:
            agreement = agreements[agreement_id]
            pdf.paragraph(_("Acuerdo: %(agency)s — %(action)s (fecha límite %(due)s)", agency=agreement["agency"],
                            action=agreement["action"], due=_when(agreement["due_at"])))
        pdf.ln(2)
    return bytes(pdf.output())
