"""Running a workflow between load and save: start, complete, advance, messages, timers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState

from engine.budget import MAX_AUTOMATIC_STEPS, BudgetExceededError
from engine.errors import ExecutionError, SandboxError
from engine.spiff.scripts import SCRIPT_ENGINE, ScriptEffects, collect_effects, engine_time
from engine.spiff.specs import SERIALIZER, HumanTaskSpec, SpecBundle, human_spec


# --- Running ------------------------------------------------------------------------------------
@dataclass
class ReadyTask:
    """A user task waiting for a person, with the data it sees."""

    guid: str
    spec: HumanTaskSpec
    data: dict[str, Any]
    boundary_timer_at: datetime | None = None


@dataclass
class Run:
    """A live workflow of one instance, between load and save."""

    workflow: Any
    effects: ScriptEffects = field(default_factory=ScriptEffects)
    _scanned: tuple[list[ReadyTask], list[datetime]] | None = field(default=None, repr=False)

    @classmethod
    def start(cls, bundle: SpecBundle, data: Mapping[str, Any], now: datetime) -> Run:
        """Create a workflow from a spec with start data and run it to its first wait."""
        workflow = BpmnWorkflow(bundle.spec, bundle.subprocess_specs, script_engine=SCRIPT_ENGINE)
        workflow.data.update(json.loads(json.dumps(dict(data))))
        # The start task hands workflow data to the process; seed it so every task sees it.
        workflow.task_tree.data.update(workflow.data)
        run = cls(workflow)
        run.advance(now)
        return run

    @classmethod
    def load(cls, bundle: SpecBundle, state: str) -> Run:
        """Restore a saved workflow on its definition's spec, with our sandboxed script engine."""
        dct = json.loads(state)
        SERIALIZER.migrate(dct)
        workflow = SERIALIZER.registry.restore(
            dct, spec=bundle.spec, subprocess_specs=bundle.subprocess_specs
        )
        # Every restore comes back with the library's unrestricted engine: put ours back.
        workflow.script_engine = SCRIPT_ENGINE
        return cls(workflow)

    def dump(self) -> str:
        """Serialize the workflow state (without its spec)."""
        return cast(str, SERIALIZER.serialize_json(self.workflow))

    def advance(self, now: datetime) -> None:
        """Run engine steps (scripts, gateways, due timers) until the workflow waits for something."""
        self._scanned = None
        with engine_time(now), collect_effects() as effects:
            try:
                self.workflow.refresh_timers()
                self.workflow.do_engine_steps(did_complete_task=_StepCounter())
            except SpiffWorkflowException as exc:
                raise ExecutionError(_describe(exc)) from exc
        self.effects.merge(effects)

    def complete(self, guid: str, data: Mapping[str, Any], now: datetime) -> HumanTaskSpec:
        """Complete a READY user task with submitted data, then advance the workflow."""
        task = self.workflow.get_task_from_id(UUID(guid))
        if task is None or task.state != TaskState.READY or not task.task_spec.manual:
            raise ExecutionError(f"task {guid} is not waiting for completion")
        task.data.update(json.loads(json.dumps(dict(data))))
        self._scanned = None
        with engine_time(now), collect_effects() as effects:
            try:
                task.run()
            except SpiffWorkflowException as exc:
                raise ExecutionError(_describe(exc)) from exc
        self.effects.merge(effects)
        self.advance(now)
        return human_spec(task.task_spec)

    def task_data(self, guid: str) -> dict[str, Any]:
        """Return the data a task sees (for checks that compare a submission with earlier steps)."""
        task = self.workflow.get_task_from_id(UUID(guid))
        if task is None:
            raise ExecutionError(f"task {guid} is not part of this workflow")
        return cast(dict[str, Any], task.data)

    def ready_tasks(self) -> list[ReadyTask]:
        """List user tasks READY for a person, with any boundary timer attached to each."""
        return self._scan()[0]

    def _scan(self) -> tuple[list[ReadyTask], list[datetime]]:
        """Walk the task tree once for both READY user tasks and waiting timers (cached per state)."""
        if self._scanned is None:
            ready, timers = [], []
            for task in self.workflow.get_tasks(state=TaskState.READY | TaskState.WAITING):
                if task.state == TaskState.READY:
                    if task.task_spec.manual:
                        ready.append(ReadyTask(str(task.id), human_spec(task.task_spec), task.data,
                                               _boundary_timer_at(task)))
                elif (when := _timer_value(task)) is not None:
                    timers.append(when + FIRES_AFTER)
            self._scanned = (ready, timers)
        return self._scanned

    def completed_elements(self) -> list[str]:
        """List the BPMN element ids the workflow went through, in order (for diagrams and audits)."""
        done = [
            task for task in self.workflow.get_tasks(state=TaskState.COMPLETED)
            if getattr(task.task_spec, "bpmn_id", None)
        ]
        done.sort(key=lambda task: task.last_state_change)
        return list(dict.fromkeys(task.task_spec.bpmn_id for task in done))

    def waiting_timers(self) -> list[datetime]:
        """Return when each timer the workflow waits on will fire."""
        return self._scan()[1]

    @property
    def completed(self) -> bool:
        """Tell whether the workflow has finished."""
        return bool(self.workflow.is_completed())

    @property
    def data(self) -> dict[str, Any]:
        """Return the workflow's data (its outcome once completed)."""
        return cast(dict[str, Any], self.workflow.data)

    def send_message(self, name: str, payload: Mapping[str, Any], now: datetime) -> None:
        """Deliver a BPMN message to the workflow and advance it."""
        with engine_time(now), collect_effects() as effects:
            try:
                self.workflow.send_event(BpmnEvent(MessageEventDefinition(name), payload=dict(payload)))
            except SpiffWorkflowException as exc:
                raise ExecutionError(_describe(exc)) from exc
        self.effects.merge(effects)
        self.advance(now)


