"""Open violations of the protocol's invariants: one row per case, invariant and kind while it lasts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base


class OpenViolation(Base):
    """A violation the watchdog found and recorded, kept until a pass no longer finds it (one episode).

    The primary key makes the record-once rule hold with several workers: the one whose insert wins
    records the violation in the history and tells the people; the others see the row and do not.
    """

    __tablename__ = "open_violation"

    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id", ondelete="CASCADE"), primary_key=True)
    invariant_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # missing | late | duplicate
    since: Mapped[datetime]
    # The `invariant_violated` history entry that opened the episode.
    event_id: Mapped[int | None]
    # A repair that could not be made (its process busy or failing) is tried again from this time on.
    retry_at: Mapped[datetime | None]
