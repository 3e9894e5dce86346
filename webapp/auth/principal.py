"""The signed-in user as the web app sees it: identity, agency, roles and territories."""

from __future__ import annotations

from dataclasses import dataclass

from flask_login import UserMixin
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.models import Agency, UserAccount, agency_territory

ROLE_PROFESSIONAL, ROLE_SUPERVISOR, ROLE_DESIGNER, ROLE_ADMIN = "professional", "supervisor", "designer", "admin"
# Members of the Mesa's coordination see every case of their territories, like supervisors.
COORDINATOR_KIND = "mesa_coordinator"


@dataclass(frozen=True)
class Principal(UserMixin):  # type: ignore[misc]
    """A signed-in user; built from the database on every request, never trusted from the client."""

    user_id: int
    username: str
    display_name: str
    agency_id: int | None
    agency_kind: str | None
    agency_name: str | None
    roles: frozenset[str]
    territory_ids: frozenset[int]
    language: str
    generation: int

    def get_id(self) -> str:
        """Return the id Flask-Login keeps in the session (user id and session generation)."""
        return f"{self.user_id}:{self.generation}"

    def has_role(self, role: str) -> bool:
        """Tell whether the user holds `role`."""
        return role in self.roles

    @property
    def oversees_territories(self) -> bool:
        """Tell whether the user sees every case of the agency's territories (supervisor, Mesa)."""
        return self.has_role(ROLE_SUPERVISOR) or self.agency_kind == COORDINATOR_KIND

    @property
    def actor(self) -> Actor:
        """Return the engine's view of this user."""
        return Actor(user_id=self.user_id, name=self.username, agency_id=self.agency_id, roles=self.roles)


def load_principal(session: Session, user_id: int, generation: int | None = None) -> Principal | None:
    """Build the principal of an active user (None if unknown, disabled or of an older generation)."""
    # One query on every request: the user, the agency and its territories (a row per territory).
    rows = session.execute(
        select(UserAccount, Agency, agency_territory.c.territory_id)
        .outerjoin(Agency, Agency.id == UserAccount.agency_id)
        .outerjoin(agency_territory, agency_territory.c.agency_id == Agency.id)
        .where(UserAccount.id == user_id)
    ).all()
    if not rows:
        return None
    user, agency, _ = rows[0]
    if not user.active or (generation is not None and generation != user.session_generation):
        return None
    territories = frozenset(territory for _, _, territory in rows if territory is not None)
    return Principal(
        user_id=user.id, username=user.username, display_name=user.display_name, agency_id=user.agency_id,
        agency_kind=agency.kind if agency else None, agency_name=agency.name if agency else None,
        roles=frozenset(user.roles or []), territory_ids=territories, language=user.language or "es",
        generation=user.session_generation,
    )
