"""Deployed, immutable versions of BPMN processes and DMN decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base


class Definition(Base):
    """One version of a process (with its parsed spec) or a decision table; never updated."""

    __tablename__ = "definition"
    __table_args__ = (UniqueConstraint("kind", "key", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "process" | "decision"
    key: Mapped[str] = mapped_column(String(120), index=True)  # BPMN process id / DMN decision id
    name: Mapped[str] = mapped_column(String(200))
    file_name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    # sha256 of the source, and for a process also of every decision and called process it uses.
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    # The serialized SpiffWorkflow spec (process + subprocess specs): stored once per version,
    # never inside the instances that run on it.
    spec: Mapped[dict[str, Any] | None]
    # For a process: the agency kind of each user task, resolved from its lane when deployed.
    task_kinds: Mapped[dict[str, Any] | None]
    deployed_by: Mapped[str] = mapped_column(String(80))
    deployed_at: Mapped[datetime]
    comment: Mapped[str] = mapped_column(Text, default="")
