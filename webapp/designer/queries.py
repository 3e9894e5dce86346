"""Reads of the designer: every definition with its versions and drafts, and what the editors list."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.definitions import definition_kind, latest_of_file
from engine.drafts import get_draft, list_drafts
from engine.models import Agency, AgencyKind, Definition, DefinitionDraft, ProcessInstance, Territory, agency_territory

KIND_ORDER = {"process": 0, "decision": 1, "form": 2, "levels": 3, "invariants": 4}


@dataclass(frozen=True)
class VersionRow:
    """One deployed version: who deployed it, when, why, from where, and how many instances run on it."""

    id: int
    version: int
    deployed_by: str
    deployed_at: datetime
    comment: str
    origin: str
    running: int


@dataclass
class DefinitionGroup:
    """A process, decision table or form: its versions (newest first) and its draft, if any."""

    kind: str
    key: str
    name: str
    file_name: str
    versions: list[VersionRow] = field(default_factory=list)
    draft: DefinitionDraft | None = None


def overview(session: Session) -> list[DefinitionGroup]:
    """Return every definition with its versions and drafts, processes first; drafts of new files too."""
    running = dict(session.execute(
        select(ProcessInstance.definition_id, func.count()).where(ProcessInstance.status == "running")
        .group_by(ProcessInstance.definition_id)
    ).all())
    groups: dict[tuple[str, str], DefinitionGroup] = {}
    rows = session.execute(
        select(Definition.id, Definition.kind, Definition.key, Definition.name, Definition.file_name,
               Definition.version, Definition.deployed_by, Definition.deployed_at, Definition.comment,
               Definition.origin).order_by(Definition.kind, Definition.key, Definition.version.desc())
    ).all()
    for row in rows:
        group = groups.setdefault((row.kind, row.key), DefinitionGroup(row.kind, row.key, row.name, row.file_name))
        group.versions.append(VersionRow(row.id, row.version, row.deployed_by, row.deployed_at, row.comment,
                                         row.origin, int(running.get(row.id, 0))))
    by_file = {group.file_name: group for group in groups.values() if group.versions}
    for draft in list_drafts(session):
        found = by_file.get(draft.file_name)
        if found is None:
            stem = draft.file_name.rsplit(".", 1)[0]
            found = groups.setdefault((draft.kind, f"({draft.file_name})"),
                                      DefinitionGroup(draft.kind, stem, stem, draft.file_name))
        found.draft = draft
    return sorted(groups.values(), key=lambda g: (KIND_ORDER.get(g.kind, 9), g.key))


@dataclass(frozen=True)
class EditorSource:
    """What an editor opens: the draft if there is one, else the newest deployed version, else a skeleton."""

    file_name: str
    kind: str
    content: str
    draft: DefinitionDraft | None
    latest: Definition | None


def editor_source(session: Session, file_name: str, skeleton: str) -> EditorSource:
    """Return the text an editor opens for a file."""
    draft = get_draft(session, file_name)
    latest = latest_of_file(session, file_name)
    content = draft.content if draft else latest.source if latest else skeleton
    return EditorSource(file_name, definition_kind(file_name), content, draft, latest)


def form_names(session: Session) -> list[str]:
    """Return the names of the deployed forms and of the forms drafted in the designer."""
    deployed = set(session.execute(select(Definition.key).where(Definition.kind == "form")).scalars())
    drafted = {d.file_name.removesuffix(".json") for d in list_drafts(session) if d.kind == "form"}
    return sorted(deployed | drafted)


def decision_files(session: Session) -> dict[str, str]:
    """Map each deployed decision id to the file that holds it."""
    return dict(session.execute(select(Definition.key, Definition.file_name).where(Definition.kind == "decision")
                                .distinct()).all())


def agency_kinds(session: Session) -> list[tuple[str, str]]:
    """Return (code, label) of every agency kind, by label: what a lane may name."""
    return [(k.code, k.name) for k in session.execute(select(AgencyKind).order_by(AgencyKind.name)).scalars()]


def process_keys(session: Session) -> list[tuple[str, str]]:
    """Return (key, name) of every deployed process."""
    rows = session.execute(select(Definition.key, Definition.name, Definition.version)
                           .where(Definition.kind == "process").order_by(Definition.key, Definition.version)).all()
    return sorted({key: name for key, name, _version in rows}.items())


def territories_with_agencies(session: Session) -> list[tuple[int, str, int]]:
    """Return (id, name, number of active agencies) of every territory."""
    return [(row[0], row[1], int(row[2])) for row in session.execute(
        select(Territory.id, Territory.name, func.count(Agency.id))
        .outerjoin(agency_territory, agency_territory.c.territory_id == Territory.id)
        .outerjoin(Agency, (Agency.id == agency_territory.c.agency_id) & Agency.active.is_(True))
        .group_by(Territory.id, Territory.name).order_by(Territory.name)
    ).all()]


def version_pair(
    session: Session, kind: str, key: str, before: int, after: int
) -> tuple[Definition, Definition] | None:
    """Return two versions of one definition (None if either does not exist)."""
    rows = {d.version: d for d in session.execute(
        select(Definition).where(Definition.kind == kind, Definition.key == key,
                                 Definition.version.in_((before, after)))).scalars()}
    if before not in rows or after not in rows:
        return None
    return rows[before], rows[after]
