"""Write the e-mails of new notifications into the outbox: case reference, step and a link, nothing personal.

The text is written in each recipient's language when the notice is created; the worker's delivery
pass (`mailer.deliver_outbox`) sends it later. Runs in an application context (translations, routes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import force_locale, format_datetime
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Case, Notification, OutboxEmail, UserAccount
from engine.notifications import email_refusals
from webapp.notifications.queries import target

LANGUAGES = ("es", "en")
SUBJECT_LIMIT = 255


def external_url(base_url: str, endpoint: str, values: dict[str, Any]) -> str:
    """Build an absolute link to a page from the configured base URL (no request needed)."""
    parts = urlsplit(base_url)
    adapter = current_app.url_map.bind(parts.netloc or "localhost", script_name=parts.path or "/",
                                       url_scheme=parts.scheme or "https")
    return adapter.build(endpoint, values, force_external=True)


def queue_emails(session: Session, notices: Sequence[Notification], *, base_url: str, now: datetime) -> int:
    """Queue one e-mail per notice whose user has an address and wants that kind by e-mail; return how many.

    Users without an address, or who turned e-mail off for the kind, keep the in-app notice only.
    """
    if not notices:
        return 0
    user_ids = sorted({n.user_id for n in notices})
    users = {u.id: u for u in session.execute(select(UserAccount).where(UserAccount.id.in_(user_ids))).scalars()}
    refused = email_refusals(session, user_ids)
    references = dict(session.execute(
        select(Case.id, Case.reference).where(Case.id.in_({n.case_id for n in notices}))
    ).all())
    queued = 0
    for notice in notices:
        user = users.get(notice.user_id)
        address = (user.email or "").strip() if user else ""
        if user is None or not address or (notice.user_id, notice.kind) in refused:
            continue
        language = user.language if user.language in LANGUAGES else LANGUAGES[0]
        subject, body = compose(notice, references[notice.case_id], language, base_url)
        session.add(OutboxEmail(notification_id=notice.id, recipient=address, subject=subject, body=body,
                                status="pending", attempts=0, next_attempt_at=now, created_at=now))
        queued += 1
    session.flush()
    return queued


def compose(notice: Notification, reference: str, language: str, base_url: str) -> tuple[str, str]:
    """Write a notice's subject and body in `language`: reference, step, deadline and link only."""
    link = external_url(base_url, *target(notice))
    with force_locale(language):
        values = {"step": notice.step, "reference": reference,
                  "due": format_datetime(notice.due_at, "short") if notice.due_at else "—"}
        labels = {
            "reminder": _("Plazo próximo"),
            "agency": _("Paso vencido"),
            "supervisor": _("Paso vencido sin atender"),
            "coordinator": _("Paso vencido, aviso a la Mesa"),
            "invariant": _("Garantía incumplida"),
        }
        lines = {
            "reminder": _("El paso «%(step)s» del caso %(reference)s vence el %(due)s.", **values),
            "agency": _("El paso «%(step)s» del caso %(reference)s venció el %(due)s y sigue pendiente en su "
                        "organismo.", **values),
            "supervisor": _("El paso «%(step)s» del caso %(reference)s venció el %(due)s y sigue sin atender. "
                            "Le avisamos por supervisar su organismo.", **values),
            "coordinator": _("El paso «%(step)s» del caso %(reference)s venció el %(due)s y sigue sin atender. "
                             "Le avisamos como coordinación de la Mesa.", **values),
            "invariant": _("El caso %(reference)s incumple la garantía del protocolo «%(step)s». Su historial dice "
                           "qué falta y, si el protocolo prevé cómo repararlo, qué paso ha abierto Coordina.",
                           **values),
        }
        subject = f"Coordina · {reference} · {labels[notice.kind]}: {notice.step}"
        body = "\n\n".join([
            lines[notice.kind],
            _("Ábralo en Coordina (hace falta iniciar sesión): %(link)s", link=link),
            _("Elija qué avisos recibe por correo en %(link)s",
              link=external_url(base_url, "notifications.preferences", {})),
            _("Este aviso no contiene datos personales. No responda a este mensaje."),
        ])
    if len(subject) > SUBJECT_LIMIT:
        subject = subject[: SUBJECT_LIMIT - 1] + "…"
    return subject, body + "\n"
