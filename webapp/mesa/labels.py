"""Spanish labels (translated) of the Mesa's codes: agenda reasons, attendance, meeting kinds, resource kinds."""

from __future__ import annotations

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

REASON_LABELS: dict[str, LazyString] = {
    "incident": _l("Nuevo incidente"),
    "complaint": _l("Nueva denuncia"),
    "new": _l("Caso nuevo desde la última reunión"),
    "high_risk": _l("Riesgo alto o extremo"),
    "overdue_steps": _l("Pasos vencidos"),
    "level_changed": _l("Cambio de nivel de riesgo"),
    "inactivation": _l("Propuesto para inactivación"),
    "open_agreement": _l("Acuerdo pendiente"),
    "overdue_agreement": _l("Acuerdo vencido"),
    "manual": _l("Añadido por un miembro"),
}
ATTENDANCE_LABELS: dict[str, LazyString] = {
    "present": _l("Asiste"),
    "absent": _l("No asiste"),
    "excused": _l("Excusa su asistencia"),
}
KIND_LABELS: dict[str, LazyString] = {"ordinary": _l("Ordinaria"), "extraordinary": _l("Extraordinaria")}
STATUS_LABELS: dict[str, LazyString] = {"planned": _l("Convocada"), "open": _l("En curso"),
                                        "closed": _l("Acta cerrada")}
AGREEMENT_LABELS: dict[str, LazyString] = {"open": _l("Pendiente"), "done": _l("Cumplido"),
                                           "cancelled": _l("Cancelado")}
OUTCOME_LABELS: dict[str, LazyString] = {"done": _l("Cumplido"), "partly_done": _l("Cumplido en parte"),
                                         "not_possible": _l("No ha sido posible")}
TRANSFER_LABELS: dict[str, LazyString] = {"requested": _l("Pendiente de aceptar"), "accepted": _l("Aceptado"),
                                          "rejected": _l("Rechazado")}
RESOURCE_KIND_LABELS: dict[str, LazyString] = {
    "hotline_016": _l("016 (atención telefónica)"),
    "psychological_care": _l("Atención psicológica"),
    "equality_office": _l("Oficina de igualdad"),
    "atenpro": _l("ATENPRO (teleasistencia móvil)"),
    "shelter": _l("Alojamiento y acogida"),
    "victim_office": _l("Oficina de asistencia a las víctimas"),
    "social_services": _l("Servicios sociales"),
    "legal_aid": _l("Asistencia jurídica"),
    "other": _l("Otros recursos"),
}
