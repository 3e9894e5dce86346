"""Deployed, immutable versions of BPMN processes, DMN decisions and forms; the designer's drafts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base


class Definition(Base):
    """One version of a process (with its parsed spec), a decision table or a form; never updated."""

    __tablename__ = "definition"
    __table_args__ = (UniqueConstraint("kind", "key", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "process" | "decision" | "form"
    key: Mapped[str] = mapped_column(String(120), index=True)  # BPMN process id / DMN decision id / form name
    name: Mapped[str] = mapped_column(String(200))
    file_name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    # sha256 of the source, and for a process also of every decision, form and called process it uses.
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    # The serialized SpiffWorkflow spec (process + subprocess specs): stored once per version,
    # never inside the instances that run on it.
    spec: Mapped[dict[str, Any] | None]
    # For a process: the agency kind of each user task, resolved from its lane when deployed.
    task_kinds: Mapped[dict[str, Any] | None]
    # For a process: the form versions its steps and start event use (form name -> definition id).
    form_ids: Mapped[dict[str, Any] | None]
    # Where this version came from: "files" (flask processes deploy), "designer" (edited in the browser)
    # or "upload" (a file made in another modeller, uploaded in the designer).
    origin: Mapped[str] = mapped_column(String(16), default="files", server_default="files")
    deployed_by: Mapped[str] = mapped_column(String(80))
    deployed_at: Mapped[datetime]
    comment: Mapped[str] = mapped_column(Text, default="")


class DefinitionDraft(Base):
    """The shared working draft of one definition file, edited in the designer until deployed or discarded.

    A draft may be invalid while it is being edited; `row_version` refuses a save made on a stale copy.
    """

    __tablename__ = "definition_draft"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # "process" | "decision" | "form", from the file name
    content: Mapped[str] = mapped_column(Text)
    # The newest deployed version of the file when the draft was started (None for a new file).
    base_definition_id: Mapped[int | None] = mapped_column(ForeignKey("definition.id"))
    origin: Mapped[str] = mapped_column(String(16))  # "designer" | "upload"
    updated_by: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime]
    row_version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": row_version}  # noqa: RUF012 - SQLAlchemy's declared mapping
