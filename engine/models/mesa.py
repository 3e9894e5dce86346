"""The Mesa de Coordinación: its members, meetings, agendas, minutes, agreements, resources and case transfers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base
from engine.models.append_only import make_append_only

DEFAULT_MEETING_INTERVAL_DAYS = 15  # DOMAIN.md section 1: one town meets every 15 days
MEETING_KINDS = ("ordinary", "extraordinary")
MEETING_STATUSES = ("planned", "open", "closed")
ATTENDANCE_STATUSES = ("present", "absent", "excused")
TRANSFER_STATUSES = ("requested", "accepted", "rejected")


class Mesa(Base):
    """The coordination table of one territory: its coordinator agency and its meeting schedule."""

    __tablename__ = "mesa"

    id: Mapped[int] = mapped_column(primary_key=True)
    territory_id: Mapped[int] = mapped_column(ForeignKey("territory.id"), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The territory's agency of kind mesa_coordinator: its members coordinate the Mesa.
    coordinator_agency_id: Mapped[int] = mapped_column(ForeignKey("agency.id"))
    meeting_interval_days: Mapped[int] = mapped_column(Integer, default=DEFAULT_MEETING_INTERVAL_DAYS)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)


class MesaMember(Base):
    """An agency sitting at the Mesa, with the person who represents it (optional)."""

    __tablename__ = "mesa_member"
    __table_args__ = (UniqueConstraint("mesa_id", "agency_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mesa_id: Mapped[int] = mapped_column(ForeignKey("mesa.id", ondelete="CASCADE"), index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agency.id"), index=True)
    representative_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class Meeting(Base):
    """One meeting of a Mesa: planned, open (minutes being taken) or closed (minutes frozen)."""

    __tablename__ = "meeting"
    __table_args__ = (Index("ix_meeting_mesa_scheduled", "mesa_id", "scheduled_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mesa_id: Mapped[int] = mapped_column(ForeignKey("mesa.id"))
    scheduled_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16), default="ordinary")
    status: Mapped[str] = mapped_column(String(16), default="planned", index=True)
    # Why an extraordinary meeting was convened (no personal data: the case reference at most).
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    opened_at: Mapped[datetime | None]
    agenda_refreshed_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # Bumped by every change to the minutes: a form posted on an older version is refused (409).
    version: Mapped[int] = mapped_column(Integer, default=1)


class AgendaItem(Base):
    """A case on a meeting's agenda, with every reason it is there."""

    __tablename__ = "agenda_item"
    __table_args__ = (UniqueConstraint("meeting_id", "case_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    # Reasons found by the agenda rules (webapp/mesa/agenda.py), replaced on every refresh.
    reasons: Mapped[list[str]] = mapped_column(default=list)
    # Why the item stays whatever the rules say: "manual" (a member added it) or the incident or
    # complaint an extraordinary meeting was convened for.
    pinned: Mapped[str | None] = mapped_column(String(16))
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    added_at: Mapped[datetime]


class Attendance(Base):
    """Whether a member agency came to a meeting, and who came."""

    __tablename__ = "attendance"
    __table_args__ = (UniqueConstraint("meeting_id", "agency_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"), index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agency.id"))
    status: Mapped[str] = mapped_column(String(16))
    attendee: Mapped[str | None] = mapped_column(String(200))  # the professional who came (not case data)


class MeetingNote(Base):
    """The minutes' note on one case of the agenda."""

    __tablename__ = "meeting_note"
    __table_args__ = (UniqueConstraint("meeting_id", "case_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"))
    text: Mapped[str] = mapped_column(Text)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    updated_at: Mapped[datetime]


class Agreement(Base):
    """An action agreed at a meeting for one agency, with a deadline; carried by an `agreement` process."""

    __tablename__ = "agreement"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agency.id"))
    action: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime]
    # The process instance whose user task is the agreement in the agency's worklist.
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime]


class MinutesVersion(Base):
    """The closed minutes of a meeting: a frozen JSON snapshot and its sha256; never updated or deleted."""

    __tablename__ = "minutes_version"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - SQLAlchemy's declared mapping

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id"), unique=True)
    content: Mapped[dict[str, Any]]
    sha256: Mapped[str] = mapped_column(String(64))
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    closed_at: Mapped[datetime]


class Resource(Base):
    """A service of the territory a victim can be referred to: contact data and opening hours."""

    __tablename__ = "resource"
    __table_args__ = (Index("ix_resource_territory_kind", "territory_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    territory_id: Mapped[int] = mapped_column(ForeignKey("territory.id"))
    kind: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str] = mapped_column(Text, default="")
    hours: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime]
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)


class CaseTransfer(Base):
    """A case moving to another territory's Mesa: requested by one coordinator, decided by the other."""

    __tablename__ = "case_transfer"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    from_territory_id: Mapped[int] = mapped_column(ForeignKey("territory.id"))
    to_territory_id: Mapped[int] = mapped_column(ForeignKey("territory.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="requested")
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    requested_at: Mapped[datetime]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_at: Mapped[datetime | None]


# Closed minutes are append-only in the database itself, as the audit log is.
make_append_only(MinutesVersion, "minutes_version is append-only: closed minutes cannot change")
