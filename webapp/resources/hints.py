"""The territory's resources offered next to the form fields that refer a victim to a service (`ui.resources`)."""

from __future__ import annotations

from flask import render_template
from markupsafe import Markup
from sqlalchemy.orm import Session

from engine.forms import FormDefinition
from webapp.mesa.labels import RESOURCE_KIND_LABELS
from webapp.resources.queries import directory


def resource_notes(session: Session, form: FormDefinition | None, territory_id: int) -> dict[str, Markup]:
    """Return, per field of the form's `ui.resources` hint, the HTML listing the territory's services of those kinds."""
    hint: dict[str, list[str]] = (form.ui.get("resources") or {}) if form else {}
    if not hint:
        return {}
    found = directory(session, [territory_id], {kind for kinds in hint.values() for kind in kinds})
    notes = {}
    for field, kinds in hint.items():
        offered = [resource for resource in found if resource.kind in kinds]
        notes[field] = Markup(render_template("resources/_hint.html", field=field, resources=offered,  # noqa: S704
                                              kinds=RESOURCE_KIND_LABELS))  # autoescaped template
    return notes
