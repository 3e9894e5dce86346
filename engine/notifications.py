"""Who is told about a task at each stage, the in-app notices they get, reading them, e-mail preferences."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.assignment import resolve_agencies
from engine.models import Notification, NotificationPreference, OpenTask, UserAccount
from engine.models.notification import NOTIFICATION_KINDS

COORDINATOR_KIND = "mesa_coordinator"
# Only these roles reach case data: designers and administrators are never told about cases.
CASE_ROLES = frozenset({"professional", "supervisor"})


class Recipients:
    """Find who hears about a task at each stage; remembers each agency's members for one pass."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._members: dict[int, list[UserAccount]] = {}

    def of(self, task: OpenTask, territory_id: int, stage: str) -> list[UserAccount]:
        """Return the active users to notify about `task` at `stage` (a notification kind)."""
        if stage in ("reminder", "agency"):
            assignee = self._assignee(task)
            return [assignee] if assignee is not None else self.members(task.agency_id)
        if stage == "supervisor":
            return [user for user in self.members(task.agency_id) if user.has_role("supervisor")]
        if stage == "coordinator":
            return self.coordination(territory_id)
        raise ValueError(f"unknown stage {stage!r}")

    def coordination(self, territory_id: int) -> list[UserAccount]:
        """Return the active members of the territory's Mesa coordination."""
        mesa = resolve_agencies(self._session, territory_id, {COORDINATOR_KIND}).get(COORDINATOR_KIND)
        return self.members(mesa)

    def members(self, agency_id: int | None) -> list[UserAccount]:
        """Return the active professionals and supervisors of an agency."""
        if agency_id is None:
            return []
        if agency_id not in self._members:
            users = self._session.execute(
                select(UserAccount).where(UserAccount.agency_id == agency_id, UserAccount.active.is_(True))
                .order_by(UserAccount.id)
            ).scalars()
            self._members[agency_id] = [u for u in users if CASE_ROLES & set(u.roles or [])]
        return self._members[agency_id]

    def _assignee(self, task: OpenTask) -> UserAccount | None:
        if task.assignee_id is None:
            return None
        user = self._session.get(UserAccount, task.assignee_id)
        if user is None or not user.active or user.agency_id != task.agency_id:
            return None  # she left the agency or was disabled: the agency hears instead
        return user


def notify(
    session: Session, users: Iterable[UserAccount], kind: str, task: OpenTask, now: datetime
) -> list[Notification]:
    """Add one in-app notice per user about a task (each user once); return them."""
    if kind not in NOTIFICATION_KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    created = []
    for user_id in dict.fromkeys(user.id for user in users):
        notice = Notification(user_id=user_id, kind=kind, case_id=task.case_id, task_id=task.id, step=task.name,
                              due_at=task.due_at, created_at=now)
        session.add(notice)
        created.append(notice)
    session.flush()
    return created


def mark_read(session: Session, user_id: int, notification_id: int, now: datetime) -> Notification | None:
    """Mark one of the user's notices read; return it (None if it is not hers)."""
    notice = session.get(Notification, notification_id)
    if notice is None or notice.user_id != user_id:
        return None
    if notice.read_at is None:
        notice.read_at = now
        session.flush()
    return notice


def mark_all_read(session: Session, user_id: int, now: datetime) -> int:
    """Mark every unread notice of the user read; return how many."""
    result = session.execute(
        update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now), execution_options={"synchronize_session": False},
    )
    return int(getattr(result, "rowcount", 0) or 0)


def email_preferences(session: Session, user_id: int) -> dict[str, bool]:
    """Return, per notification kind, whether the user wants it by e-mail (yes unless she said no)."""
    stored = dict(session.execute(
        select(NotificationPreference.kind, NotificationPreference.email)
        .where(NotificationPreference.user_id == user_id)
    ).all())
    return {kind: bool(stored.get(kind, True)) for kind in NOTIFICATION_KINDS}


def set_email_preferences(session: Session, user_id: int, wanted: Mapping[str, bool]) -> None:
    """Store which kinds the user wants by e-mail (kinds not given keep their setting)."""
    unknown = set(wanted) - set(NOTIFICATION_KINDS)
    if unknown:
        raise ValueError(f"unknown notification kinds: {sorted(unknown)}")
    existing = {pref.kind: pref for pref in session.execute(
        select(NotificationPreference).where(NotificationPreference.user_id == user_id)
    ).scalars()}
    for kind, email in wanted.items():
        if kind in existing:
            existing[kind].email = bool(email)
        else:
            session.add(NotificationPreference(user_id=user_id, kind=kind, email=bool(email)))
    session.flush()


def email_refusals(session: Session, user_ids: Sequence[int]) -> set[tuple[int, str]]:
    """Return the (user, kind) pairs that said no to e-mail, for a batch of users."""
    if not user_ids:
        return set()
    rows = session.execute(
        select(NotificationPreference.user_id, NotificationPreference.kind)
        .where(NotificationPreference.user_id.in_(list(user_ids)), NotificationPreference.email.is_(False))
    ).all()
    return {(user_id, kind) for user_id, kind in rows}
