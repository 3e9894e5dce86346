"""The synthetic world of the engine and protocol tests: a territory with one agency of each kind."""

from __future__ import annotations

from dataclasses import dataclass

from engine.actor import Actor
from engine.models import Agency, Territory, UserAccount


@dataclass
class World:
    """A small synthetic territory with one agency of each kind and one member in each."""

    territory: Territory
    other_territory: Territory
    agencies: dict[str, Agency]
    users: dict[str, UserAccount]

    def actor(self, kind: str, *, supervisor: bool = False) -> Actor:
        """Return the actor of the member (or supervisor) of the agency of `kind`."""
        user = self.users[f"{kind}_boss" if supervisor else kind]
        roles = frozenset({"professional", "supervisor"} if supervisor else {"professional"})
        return Actor(user_id=user.id, name=user.username, agency_id=user.agency_id, roles=roles)
