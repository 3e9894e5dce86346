"""What the pages that start processes need: the start form of a process, and the identity form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from engine.definitions import latest_runnable
from engine.definitions import start_form as pinned_start_form
from engine.errors import NotFoundError
from engine.forms import FormDefinition

PARTY_FIELDS = ("name", "phone", "address")
PARTIES = ("victim", "aggressor")


def start_form(session: Session, process_key: str) -> FormDefinition:
    """Return the form of the start event of the newest version of a process (the version it pins)."""
    form = pinned_start_form(session, latest_runnable(session, process_key))
    if form is None:
        raise NotFoundError(f"the start form of {process_key!r} is not available")
    return form


def identity_form() -> FormDefinition:
    """Return the optional identifying data of victim and aggressor as a form (kept out of workflow data)."""
    labels = {"name": _("Nombre y apellidos"), "phone": _("Teléfono"), "address": _("Domicilio")}
    limits = {"name": 200, "phone": 40, "address": 300}
    properties = {
        f"{party}_{key}": {"type": "string", "title": labels[key], "maxLength": limits[key]}
        for party in PARTIES for key in PARTY_FIELDS
    }
    return FormDefinition(
        name="identity", title=_("Datos identificativos"),
        schema={"type": "object", "properties": properties, "additionalProperties": False},
        ui={"sections": [
            {"title": _("Víctima"), "fields": [f"victim_{key}" for key in PARTY_FIELDS]},
            {"title": _("Agresor"), "fields": [f"aggressor_{key}" for key in PARTY_FIELDS]},
        ], "widgets": {f"{party}_address": "text" for party in PARTIES}},
        description=_("Opcionales. Se guardan aparte de los datos del proceso y solo los ven los organismos "
                      "que necesitan saber quién es."),
    )


def split_identity(data: Mapping[str, Any]) -> dict[str, dict[str, str] | None]:
    """Split the identity form's answers into the victim's and the aggressor's (None when empty)."""
    result: dict[str, dict[str, str] | None] = {}
    for party in PARTIES:
        found = {key: str(data[f"{party}_{key}"]).strip() for key in PARTY_FIELDS if data.get(f"{party}_{key}")}
        result[party] = found or None
    return result