# SpiffWorkflow fires a timer only once the clock is strictly past its time (`value < now`): the row that
# wakes the deadline pass is set that much later, so the pass that takes it always fires it.
FIRES_AFTER = timedelta(microseconds=1)


def _timer_value(task: Any) -> datetime | None:
    if not isinstance(task.task_spec, CatchingEvent):
        return None
    definition = getattr(task.task_spec, "event_definition", None)
    if not isinstance(definition, spiff_timer.TimerEventDefinition):
        return None
    value = task.task_spec.event_definition.details(task).value
    if isinstance(value, str):
        return _parse_when(value)
    return None


def _parse_when(value: str) -> datetime:
    when = datetime.fromisoformat(value)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _boundary_timer_at(task: Any) -> datetime | None:
    parent = task.parent
    if parent is None or type(parent.task_spec).__name__ != "BoundaryEventSplit":
        return None
    times = [
        when
        for sibling in parent.children
        if sibling is not task and sibling.state == TaskState.WAITING
        for when in [_timer_value(sibling)]
        if when is not None
    ]
    return min(times) if times else None


class _StepCounter:
    """Stop an advance that runs automatic steps without end (a loop of scripts and gateways)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, task: Any) -> None:
        self.count += 1
        if self.count > MAX_AUTOMATIC_STEPS:
            raise BudgetExceededError(
                f"stopped: the process ran {MAX_AUTOMATIC_STEPS:,} automatic steps without waiting for anyone "
                f"(a loop?), the last at {task.task_spec.bpmn_id}"
            )


def _describe(exc: SpiffWorkflowException) -> str:
    task = getattr(exc, "task", None)
    where = f" at {task.task_spec.bpmn_id}" if task is not None else ""
    notes = getattr(exc, "__notes__", []) or []
    # SpiffWorkflow's error for an expression says only which expression failed; the sandbox's
    # refusal it was raised from says why (over its budget, a forbidden name).
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, SandboxError):
        cause = cause.__cause__ or cause.__context__
    if cause is not None and str(cause) not in str(exc):
        notes = [*notes, str(cause)]
    return f"{exc}{where}" + (f" ({'; '.join(notes)})" if notes else "")
