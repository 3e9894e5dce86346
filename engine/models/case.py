"""Cases: one victim and one aggressor, followed through a chain of short process instances."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base
from engine.models.territory import Territory

CASE_STATUSES = ("active", "inactive", "supervised_inactivation", "on_hold", "closed")
# Risk levels, their order, labels and colours come from the deployed protocol (engine/levels.py).


class Case(Base):
    """A protection case; its workflow facts live in `facts`, identifying data in CaseParty."""

    __tablename__ = "case_file"
    # A territory's cases, and the board's count of its followed cases by level from the index alone.
    __table_args__ = (Index("ix_case_file_territory_status_level", "territory_id", "status", "risk_level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)  # VG-2026-000123
    territory_id: Mapped[int] = mapped_column(ForeignKey("territory.id"))
    # Loaded with the case: its region decides working days on every step.
    territory: Mapped[Territory] = relationship(lazy="joined", innerjoin=True)
    status: Mapped[str] = mapped_column(String(32), default="active", index=True)
    risk_level: Mapped[str | None] = mapped_column(String(32), index=True)
    # Small, bounded facts the protocol carries from one instance to the next (flags, dates...).
    facts: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Set when the case is transferred to another territory: the id of its `case_transferred` history
    # entry. Only history from that entry on gives access (webapp/access.py); the old agencies' past
    # stays. An id, not a time: entries of the same instant cannot be told apart by time.
    access_since_event: Mapped[int | None]


class CaseParty(Base):
    """The victim or the aggressor of a case: identifying data kept apart from workflow data."""

    __tablename__ = "case_party"
    __table_args__ = (UniqueConstraint("case_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # "victim" | "aggressor"
    identity: Mapped[dict[str, Any]]


class ReferenceCounter(Base):
    """Last case number handed out per year, for references like VG-2026-000123."""

    __tablename__ = "reference_counter"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)
