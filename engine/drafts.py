"""The designer's drafts: one shared working copy per definition file, validated and deployed as a set.

Drafts may be invalid while they are edited. Saving on a stale copy is refused (ConflictError), and
so is deploying a draft whose file got a newer deployed version since the draft was started.
Operations only flush; the caller commits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import PurePath

from lxml import etree
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.db import is_postgresql
from engine.definitions import (
    BPMN_NS,
    KIND_OF_COMPOUND_SUFFIX,
    ORIGIN_DESIGNER,
    ORIGIN_UPLOAD,
    XML_KINDS,
    SourceFile,
    definition_kind,
    latest_definition,
    latest_of_file,
)
from engine.deploy import DeployResult, Validation, deploy, validate
from engine.errors import ConflictError, DefinitionError, NotFoundError, Problem
from engine.models import Definition, DefinitionDraft
from engine.persistence import check_version
from engine.validation import DMN_NAMESPACES
from engine.xmlsafe import MAX_XML_BYTES, parse_xml

# File names a draft may have: plain names, no folders; a form's name is also what steps refer to, and
# other JSON definitions are named like forms before their compound suffix (`risk.levels.json`).
_FILE_NAME = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,150}\.(bpmn|dmn|json)\Z")
_JSON_SUFFIXES = "|".join(re.escape(suffix) for suffix in [*KIND_OF_COMPOUND_SUFFIX, ".json"])
_FORM_NAME = re.compile(rf"\A[a-z][a-z0-9_]{{0,80}}({_JSON_SUFFIXES})\Z")


def check_file_name(file_name: str) -> str:
    """Return a safe draft file name or raise DefinitionError saying what a valid one looks like."""
    name = PurePath(file_name.replace("\\", "/")).name
    json_name = _FORM_NAME.match(name)
    if not _FILE_NAME.match(name) or (name.endswith(".json") and not json_name):
        raise DefinitionError([Problem(
            file=name or file_name,
            message="file name refused: use letters, digits, '_', '-' and '.' ending in .bpmn, .dmn or .json "
                    "(a form's name, lowercase with '_', is what the steps refer to; a risk scale ends in "
                    ".levels.json, the protocol's guarantees in .invariants.json)",
        )])
    return name


def list_drafts(session: Session) -> list[DefinitionDraft]:
    """Return every draft, by file name."""
    return list(session.execute(select(DefinitionDraft).order_by(DefinitionDraft.file_name)).scalars())


def get_draft(session: Session, file_name: str, *, lock: bool = False) -> DefinitionDraft | None:
    """Return the draft of a file (locked for update on PostgreSQL when `lock`), or None."""
    query = select(DefinitionDraft).where(DefinitionDraft.file_name == file_name)
    if lock and is_postgresql(session):
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def save_draft(
    session: Session, file_name: str, content: str, *, expected_version: int | None, actor: str, now: datetime,
    origin: str = ORIGIN_DESIGNER,
) -> DefinitionDraft:
    """Create or update the draft of a file; `expected_version` is the row version the editor loaded.

    None means "there was no draft when I opened the file": if one was created meanwhile, the save
    is refused, as is a save on an older row version. Nothing is validated here.
    """
    file_name = check_file_name(file_name)
    if len(content.encode("utf-8")) > MAX_XML_BYTES:
        raise DefinitionError([Problem(file=file_name, message="refused: the draft is larger than the size limit")])
    draft = get_draft(session, file_name, lock=True)
    if draft is None:
        if expected_version is not None:
            raise ConflictError("the draft was deployed or discarded meanwhile")
        base = latest_of_file(session, file_name)
        draft = DefinitionDraft(
            file_name=file_name, kind=definition_kind(file_name), content=content,
            base_definition_id=base.id if base else None, origin=origin, updated_by=actor, updated_at=now,
        )
        try:
            with session.begin_nested():
                session.add(draft)
                session.flush()
        except IntegrityError as exc:  # another designer created it at the same moment
            raise ConflictError("another draft of this file was created meanwhile") from exc
        return draft
    if expected_version is None:
        raise ConflictError(f"a draft of {file_name} was started meanwhile (version {draft.row_version})")
    check_version(draft.row_version, expected_version, "the draft")
    draft.content, draft.origin, draft.updated_by, draft.updated_at = content, origin, actor, now
    session.flush()
    return draft


def discard_draft(session: Session, file_name: str, *, expected_version: int) -> None:
    """Delete the draft of a file (its deployed versions stay as they are)."""
    draft = get_draft(session, file_name, lock=True)
    if draft is None:
        raise NotFoundError(f"there is no draft of {file_name}")
    check_version(draft.row_version, expected_version, "the draft")
    session.delete(draft)
    session.flush()


def draft_files(drafts: Sequence[DefinitionDraft]) -> list[SourceFile]:
    """Return the drafts as source files, the way a directory deploy reads files."""
    return [SourceFile(d.file_name, d.content.encode("utf-8")) for d in drafts]


def validate_drafts(session: Session, extra: Sequence[SourceFile] = ()) -> Validation:
    """Validate every draft (and `extra` files over them) together with the deployed definitions."""
    files = {f.name: f for f in draft_files(list_drafts(session))}
    files.update({f.name: f for f in extra})
    return validate(session, list(files.values()))


def stale_drafts(session: Session, drafts: Sequence[DefinitionDraft]) -> list[Problem]:
    """Name each draft whose file got another deployed source since the draft was started."""
    problems = []
    for draft in drafts:
        latest = latest_of_file(session, draft.file_name)
        if latest is None or latest.id == draft.base_definition_id:
            continue
        base = session.get(Definition, draft.base_definition_id) if draft.base_definition_id else None
        if base is None or base.source != latest.source:
            problems.append(Problem(
                file=draft.file_name,
                message=f"version {latest.version} of this file was deployed by {latest.deployed_by} after this "
                        "draft was started: download it, bring your changes over and deploy again",
            ))
    return problems


def deploy_drafts(session: Session, *, actor: str, now: datetime, comment: str) -> DeployResult:
    """Deploy every draft as one set over the deployed definitions, then drop the drafts; all or nothing."""
    drafts = list_drafts(session)
    if not drafts:
        raise DefinitionError([Problem(file="(drafts)", message="there are no drafts to deploy")])
    stale = stale_drafts(session, drafts)
    if stale:
        raise DefinitionError(stale)
    result = deploy(session, draft_files(drafts), actor=actor, now=now, comment=comment, origin=ORIGIN_DESIGNER,
                    origins={d.file_name: d.origin for d in drafts})
    for draft in drafts:
        session.delete(draft)
    session.flush()
    return result


def upload_file(
    session: Session, file_name: str, content: bytes, *, expected_version: int | None, actor: str, now: datetime,
) -> DefinitionDraft:
    """Check an uploaded file as a deployment would and make it the draft of its file; on any problem, store nothing.

    The file keeps the name of the deployed file that defines the same process or decision (a file
    made in another modeller often has another name); otherwise it keeps its own.
    """
    file_name = check_file_name(file_name)
    kind = definition_kind(file_name)
    if kind in XML_KINDS:
        tree = parse_xml(content, filename=file_name)
        _check_namespace(file_name, kind, tree)
        file_name = _file_defining(session, file_name, kind, tree)
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionError([Problem(file=file_name, message="refused: the file is not UTF-8 text")]) from exc
    problems = validate_drafts(session, [SourceFile(file_name, content)]).problems
    if problems:
        raise DefinitionError(problems)
    return save_draft(session, file_name, text.removeprefix("\ufeff"), expected_version=expected_version,
                      actor=actor, now=now, origin=ORIGIN_UPLOAD)


def _check_namespace(file_name: str, kind: str, tree: etree._ElementTree) -> None:
    root = tree.getroot()
    qname = etree.QName(root)
    line = root.sourceline if isinstance(root.sourceline, int) else None
    if kind == "process" and root.tag != f"{{{BPMN_NS}}}definitions":
        raise DefinitionError([Problem(
            file=file_name, line=line,
            message=f"not a BPMN 2.0 file: the root element is {root.tag!r}; expected definitions in namespace "
                    f"{BPMN_NS}",
        )])
    if kind == "decision" and (qname.localname != "definitions" or qname.namespace not in DMN_NAMESPACES):
        raise DefinitionError([Problem(
            file=file_name, line=line,
            message=f"not a DMN file: the root element is {root.tag!r}; expected definitions in one of the DMN "
                    "1.1-1.3 namespaces",
        )])


def _file_defining(session: Session, file_name: str, kind: str, tree: etree._ElementTree) -> str:
    """Return the deployed file that defines the same process or decision as the upload (else its own name)."""
    tag = "{*}process" if kind == "process" else "{*}decision"
    keys = [el.get("id", "") for el in tree.getroot().iterfind(tag)]
    files = {
        found.file_name for key in keys
        if (found := latest_definition(session, key, kind=kind, required=False)) is not None
    }
    if len(files) > 1:
        raise DefinitionError([Problem(
            file=file_name, message=f"the file defines {', '.join(keys)}, which come from different files "
                                    f"({', '.join(sorted(files))}): upload one file per deployed file",
        )])
    return files.pop() if files else file_name
