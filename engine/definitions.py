"""Deployed definitions: read versions of processes, decisions and forms, cached in memory (versions never change)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import spiff
from engine.errors import NotFoundError
from engine.forms import FormDefinition, form_from_raw, with_choices
from engine.invariants import SUFFIX as INVARIANTS_SUFFIX
from engine.invariants import forget_cached_invariants
from engine.levels import LEVELS_KIND, current_levels, forget_cached_scales
from engine.models import Definition, OpenTask, ProcessInstance
from engine.properties import ProcessProperties

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
# What each kind of file holds: a BPMN file holds processes, a DMN file a decision, a JSON file a form.
KIND_OF_SUFFIX = {".bpmn": "process", ".dmn": "decision", ".json": "form"}
# Kinds told by a compound suffix, checked first: `risk.levels.json` is a risk scale, not a form.
KIND_OF_COMPOUND_SUFFIX = {".levels.json": LEVELS_KIND, INVARIANTS_SUFFIX: "invariants"}
# Kinds whose files are XML (BPMN, DMN); the others are JSON.
XML_KINDS = frozenset({"process", "decision"})
ORIGIN_FILES, ORIGIN_DESIGNER, ORIGIN_UPLOAD = "files", "designer", "upload"

def definition_kind(file_name: str) -> str:
    """Tell the kind of definition a file holds from its name: process, decision, form, levels..."""
    lower = file_name.lower()
    for compound, kind in KIND_OF_COMPOUND_SUFFIX.items():
        if lower.endswith(compound):
            return kind
    suffix = Path(file_name).suffix.lower()
    if suffix not in KIND_OF_SUFFIX:
        raise ValueError(f"{file_name}: not a .bpmn, .dmn or .json file")
    return KIND_OF_SUFFIX[suffix]


@dataclass(frozen=True)
class SourceFile:
    """A BPMN, DMN or form file to deploy: its file name and raw bytes."""

    name: str
    content: bytes

    @property
    def kind(self) -> str:
        """Tell 'bpmn', 'dmn', 'form' or another JSON kind ('levels'...) from the file name."""
        kind = definition_kind(self.name)
        return {"process": "bpmn", "decision": "dmn"}.get(kind, kind)


def read_directory(*directories: Path) -> list[SourceFile]:
    """Read every .bpmn, .dmn and .json file (forms, *.invariants.json) of the directories, sorted by name."""
    paths = sorted(
        (path for directory in directories for suffix in KIND_OF_SUFFIX for path in directory.glob(f"*{suffix}")),
        key=lambda path: path.name,
    )
    return [SourceFile(p.name, p.read_bytes()) for p in paths]


def latest_definition(
    session: Session, key: str, *, kind: str = "process", required: bool = True
) -> Definition | None:
    """Return the newest version of a process, decision or form (None or NotFoundError if none)."""
    found = session.execute(
        select(Definition)
        .where(Definition.kind == kind, Definition.key == key)
        .order_by(Definition.version.desc())
        .limit(1)
    ).scalar_one_or_none()
    if found is None and required:
        raise NotFoundError(f"no deployed {kind} named {key!r}")
    return found


def latest_of_file(session: Session, file_name: str, *, origin: str | None = None) -> Definition | None:
    """Return the newest version deployed from a file (optionally: of one origin), or None."""
    query = select(Definition).where(Definition.file_name == file_name)
    if origin is not None:
        query = query.where(Definition.origin == origin)
    return session.execute(query.order_by(Definition.id.desc()).limit(1)).scalar_one_or_none()


def current_sources(session: Session) -> dict[str, bytes]:
    """Return the source of every file as last deployed, by file name."""
    newest = (
        select(Definition.kind, Definition.key, func.max(Definition.version).label("v"))
        .group_by(Definition.kind, Definition.key)
        .subquery()
    )
    rows = session.execute(
        select(Definition.file_name, Definition.source).join(
            newest,
            (Definition.kind == newest.c.kind)
            & (Definition.key == newest.c.key)
            & (Definition.version == newest.c.v),
        )
    ).all()
    return {file_name: source.encode("utf-8") for file_name, source in rows}


def latest_ids(session: Session, kind: str) -> dict[str, int]:
    """Return the id of the newest version of every definition of a kind, by key."""
    newest = (
        select(Definition.key, func.max(Definition.version).label("v"))
        .where(Definition.kind == kind).group_by(Definition.key).subquery()
    )
    rows = session.execute(
        select(Definition.key, Definition.id).join(
            newest, (Definition.key == newest.c.key) & (Definition.version == newest.c.v)
        ).where(Definition.kind == kind)
    ).all()
    return {key: definition_id for key, definition_id in rows}


@dataclass(frozen=True)
class Runnable:
    """What running a process version needs: its spec and properties, each task's agency kind, the forms it pins."""

    definition_id: int
    key: str
    version: int
    bundle: spiff.SpecBundle
    task_kinds: dict[str, str | None]
    form_ids: dict[str, int] = field(default_factory=dict)
    properties: ProcessProperties = field(default_factory=ProcessProperties)


