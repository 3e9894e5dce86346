"""Who acts: a user of an agency with roles, or the system itself (timers, the worker)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Actor:
    """The acting user as the engine sees it; passed in, never read from a request."""

    user_id: int | None
    name: str
    agency_id: int | None = None
    roles: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        """Return the actor used by timers, the deadline worker and deployments from files."""
        return cls(user_id=None, name=name, roles=frozenset({"system"}))

    def has_role(self, role: str) -> bool:
        """Tell whether the actor holds `role`."""
        return role in self.roles
