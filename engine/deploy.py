"""Deploy BPMN, DMN and form files as immutable, versioned definitions, after validating them whole."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree
from sqlalchemy.orm import Session

from engine import spiff
from engine.assignment import known_kinds, lane_kind
from engine.definitions import (
    ORIGIN_FILES,
    SourceFile,
    current_sources,
    definition_kind,
    latest_definition,
    latest_ids,
    latest_of_file,
)
from engine.errors import DefinitionError, Problem
from engine.forms import FormDefinition, parse_form
from engine.invariants import SUFFIX as INVARIANTS_SUFFIX
from engine.invariants import Invariant, check_references, parse_invariants
from engine.levels import (
    LEVELS_KIND,
    RiskScale,
    check_level_outputs,
    current_levels,
    levels_key,
    parse_levels,
    rerank_open_tasks,
)
from engine.models import Definition
from engine.validation import check_sources
from engine.xmlsafe import parse_xml


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
    form_ids = latest_ids(session, "form")
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
    return parsed.properties.forms()


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


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

