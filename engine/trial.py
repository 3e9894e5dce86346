"""Try drafts before deploying them: the real engine on a synthetic case, a simulated clock, nothing kept.

Everything happens inside a savepoint that is always rolled back: the drafts are deployed, a
synthetic case (no personal data) is opened in a territory, the process starts with the scenario's
data, the scenario's steps are completed in order as the clock moves and the case's due timers
fire. What is reported is read before the rollback: the path taken, every task created with its
lane, agency kind, the territory's agency and deadline, and what the case would chain to next.
Definition versions cached during the try are dropped, since their ids will be reused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import durations
from engine.actor import Actor
from engine.cases import open_case
from engine.definitions import SourceFile, forget_cached_definitions, latest_runnable, task_form
from engine.deploy import deploy
from engine.errors import EngineError, TaskDataError
from engine.execution import complete_task, fire_timer, start_process
from engine.forms import FormDefinition
from engine.history import how_tasks_closed
from engine.models import Agency, Case, Definition, DueTimer, OpenTask, ProcessInstance
from engine.persistence import load_run

MAX_STEPS = 200  # a scenario is a handful of steps; this bounds a runaway one


@dataclass(frozen=True)
class Step:
    """Complete the open task `element_id` with `data`, after moving the clock forward by `after`."""

    element_id: str
    data: dict[str, Any]
    after: timedelta = timedelta(0)


@dataclass(frozen=True)
class Scenario:
    """What to try: a process started in a territory with start data, a synthetic case's facts, steps."""

    process_key: str
    territory_id: int
    data: dict[str, Any] = field(default_factory=dict)
    case: dict[str, Any] = field(default_factory=dict)  # risk_level, status and other facts
    steps: tuple[Step, ...] = ()
    advance: timedelta = timedelta(0)  # after the last step: move the clock on, firing due timers


@dataclass
class TrialTask:
    """A task the try created."""

    task_id: int
    element_id: str
    name: str
    lane: str | None
    agency_kind: str | None
    agency: str | None
    created_at: datetime
    due_at: datetime | None
    visible_from: datetime | None
    status: str = "open"  # open | completed | cancelled
    example: dict[str, Any] = field(default_factory=dict)  # valid-looking answers for its form


@dataclass
class TrialInstance:
    """A process instance the try ran: its version, status and the elements it went through."""

    process_key: str
    version: int
    status: str
    path: list[str]


