"""Deploy BPMN, DMN and form files as immutable, versioned definitions, after validating them whole."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import spiff
from engine.assignment import known_kinds, lane_kind
from engine.errors import DefinitionError, NotFoundError, Problem
from engine.forms import FormDefinition, form_from_raw, parse_form, with_choices
from engine.invariants import SUFFIX as INVARIANTS_SUFFIX
from engine.invariants import Invariant, check_references, forget_cached_invariants, parse_invariants
from engine.levels import (
    LEVELS_KIND,
    RiskScale,
    check_level_outputs,
    current_levels,
    forget_cached_scales,
    levels_key,
    parse_levels,
    rerank_open_tasks,
)
from engine.models import Definition
from engine.validation import check_sources
from engine.xmlsafe import parse_xml

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


@dataclass
class DeployResult:
    """What a deployment created, what it found unchanged, and (from files) what it left alone."""

    created: list[Definition] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # Files whose content is unchanged since they were last deployed from files while a designer
    # deployed another version since: the designer's version is kept.
    kept: list[str] = field(default_factory=list)
    # Files changed both on disk and in the designer since the last deploy from files: not deployed.
    conflicts: list[str] = field(default_factory=list)


@dataclass
class Validation:
    """What validating a set of files over the deployed ones found."""

    processes: dict[str, spiff.ParsedProcess]
    decisions: dict[str, tuple[str, str, str]]  # decision id -> (name, file name, source)
    forms: dict[str, tuple[FormDefinition, str, str]]  # form name -> (form, file name, source)
    problems: list[Problem]
    levels: dict[str, tuple[RiskScale, str, str]] = field(default_factory=dict)  # key -> (scale, file, source)
    invariants: dict[str, tuple[list[Invariant], str]] = field(default_factory=dict)  # file -> (parsed, source)


def read_directory(*directories: Path) -> list[SourceFile]:
    """Read every .bpmn, .dmn and .json file (forms, *.invariants.json) of the directories, sorted by name."""
    paths = sorted(
        (path for directory in directories for suffix in KIND_OF_SUFFIX for path in directory.glob(f"*{suffix}")),
        key=lambda path: path.name,
    )
    return [SourceFile(p.name, p.read_bytes()) for p in paths]


def validate(session: Session, files: Sequence[SourceFile]) -> Validation:
    """Validate files together with the deployed ones they replace or use; write nothing."""
    problems: list[Problem] = []
    sources = current_sources(session)
    for f in files:
        sources[f.name] = f.content
    bpmn: dict[str, etree._ElementTree] = {}
    dmn: dict[str, etree._ElementTree] = {}
    forms: dict[str, tuple[FormDefinition, str, str]] = {}
    levels: dict[str, tuple[RiskScale, str, str]] = {}
    invariants: dict[str, tuple[list[Invariant], str]] = {}
    for name, content in sorted(sources.items()):
        kind = definition_kind(name)
        if kind == "invariants":
            parsed, found = parse_invariants(name, content)
            problems.extend(found)
            invariants[name] = (parsed, content.decode("utf-8", errors="replace"))
            continue
        if kind == LEVELS_KIND:
            scale, found = parse_levels(name, content)
            problems.extend(found)
            if scale is not None:
                levels[levels_key(name)] = (scale, name, content.decode("utf-8"))
            continue
        if kind == "form":
            form, found = parse_form(name, content)
            problems.extend(found)
            if form is not None:
                forms[form.name] = (form, name, content.decode("utf-8"))
            continue
        try:
            tree = parse_xml(content, filename=name)
        except DefinitionError as exc:
            problems.extend(exc.problems)
            continue
        (dmn if kind == "decision" else bpmn)[name] = tree
    usable = {name: form for name, (form, _file, _source) in forms.items()}
    problems.extend(check_sources(bpmn, dmn, forms=usable, kinds=known_kinds(session)))
    problems.extend(_check_levels(session, files, levels, dmn))
    if problems:
        return Validation({}, {}, forms, problems, levels, invariants)
    processes, parse_problems = spiff.parse_definitions(bpmn, dmn)
    problems.extend(parse_problems)
    decisions = {
        decision.get("id", ""): (
            decision.get("name") or decision.get("id") or "", name, sources[name].decode("utf-8")
        )
        for name, tree in dmn.items()
        for decision in tree.getroot().iterfind("{*}decision")
    }
    problems.extend(_check_invariants(invariants, processes, dmn))
    return Validation(processes, decisions, forms, problems, levels, invariants)


def _check_levels(
    session: Session, files: Sequence[SourceFile], levels: Mapping[str, tuple[RiskScale, str, str]],
    dmn: Mapping[str, etree._ElementTree],
) -> list[Problem]:
    """Check the level outputs of every decision against the scale being deployed, else the deployed one."""
    deploying = sorted({f.name for f in files if definition_kind(f.name) == LEVELS_KIND})
    if len(deploying) > 1:
        return [Problem(file=name, message=f"one risk scale at a time: deploy only one of {', '.join(deploying)}")
                for name in deploying]
    if deploying:
        found = levels.get(levels_key(deploying[0]))
        if found is None:
            return []  # the file's own problems say why
        return check_level_outputs(dmn, found[0], deploying[0])
    current = current_levels(session)
    deployed = session.get(Definition, current.definition_id) if current.definition_id is not None else None
    return check_level_outputs(dmn, current, deployed.file_name if deployed else "the shipped scale")


def _check_invariants(
    invariants: Mapping[str, tuple[list[Invariant], str]], processes: Mapping[str, spiff.ParsedProcess],
    dmn: Mapping[str, etree._ElementTree],
) -> list[Problem]:
    """Check what the invariants files name against the processes and decisions, and ids across files."""
    steps = {task.element_id for parsed in processes.values() for task in parsed.user_tasks}
    outputs = {
        decision.get("id", ""): {out.get("name") or out.get("label") or "" for out in decision.iterfind(".//{*}output")}
        for tree in dmn.values() for decision in tree.getroot().iterfind("{*}decision")
    }
    problems: list[Problem] = []
    owner: dict[str, str] = {}
    for file_name, (parsed, _source) in sorted(invariants.items()):
        problems.extend(check_references(file_name, parsed, steps=steps, decisions=outputs))
        for invariant in parsed:
            if invariant.id in owner:
                problems.append(Problem(
                    file=file_name, element_id=invariant.id,
                    message=f"invariant {invariant.id}: the id is also used in {owner[invariant.id]}"))
            owner.setdefault(invariant.id, file_name)
    return problems


def deploy(
    session: Session, files: Sequence[SourceFile], *, actor: str, now: datetime, comment: str = "",
    origin: str = ORIGIN_FILES, origins: Mapping[str, str] | None = None,
) -> DeployResult:
    """Validate and store new versions of every changed process, decision, form and scale; all or nothing.

    `origin` is recorded on each new version; `origins` may name another one per file (an upload).
    """
    checked = validate(session, files)
    if checked.problems:
        raise DefinitionError(checked.problems)
    result = DeployResult()
    kinds = known_kinds(session)

    def store(
        kind: str, key: str, name: str, file_name: str, digest: str, source: str, *,
        spec: dict[str, object] | None = None, task_kinds: dict[str, str | None] | None = None,
        form_ids: dict[str, int] | None = None,
    ) -> None:
        created = _new_version(session, kind, key, name, file_name, digest, source, actor, now, comment,
                               (origins or {}).get(file_name, origin), spec=spec, task_kinds=task_kinds,
                               form_ids=form_ids)
        (result.created.append(created) if created else result.unchanged.append(key))

    form_hashes: dict[str, str] = {}
    for key, (form, file_name, source) in sorted(checked.forms.items()):
        form_hashes[key] = _sha(source)
        store("form", key, form.title, file_name, form_hashes[key], source)
    for key, (_scale, file_name, source) in sorted(checked.levels.items()):
        store(LEVELS_KIND, key, key, file_name, _sha(source), source)
    session.flush()  # the new form versions get the ids the processes pin
    if any(created.kind == LEVELS_KIND for created in result.created):
        rerank_open_tasks(session, current_levels(session))
    form_ids = _latest_ids(session, "form")
    decision_hashes: dict[str, str] = {}
    for key, (name, file_name, source) in sorted(checked.decisions.items()):
        decision_hashes[key] = _sha(source)
        store("decision", key, name, file_name, decision_hashes[key], source)
    for file_name, (_parsed, source) in sorted(checked.invariants.items()):
        key = file_name[: -len(INVARIANTS_SUFFIX)]
        store("invariants", key, key, file_name, _sha(source), source)
    sources = current_sources(session) | {f.name: f.content for f in files}
    for key, parsed in sorted(checked.processes.items()):
        source = sources[parsed.file_name].decode("utf-8")
        used_forms = forms_used(parsed)
        parts = [_sha(source)]
        parts += [f"{d}:{decision_hashes.get(d, '')}" for d in sorted(parsed.called_decisions)]
        parts += [f"{p}" for p in sorted(parsed.called_processes)]
        parts += [f"form:{name}:{form_hashes[name]}" for name in sorted(used_forms)]
        task_kinds = {task.element_id: lane_kind(task.lane, kinds) for task in parsed.user_tasks}
        store("process", key, parsed.name, parsed.file_name, _sha("\n".join(parts)), source,
              spec=spiff.spec_to_dict(parsed.bundle), task_kinds=task_kinds,
              form_ids={name: form_ids[name] for name in sorted(used_forms)})
    session.flush()
    return result


def forms_used(parsed: spiff.ParsedProcess) -> set[str]:
    """Return the names of the forms a process's steps and start event show."""
    names = {task.properties.get("form", "") for task in parsed.user_tasks}
    names.add(spiff.start_properties(parsed.bundle).get("form", ""))
    return {name for name in names if name}