def latest_runnable(session: Session, key: str) -> Runnable:
    """Return the newest version of a process, ready to start."""
    found = session.execute(
        select(Definition.id).where(Definition.kind == "process", Definition.key == key)
        .order_by(Definition.version.desc()).limit(1)
    ).scalar_one_or_none()
    if found is None:
        raise NotFoundError(f"no deployed process named {key!r}")
    return runnable(session, found)


def runnable(session: Session, definition_id: int) -> Runnable:
    """Return a process version ready to run, cached in memory (versions never change)."""
    cache_key = (str(session.get_bind().engine.url), definition_id)
    cached = _RUNNABLE_CACHE.get(cache_key)
    if cached is not None:
        return cached
    row = session.execute(
        select(Definition.key, Definition.version, Definition.spec, Definition.task_kinds, Definition.form_ids)
        .where(Definition.id == definition_id, Definition.kind == "process")
    ).one_or_none()
    if row is None or row.spec is None:
        raise NotFoundError(f"process definition {definition_id} does not exist")
    bundle = spiff.spec_from_dict(row.spec)
    cached = Runnable(definition_id, row.key, row.version, bundle, dict(row.task_kinds or {}),
                      {str(k): int(v) for k, v in (row.form_ids or {}).items()}, spiff.process_properties(bundle))
    _RUNNABLE_CACHE[cache_key] = cached
    return cached


def form_version(session: Session, definition_id: int) -> FormDefinition:
    """Return one stored form version, cached in memory (versions never change)."""
    cache_key = (str(session.get_bind().engine.url), definition_id)
    cached = _FORM_CACHE.get(cache_key)
    if cached is not None:
        return cached
    row = session.execute(
        select(Definition.key, Definition.source).where(Definition.id == definition_id, Definition.kind == "form")
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"form definition {definition_id} does not exist")
    cached = form_from_raw(row.key, json.loads(row.source))
    _FORM_CACHE[cache_key] = cached
    return cached


def pinned_form(session: Session, definition: Runnable, name: str | None) -> FormDefinition | None:
    """Return the version of a form that a process version pinned (None if it names no such form).

    Process versions deployed before forms were versioned pin none: they get the newest version.
    """
    if not name:
        return None
    definition_id = definition.form_ids.get(name)
    if definition_id is None:
        if definition.form_ids:
            return None
        latest = latest_definition(session, name, kind="form", required=False)
        return None if latest is None else filled_form(session, form_version(session, latest.id))
    return filled_form(session, form_version(session, definition_id))


def start_form(session: Session, definition: Runnable) -> FormDefinition | None:
    """Return the form of a process version's start event, the version it pinned (None if it has none)."""
    return pinned_form(session, definition, definition.properties.start.form)


def task_form(session: Session, task: OpenTask) -> FormDefinition | None:
    """Return the version of a task's form that its process version pinned (None if it has no form)."""
    definition_id = session.execute(
        select(ProcessInstance.definition_id).where(ProcessInstance.id == task.instance_id)
    ).scalar_one()
    return pinned_form(session, runnable(session, definition_id), task.form)


def process_track(session: Session, process_key: str) -> str | None:
    """Return the track (line of work) the newest version of a process declares, if any."""
    return latest_runnable(session, process_key).properties.start.track


def filled_form(session: Session, form: FormDefinition) -> FormDefinition:
    """Return the form with the choices it takes from the protocol (`x-choices`) filled in."""
    return with_choices(form, {"risk_levels": current_levels(session).choices()})


def latest_forms(session: Session) -> dict[str, FormDefinition]:
    """Return the newest version of every deployed form, by name."""
    return {name: filled_form(session, form_version(session, definition_id))
            for name, definition_id in latest_ids(session, "form").items()}


_RUNNABLE_CACHE: dict[tuple[str, int], Runnable] = {}
_FORM_CACHE: dict[tuple[str, int], FormDefinition] = {}


def forget_cached_definitions(definition_ids: Iterable[int] | None = None) -> None:
    """Drop cached definitions: all of them (a wiped database), or some ids (rolled back, so reusable)."""
    forget_cached_invariants()  # keyed by definition ids, which a wiped database hands out again
    if definition_ids is None:
        _RUNNABLE_CACHE.clear()
        _FORM_CACHE.clear()
        forget_cached_scales()
        return
    ids = set(definition_ids)
    forget_cached_scales(ids)
    for cache in (_RUNNABLE_CACHE, _FORM_CACHE):
        for cache_key in [k for k in cache if k[1] in ids]:
            del cache[cache_key]


def forget_cached_database(url: str) -> None:
    """Drop what the caches hold of one database (a private one being dropped, such as the verifier's)."""
    for cache in (_RUNNABLE_CACHE, _FORM_CACHE):
        for cache_key in [k for k in cache if k[0] == url]:
            del cache[cache_key]


