"""Territories: a town or mancomunidad, with the region whose holidays apply."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base


class Territory(Base):
    """A municipality or mancomunidad served by one Mesa de Coordinación."""

    __tablename__ = "territory"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # ISO 3166-2 subdivision of Spain as the `holidays` package names it ("EX", "MD", ...).
    region: Mapped[str | None] = mapped_column(String(8))
