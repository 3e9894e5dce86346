"""Bulk reassignment: a supervisor hands several open steps of her agency to one named member."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import ConflictError, NotFoundError, PermissionDeniedError
from engine.models import Case, OpenTask
from engine.tasks import assign_task
from webapp.auth.principal import Principal
from webapp.limits import parse_count, parse_id


@dataclass
class ReassignReport:
    """Which selected steps were assigned, which changed meanwhile, which were refused (by task id)."""

    assigned: list[int] = field(default_factory=list)
    conflicts: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    references: dict[int, str] = field(default_factory=dict)

    def labels(self, task_ids: Iterable[int]) -> list[str]:
        """Return the case references of some steps (the task number if the step is gone)."""
        return [self.references.get(task_id, f"#{task_id}") for task_id in task_ids]


def parse_selection(values: Iterable[str]) -> list[tuple[int, int]]:
    """Read the checked steps ("task id:version"), ignoring malformed values and repeats."""
    selection: dict[int, int] = {}
    for value in values:
        task_text, _, version_text = value.partition(":")
        task_id, version = parse_id(task_text), parse_count(version_text)
        if task_id is not None and version is not None:
            selection.setdefault(task_id, version)
    return list(selection.items())


def reassign_tasks(
    session: Session, principal: Principal, selection: Sequence[tuple[int, int]], assignee_id: int, *, now: datetime,
) -> ReassignReport:
    """Assign each selected step to `assignee_id` through the engine, in the caller's transaction.

    Each step runs in a savepoint: a step changed since the page was read (stale version, completed)
    or not of the supervisor's agency is reported and left as it was; the others are assigned, and
    the caller commits them together.
    """
    report = ReassignReport()
    ids = [task_id for task_id, _version in selection]
    report.references = dict(session.execute(
        select(OpenTask.id, Case.reference).join(Case, Case.id == OpenTask.case_id).where(OpenTask.id.in_(ids))
    ).all()) if ids else {}
    for task_id, version in selection:
        try:
            with session.begin_nested():
                assign_task(session, task_id, assignee_id, now=now, actor=principal.actor, expected_version=version)
        except (ConflictError, NotFoundError):
            report.conflicts.append(task_id)
        except PermissionDeniedError:
            report.refused.append(task_id)
        else:
            report.assigned.append(task_id)
    return report