@dataclass
class TrialReport:
    """What the try did; `problems` say where it stopped and why."""

    started_at: datetime
    ended_at: datetime
    instances: list[TrialInstance] = field(default_factory=list)
    tasks: list[TrialTask] = field(default_factory=list)
    scheduled: list[tuple[str, datetime]] = field(default_factory=list)  # (process, when) of the chain
    log: list[tuple[datetime, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    field_errors: dict[str, list[str]] = field(default_factory=dict)


def run_trial(
    session: Session, files: Sequence[SourceFile], scenario: Scenario, *, actor: Actor, now: datetime
) -> TrialReport:
    """Run a scenario on the drafts `files` over the deployed definitions; store nothing.

    Raises DefinitionError when the drafts do not validate (nothing ran).
    """
    before = session.execute(select(func.max(Definition.id))).scalar() or 0
    savepoint = session.begin_nested()
    try:
        deploy(session, files, actor=actor.name, now=now, comment="(prueba)", origin="trial")
        return _Trial(session, scenario, actor, now).run()
    finally:
        after = session.execute(select(func.max(Definition.id))).scalar() or 0
        savepoint.rollback()
        forget_cached_definitions(range(before + 1, after + 1))


class _Trial:
    def __init__(self, session: Session, scenario: Scenario, actor: Actor, now: datetime) -> None:
        self.session, self.scenario, self.actor, self.now = session, scenario, actor, now
        self.report = TrialReport(started_at=now, ended_at=now)
        self.seen: dict[int, TrialTask] = {}
        self.case_id = 0

    def run(self) -> TrialReport:
        facts = {k: v for k, v in self.scenario.case.items() if k not in ("risk_level", "status")}
        case = open_case(self.session, territory_id=self.scenario.territory_id, now=self.now, actor=self.actor,
                         facts=facts)
        case.risk_level = self.scenario.case.get("risk_level")
        case.status = str(self.scenario.case.get("status") or "active")
        self.case_id = case.id
        self.session.flush()
        try:
            start = latest_runnable(self.session, self.scenario.process_key).properties.start
        except EngineError as exc:
            self.report.problems.append(str(exc))
            return self.report
        if self._attempt(lambda: start_process(self.session, case, self.scenario.process_key, self.scenario.data,
                                               now=self.now, actor=self.actor, check_form=bool(start.form)),
                         f"start {self.scenario.process_key}"):
            for step in self.scenario.steps[:MAX_STEPS]:
                if not self._step(step):
                    break
            else:
                self._move_clock(self.scenario.advance)
        self._collect()
        return self.report

    def _attempt(self, action: Callable[[], object], what: str) -> bool:
        """Run one engine operation in its own savepoint; report its failure and stop there."""
        try:
            with self.session.begin_nested():
                action()
        except TaskDataError as exc:
            self.report.problems.append(f"{what}: the data does not pass the form")
            self.report.field_errors = exc.errors
            return False
        except EngineError as exc:
            self.report.problems.append(f"{what}: {exc}")
            return False
        self.report.log.append((self.now, what))
        self._snapshot()
        return True

    def _step(self, step: Step) -> bool:
        if not self._move_clock(step.after):
            return False
        task = self.session.execute(
            select(OpenTask).where(OpenTask.case_id == self.case_id, OpenTask.element_id == step.element_id)
            .order_by(OpenTask.id).limit(1)
        ).scalar_one_or_none()
        if task is None:
            open_now = sorted(self.session.execute(
                select(OpenTask.element_id).where(OpenTask.case_id == self.case_id)).scalars())
            self.report.problems.append(f"step {step.element_id}: not open now (open: {', '.join(open_now) or '-'})")
            return False
        if task.agency_id is None:
            self.report.problems.append(
                f"step {step.element_id}: no agency of kind {task.agency_kind or '?'} serves the territory, "
                "so nobody would see it")
            return False
        worker = Actor(user_id=None, name=self.actor.name, agency_id=task.agency_id, roles=frozenset({"trial"}))
        return self._attempt(lambda: complete_task(self.session, task.id, step.data, expected_version=task.version,
                                                   now=self.now, actor=worker), f"complete {step.element_id}")

    def _move_clock(self, delta: timedelta) -> bool:
        """Move the simulated clock forward, firing the synthetic case's timers as they fall due."""
        target = self.now + delta
        while True:
            timer = self.session.execute(
                select(DueTimer).where(DueTimer.case_id == self.case_id, DueTimer.fire_at <= target)
                .order_by(DueTimer.fire_at, DueTimer.id).limit(1)
            ).scalar_one_or_none()
            if timer is None:
                break
            self.now = max(self.now, timer.fire_at)
            what = f"timer: {(timer.payload or {}).get('process_key')} starts" if timer.kind == "start_process" \
                else "timer"
            if not self._attempt(_firing(self.session, timer, self.now), what):
                return False
        self.now = target
        return True

    def _snapshot(self) -> None:
        """Remember every task open now (a completed task's row is gone afterwards)."""
        rows = self.session.execute(
            select(OpenTask, Agency.name).outerjoin(Agency, Agency.id == OpenTask.agency_id)
            .where(OpenTask.case_id == self.case_id)
        ).all()
        for task, agency in rows:
            if task.id not in self.seen:
                form = task_form(self.session, task)
                self.seen[task.id] = TrialTask(
                    task.id, task.element_id, task.name, task.lane, task.agency_kind, agency, task.created_at,
                    task.due_at, task.visible_from, example=example_data(form, self.now) if form else {})

    def _collect(self) -> None:
        report, session = self.report, self.session
        report.ended_at = self.now
        for task_id, action in how_tasks_closed(session, self.case_id).items():
            if task_id in self.seen:
                self.seen[task_id].status = action
        report.tasks = sorted(self.seen.values(), key=lambda t: (t.created_at, t.task_id))
        for instance in session.execute(
            select(ProcessInstance).where(ProcessInstance.case_id == self.case_id).order_by(ProcessInstance.id)
        ).scalars():
            version = session.execute(select(Definition.version).where(Definition.id == instance.definition_id)) \
                .scalar_one()
            if instance.status == "running":
                path = load_run(session, instance)[0].completed_elements()
            else:
                path = list((instance.outcome or {}).get("path", []))
            report.instances.append(TrialInstance(instance.process_key, version, instance.status, path))
        for timer in session.execute(
            select(DueTimer).where(DueTimer.case_id == self.case_id, DueTimer.kind == "start_process")
        ).scalars():
            report.scheduled.append((str((timer.payload or {}).get("process_key")), timer.fire_at))
        case = session.get(Case, self.case_id)
        if case is not None and case.risk_level:
            report.log.append((self.now, f"risk level {case.risk_level}"))


def _firing(session: Session, timer: DueTimer, now: datetime) -> Callable[[], object]:
    return lambda: fire_timer(session, timer, now)


def parse_scenario(raw: Mapping[str, Any], *, process_key: str, territory_id: int) -> Scenario:
    """Read a scenario from its JSON form; raise ValueError naming the part that is wrong."""
    data = raw.get("data", {})
    case = raw.get("case", {})
    if not isinstance(data, dict) or not isinstance(case, dict):
        raise ValueError("'data' and 'case' must be JSON objects")
    steps = []
    for number, step in enumerate(raw.get("steps", []) or [], start=1):
        if not isinstance(step, dict) or not isinstance(step.get("task"), str) or not isinstance(
                step.get("data", {}), dict):
            raise ValueError(f"step {number} needs 'task' (an element id) and 'data' (an object)")
        steps.append(Step(step["task"], dict(step.get("data", {})), _duration(step.get("after"), f"step {number}")))
    return Scenario(process_key, territory_id, dict(data), dict(case), tuple(steps),
                    _duration(raw.get("advance"), "advance"))


def _duration(value: Any, where: str) -> timedelta:
    if value in (None, ""):
        return timedelta(0)
    try:
        delta = durations.parse_duration(str(value))
    except ValueError as exc:
        raise ValueError(f"{where}: {value!r} is not an ISO-8601 duration such as 'P21D' or 'PT4H'") from exc
    if delta < timedelta(0):
        raise ValueError(f"{where}: the clock only moves forward")
    return delta


def example_data(form: FormDefinition, now: datetime) -> dict[str, Any]:
    """Answers that fit a form's schema: a starting point for a scenario (its checks may still refuse them)."""
    data: dict[str, Any] = {}
    required = set(form.schema.get("required", []))
    for name, prop in form.schema.get("properties", {}).items():
        if name not in required:
            continue
        data[name] = _example_value(prop, now)
    return data


def _example_value(prop: Mapping[str, Any], now: datetime) -> Any:
    kind = prop.get("type")
    options = [o["const"] for o in prop.get("oneOf", []) if "const" in o] or list(prop.get("enum", []))
    if kind == "array":
        items = prop.get("items", {})
        choices = [o["const"] for o in items.get("oneOf", []) if "const" in o] or list(items.get("enum", []))
        return choices[: int(prop.get("minItems", 0))]
    if options:
        return options[0]
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return prop.get("minimum", 0)
    if prop.get("format") == "date":
        return date.isoformat(now.date())
    if prop.get("format") == "date-time":
        return now.isoformat()
    return "Ejemplo"[: int(prop.get("maxLength", 7))] or "x"