def deploy_files(
    session: Session, files: Sequence[SourceFile], *, actor: str, now: datetime, comment: str = ""
) -> DeployResult:
    """Deploy the files of processes/ and forms/ without reverting what a designer deployed since.

    A file whose content is the one last deployed from files is left alone, even when a designer
    deployed another version of it since (`kept`); a file changed both on disk and in the designer
    is not deployed (`conflicts`). The rest are deployed together, all or nothing.
    """
    to_deploy: list[SourceFile] = []
    kept: list[str] = []
    conflicts: list[str] = []
    for f in files:
        latest = latest_of_file(session, f.name)
        try:
            text = f.content.decode("utf-8")
        except UnicodeDecodeError:
            to_deploy.append(f)  # validation says what is wrong with it
            continue
        if latest is None:
            to_deploy.append(f)
            continue
        if text == latest.source:
            continue
        from_files = latest_of_file(session, f.name, origin=ORIGIN_FILES)
        if from_files is not None and text == from_files.source:
            kept.append(f.name)
        elif from_files is not None and latest.source == from_files.source:
            to_deploy.append(f)
        else:
            conflicts.append(f.name)
    result = deploy(session, to_deploy, actor=actor, now=now, comment=comment, origin=ORIGIN_FILES)
    result.kept, result.conflicts = kept, conflicts
    return result


