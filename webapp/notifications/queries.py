"""Notification reads: the bell's unread count and a page of the user's notices, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.models import Case, Notification, UserAccount

PER_PAGE = 30


@dataclass(frozen=True)
class NoticeLine:
    """One notice as the list shows it, with where it leads."""

    id: int
    kind: str
    reference: str
    step: str
    due_at: datetime | None
    created_at: datetime
    read: bool
    endpoint: str
    values: dict[str, Any]


@dataclass(frozen=True)
class NoticePage:
    """A page of notices and the numbers around it."""

    lines: list[NoticeLine]
    page: int
    pages: int
    total: int
    unread: int


def target(notice: Notification) -> tuple[str, dict[str, Any]]:
    """Return the endpoint and values a notice links to: the task for its agency, the case for the Mesa and
    for a broken invariant."""
    if notice.kind in ("coordinator", "invariant"):
        return "cases.show", {"case_id": notice.case_id}
    return "tasks.show", {"task_id": notice.task_id}


def unread_count(session: Session, user_id: int) -> int:
    """Count the user's unread notices (from the index on user and read time)."""
    return session.execute(
        select(func.count()).select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    ).scalar_one()


def notice_page(session: Session, user_id: int, page: int, per_page: int = PER_PAGE) -> NoticePage:
    """Return one page of the user's notices, newest first."""
    total = session.execute(
        select(func.count()).select_from(Notification).where(Notification.user_id == user_id)
    ).scalar_one()
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    rows = session.execute(
        select(Notification, Case.reference)
        .join(Case, Case.id == Notification.case_id)
        .where(Notification.user_id == user_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .offset((page - 1) * per_page).limit(per_page)
    ).all()
    lines = [NoticeLine(n.id, n.kind, reference, n.step, n.due_at, n.created_at, n.read_at is not None,
                        *target(n)) for n, reference in rows]
    return NoticePage(lines, page, pages, total, unread_count(session, user_id))


def email_address(session: Session, user_id: int) -> str | None:
    """Return the user's e-mail address, if she has one."""
    address = session.execute(select(UserAccount.email).where(UserAccount.id == user_id)).scalar_one_or_none()
    return address.strip() if address and address.strip() else None
