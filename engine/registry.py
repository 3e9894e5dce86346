"""Deploy BPMN and DMN files as immutable, versioned definitions, after validating them whole."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import spiff
from engine.assignment import known_kinds, lane_kind
from engine.errors import DefinitionError, NotFoundError, Problem
from engine.models import Definition
from engine.validation import check_sources
from engine.xmlsafe import parse_xml
from forms import FormDefinition

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"


@dataclass(frozen=True)
class SourceFile:
    """A BPMN or DMN file to deploy: its file name and raw bytes."""

    name: str
    content: bytes

    @property
    def kind(self) -> str:
        """Tell 'bpmn' or 'dmn' from the file name."""
        return "dmn" if self.name.lower().endswith(".dmn") else "bpmn"


@dataclass
class DeployResult:
    """What a deployment created and what it found unchanged."""

    created: list[Definition] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def read_directory(directory: Path) -> list[SourceFile]:
    """Read every .bpmn and .dmn file of a directory, sorted by name."""
    paths = sorted([*directory.glob("*.bpmn"), *directory.glob("*.dmn")])
    return [SourceFile(p.name, p.read_bytes()) for p in paths]


def validate(
    session: Session, files: Sequence[SourceFile], forms: Mapping[str, FormDefinition],
    form_problems: Sequence[Problem] = (),
) -> tuple[dict[str, spiff.ParsedProcess], dict[str, tuple[str, str, str]], list[Problem]]:
    """Validate files together with the deployed ones they replace or use; write nothing.

    Returns the parsed processes, the decisions found (id -> (name, file, source)) and problems.
    """
    problems: list[Problem] = list(form_problems)
    sources = _current_sources(session)
    for f in files:
        sources[f.name] = f.content
    bpmn: dict[str, etree._ElementTree] = {}
    dmn: dict[str, etree._ElementTree] = {}
    for name, content in sources.items():
        try:
            tree = parse_xml(content, filename=name)
        except DefinitionError as exc:
            problems.extend(exc.problems)
            continue
        (dmn if name.lower().endswith(".dmn") else bpmn)[name] = tree
    problems.extend(check_sources(bpmn, dmn, forms=forms, kinds=known_kinds(session)))
    if problems:
        return {}, {}, problems
    processes, parse_problems = spiff.parse_definitions(bpmn, dmn)
    problems.extend(parse_problems)
    decisions = {
        decision.get("id", ""): (
            decision.get("name") or decision.get("id") or "", name, sources[name].decode("utf-8")
        )
        for name, tree in dmn.items()
        for decision in tree.getroot().iterfind("{*}decision")
    }
    return processes, decisions, problems


def deploy(
    session: Session, files: Sequence[SourceFile], *, forms: Mapping[str, FormDefinition],
    actor: str, now: datetime, comment: str = "", form_problems: Sequence[Problem] = (),
) -> DeployResult:
    """Validate and store new versions of every changed process and decision; all or nothing."""
    processes, decisions, problems = validate(session, files, forms, form_problems)
    if problems:
        raise DefinitionError(problems)
    result = DeployResult()
    kinds = known_kinds(session)
    decision_hashes: dict[str, str] = {}
    for key, (name, file_name, source) in sorted(decisions.items()):
        digest = _sha(source)
        decision_hashes[key] = digest
        created = _new_version(session, "decision", key, name, file_name, digest, source, None,
                               actor, now, comment)
        (result.created.append(created) if created else result.unchanged.append(key))
    sources = _current_sources(session) | {f.name: f.content for f in files}
    for key, parsed in sorted(processes.items()):
        source = sources[parsed.file_name].decode("utf-8")
        parts = [_sha(source)]
        parts += [f"{d}:{decision_hashes.get(d, '')}" for d in sorted(parsed.called_decisions)]
        parts += [f"{p}" for p in sorted(parsed.called_processes)]
        digest = _sha("\n".join(parts))
        spec = spiff.spec_to_dict(parsed.bundle)
        task_kinds = {task.element_id: lane_kind(task.lane, kinds) for task in parsed.user_tasks}
        created = _new_version(session, "process", key, parsed.name, parsed.file_name, digest, source,
                               spec, actor, now, comment, task_kinds)
        (result.created.append(created) if created else result.unchanged.append(key))
    session.flush()
    return result


def _new_version(
    session: Session, kind: str, key: str, name: str, file_name: str, digest: str, source: str,
    spec: dict[str, object] | None, actor: str, now: datetime, comment: str,
    task_kinds: dict[str, str | None] | None = None,
) -> Definition | None:
    latest = latest_definition(session, key, kind=kind, required=False)
    if latest is not None and latest.content_hash == digest:
        return None
    definition = Definition(
        kind=kind, key=key, name=name, file_name=file_name,
        version=(latest.version + 1) if latest else 1, content_hash=digest, source=source,
        spec=spec, task_kinds=task_kinds, deployed_by=actor, deployed_at=now, comment=comment,
    )
    session.add(definition)
    return definition


def latest_definition(
    session: Session, key: str, *, kind: str = "process", required: bool = True
) -> Definition | None:
    """Return the newest version of a process or decision (None or NotFoundError if none)."""
    found = session.execute(
        select(Definition)
        .where(Definition.kind == kind, Definition.key == key)
        .order_by(Definition.version.desc())
        .limit(1)
    ).scalar_one_or_none()
    if found is None and required:
        raise NotFoundError(f"no deployed {kind} named {key!r}")
    return found


def _current_sources(session: Session) -> dict[str, bytes]:
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


@dataclass(frozen=True)
class Runnable:
    """What running a process version needs: its restored spec and the agency kind of each task."""

    definition_id: int
    key: str
    version: int
    bundle: spiff.SpecBundle
    task_kinds: dict[str, str | None]


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
        select(Definition.key, Definition.version, Definition.spec, Definition.task_kinds)
        .where(Definition.id == definition_id, Definition.kind == "process")
    ).one_or_none()
    if row is None or row.spec is None:
        raise NotFoundError(f"process definition {definition_id} does not exist")
    cached = Runnable(definition_id, row.key, row.version, spiff.spec_from_dict(row.spec), dict(row.task_kinds or {}))
    _RUNNABLE_CACHE[cache_key] = cached
    return cached


_RUNNABLE_CACHE: dict[tuple[str, int], Runnable] = {}


def forget_cached_definitions() -> None:
    """Empty the in-memory definition cache (after a database is wiped and its ids start again)."""
    _RUNNABLE_CACHE.clear()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