def _new_version(
    session: Session, kind: str, key: str, name: str, file_name: str, digest: str, source: str, actor: str,
    now: datetime, comment: str, origin: str, *, spec: dict[str, object] | None = None,
    task_kinds: dict[str, str | None] | None = None, form_ids: dict[str, int] | None = None,
) -> Definition | None:
    latest = latest_definition(session, key, kind=kind, required=False)
    if latest is not None and latest.content_hash == digest:
        return None
    definition = Definition(
        kind=kind, key=key, name=name, file_name=file_name,
        version=(latest.version + 1) if latest else 1, content_hash=digest, source=source,
        spec=spec, task_kinds=task_kinds, form_ids=form_ids, deployed_by=actor, deployed_at=now,
        comment=comment, origin=origin,
    )
    session.add(definition)
    return definition


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


def _latest_ids(session: Session, kind: str) -> dict[str, int]:
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
    """What running a process version needs: its spec, each task's agency kind, the forms it pins."""

    definition_id: int
    key: str
    version: int
    bundle: spiff.SpecBundle
    task_kinds: dict[str, str | None]
    form_ids: dict[str, int] = field(default_factory=dict)


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
    cached = Runnable(definition_id, row.key, row.version, spiff.spec_from_dict(row.spec), dict(row.task_kinds or {}),
                      {str(k): int(v) for k, v in (row.form_ids or {}).items()})
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


def filled_form(session: Session, form: FormDefinition) -> FormDefinition:
    """Return the form with the choices it takes from the protocol (`x-choices`) filled in."""
    return with_choices(form, {"risk_levels": current_levels(session).choices()})


def latest_forms(session: Session) -> dict[str, FormDefinition]:
    """Return the newest version of every deployed form, by name."""
    return {name: filled_form(session, form_version(session, definition_id))
            for name, definition_id in _latest_ids(session, "form").items()}


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


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
