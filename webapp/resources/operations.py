"""Edit the resources directory (the Mesa's coordinator): add, change and withdraw services."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.models import Resource
from engine.persistence import check_version
from engine.resource_kinds import RESOURCE_KINDS
from webapp.validation import InvalidInput

LIMITS = {"name": 200, "contact": 1000, "hours": 500, "notes": 1000}


def save_resource(
    session: Session, resource: Resource | None, territory_id: int, values: Mapping[str, str], *,
    expected_version: int | None, actor: Actor, now: datetime,
) -> Resource:
    """Create a resource (None) or change one, refusing a stale version; return it."""
    errors: dict[str, list[str]] = {}
    if values.get("kind") not in RESOURCE_KINDS:
        errors["kind"] = [_("Elija una de las opciones.")]
    if not values.get("name", "").strip():
        errors["name"] = [_("Este dato es obligatorio.")]
    for field, limit in LIMITS.items():
        if len(values.get(field, "")) > limit:
            errors[field] = [_("El texto es demasiado largo (como máximo %(count)s caracteres).", count=limit)]
    if errors:
        raise InvalidInput(errors)
    if resource is None:
        resource = Resource(territory_id=territory_id, active=True, version=0)
        session.add(resource)
    else:
        check_version(resource.version, expected_version, "the resource")
    resource.kind = values["kind"]
    for field in LIMITS:
        setattr(resource, field, values.get(field, "").strip())
    resource.updated_at, resource.updated_by_id = now, actor.user_id
    resource.version += 1
    session.flush()
    return resource


def withdraw_resource(session: Session, resource: Resource, *, expected_version: int, actor: Actor,
                      now: datetime) -> None:
    """Take a resource out of the directory (kept, inactive)."""
    check_version(resource.version, expected_version, "the resource")
    resource.active = False
    resource.updated_at, resource.updated_by_id = now, actor.user_id
    resource.version += 1
    session.flush()
