"""The one adapter to SpiffWorkflow: parsing, (de)serialization, sandboxed scripts and the clock.

Nothing else in Coordina imports SpiffWorkflow; the library's untyped surface stays here, behind
plain functions and a small `Run` class that the execution code drives.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, cast
from uuid import UUID

from lxml import etree
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

from engine import sandbox
from engine.errors import ExecutionError, Problem
from engine.properties import ProcessProperties, read_properties
from engine.xmlsafe import parse_xml

SERIALIZER_VERSION = "1.5"

# --- Clock -------------------------------------------------------------------------------------
# SpiffWorkflow reads datetime.now(timezone.utc) inside its timer module and offers no clock hook.
# We give that module a datetime subclass whose now() answers the engine's injected time while an
# engine operation runs (a context variable, so threads and workers never share it) and the real
# time otherwise. Only the timer module's name binding changes; the library's classes do not.
_engine_now: ContextVar[datetime | None] = ContextVar("coordina_engine_now", default=None)


class _EngineDatetime(datetime):
    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _EngineDatetime:
        injected = _engine_now.get()
        real = injected if injected is not None else datetime.now(UTC)
        local = real.astimezone(tz) if tz is not None else real.astimezone(UTC).replace(tzinfo=None)
        return cls.combine(local.date(), local.time(), local.tzinfo)


spiff_timer.datetime = _EngineDatetime


@contextmanager
def engine_time(now: datetime) -> Iterator[None]:
    """Make SpiffWorkflow see `now` as the current time inside the block."""
    token = _engine_now.set(now)
    try:
        yield
    finally:
        _engine_now.reset(token)


# --- Sandboxed scripts -------------------------------------------------------------------------
# Scripts may call update_case(...) to change the case's status, risk level or facts,
# start_process(...) to start another line of work of the case, and cancel_track(...) to stop one;
# the engine collects those calls per operation and applies them after the step.
@dataclass
class ScriptEffects:
    """What the scripts of one operation asked of the case, applied by the engine after the step."""

    case_updates: dict[str, Any] = field(default_factory=dict)
    # Each start: {"process": key, "data": {...}, "after": ISO duration or None, "if_idle": bool}.
    starts: list[dict[str, Any]] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)

    def merge(self, other: ScriptEffects) -> None:
        """Add another operation's effects after these."""
        self.case_updates.update(other.case_updates)
        self.starts.extend(other.starts)
        self.cancels.extend(other.cancels)


_effects: ContextVar[ScriptEffects | None] = ContextVar("coordina_script_effects", default=None)


def _collector(name: str) -> ScriptEffects:
    collector = _effects.get()
    if collector is None:
        raise ExecutionError(f"{name}() can only run inside an engine operation")
    return collector


def _update_case(**changes: Any) -> None:
    collector = _collector("update_case")
    json.dumps(changes)  # refuse values that could not be stored
    collector.case_updates.update(changes)


def _start_process(
    process: str, data: Mapping[str, Any] | None = None, after: str | None = None, if_idle: bool = False
) -> None:
    collector = _collector("start_process")
    if not isinstance(process, str) or not process:
        raise ExecutionError(f"start_process() needs a process key, got {process!r}")
    payload = dict(data or {})
    json.dumps(payload)
    collector.starts.append({"process": process, "data": payload, "after": after, "if_idle": bool(if_idle)})


def _cancel_track(track: str) -> None:
    collector = _collector("cancel_track")
    if not isinstance(track, str) or not track:
        raise ExecutionError(f"cancel_track() needs a track name, got {track!r}")
    collector.cancels.append(track)


def _value_of(context: Mapping[str, Any]) -> Any:
    """Give scripts value(name, default): a start datum that a caller may leave out (a trial, an old start)."""

    def value(name: str, default: Any = None) -> Any:
        return context.get(name, default)

    return value


def _now() -> datetime:
    injected = _engine_now.get()
    return injected if injected is not None else datetime.now(UTC)


class _SandboxEnvironment(BasePythonScriptEngineEnvironment):  # type: ignore[misc]
    """Evaluate and execute through RestrictedPython (see engine.sandbox), never plain eval/exec.

    Besides the sandbox helpers, models get now() (the engine's clock) and, in scripts,
    update_case(...).
    """

    def evaluate(self, expression: str, context: dict[str, Any], external_context: Any = None) -> Any:
        return sandbox.evaluate(expression, context, {"now": _now, "value": _value_of(context),
                                                      **(external_context or {})})

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        external = {"now": _now, "update_case": _update_case, "start_process": _start_process,
                    "cancel_track": _cancel_track, "value": _value_of(context), **(external_context or {})}
        sandbox.execute(script, context, external)
        return True


SCRIPT_ENGINE = PythonScriptEngine(environment=_SandboxEnvironment())


@contextmanager
def collect_effects() -> Iterator[ScriptEffects]:
    """Collect update_case(...), start_process(...) and cancel_track(...) calls made inside the block."""
    collected = ScriptEffects()
    token = _effects.set(collected)
    try:
        yield collected
    finally:
        _effects.reset(token)


# --- Serialization -----------------------------------------------------------------------------
class _SpecFreeWorkflowConverter(BpmnWorkflowConverter):  # type: ignore[misc]
    """Serialize a workflow without its spec: the spec is stored once per definition version."""

    def to_dict(self, workflow: Any) -> dict[str, Any]:
        dct = cast(dict[str, Any], WorkflowConverter.to_dict(self, workflow))
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], spec: Any = None, subprocess_specs: Any = None) -> Any:
        if spec is None:
            raise ExecutionError("a workflow is restored with the spec of its definition version")
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _make_serializer() -> BpmnWorkflowSerializer:
    config = dict(SPIFF_CONFIG)  # a copy: the library's own config stays untouched
    config[BpmnWorkflow] = _SpecFreeWorkflowConverter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config), version=SERIALIZER_VERSION)


_SERIALIZER = _make_serializer()


@dataclass(frozen=True)
class SpecBundle:
    """A restored process spec with the subprocess specs it calls; shared by every run of it."""

    spec: Any
    subprocess_specs: dict[str, Any]


def spec_to_dict(bundle: SpecBundle) -> dict[str, Any]:
    """Serialize a spec bundle to plain JSON-able data (stored once per definition version)."""
    registry = _SERIALIZER.registry
    return {
        "spec": registry.convert(bundle.spec),
        "subprocess_specs": {k: registry.convert(v) for k, v in bundle.subprocess_specs.items()},
    }


def spec_from_dict(data: Mapping[str, Any]) -> SpecBundle:
    """Restore a spec bundle stored by `spec_to_dict`."""
    registry = _SERIALIZER.registry
    spec = registry.restore(json.loads(json.dumps(data["spec"])))
    subs = {k: registry.restore(json.loads(json.dumps(v))) for k, v in data["subprocess_specs"].items()}
    return SpecBundle(spec, subs)


# --- Parsing ------------------------------------------------------------------------------------
@dataclass
class ParsedProcess:
    """A process found in a BPMN file, parsed and ready to be stored as a definition version."""

    key: str
    name: str
    file_name: str
    bundle: SpecBundle
    called_decisions: set[str]
    called_processes: set[str]
    user_tasks: list[HumanTaskSpec]
    properties: ProcessProperties  # of its start event and user tasks, read once here


@dataclass(frozen=True)
class HumanTaskSpec:
    """A user task of the model: its element id, name and lane (its properties: `ProcessProperties`)."""

    element_id: str
    name: str
    lane: str | None


def _problem_from_validation(exc: ValidationException, default_file: str) -> Problem:
    line = exc.line_number if isinstance(exc.line_number, int) else None
    return Problem(
        file=exc.file_name or default_file, message=str(exc.args[0] if exc.args else exc),
        element_id=exc.id or None, line=line,
    )


def parse_definitions(
    bpmn: Mapping[str, etree._ElementTree], dmn: Mapping[str, etree._ElementTree]
) -> tuple[dict[str, ParsedProcess], list[Problem]]:
    """Parse BPMN and DMN trees with the XSD validator on; return processes and problems found."""
    parser = SpiffBpmnParser(validator=VALIDATOR)
    problems: list[Problem] = []
    for name, tree in dmn.items():
        try:
            parser.add_dmn_xml(tree.getroot(), filename=name)
        except ValidationException as exc:
            problems.append(_problem_from_validation(exc, name))
    file_of_process: dict[str, str] = {}
    for name, tree in bpmn.items():
        try:
            parser.add_bpmn_xml(tree.getroot(), filename=name)
        except ValidationException as exc:
            problems.append(_problem_from_validation(exc, name))
            continue
        for proc in tree.getroot().iterfind("{*}process"):
            if proc.get("isExecutable", "true") != "false":
                file_of_process[proc.get("id", "")] = name
    processes: dict[str, ParsedProcess] = {}
    for key, file_name in file_of_process.items():
        try:
            spec = parser.get_spec(key)
            subs = parser.get_subprocess_specs(key)
        except ValidationException as exc:
            problems.append(_problem_from_validation(exc, file_name))
            continue
        except SpiffWorkflowException as exc:
            problems.append(Problem(file=file_name, message=str(exc), element_id=key))
            continue
        processes[key] = ParsedProcess(
            key=key,
            name=spec.description or key,
            file_name=file_name,
            bundle=SpecBundle(spec, subs),
            called_decisions=_called_decisions(bpmn[file_name]),
            called_processes=set(subs),
            user_tasks=list(_human_task_specs(spec, subs)),
            properties=process_properties(SpecBundle(spec, subs)),
        )
    return processes, problems


def start_event_id(bundle: SpecBundle) -> str | None:
    """Return the element id of the process's start event."""
    for task_spec in bundle.spec.task_specs.values():
        if type(task_spec).__name__ == "StartEvent":
            return cast(str, task_spec.bpmn_id)
    return None


def evaluate_decision(source: str, decision_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluate one DMN decision of a source with `data` as inputs; return its outputs ({} if no rule matched).

    The same sandboxed script engine as in a running process evaluates the entries.
    """
    parser = SpiffBpmnParser()
    try:
        parser.add_dmn_xml(parse_xml(source.encode("utf-8"), filename=decision_id).getroot(), filename=decision_id)
        engine = parser.get_engine(decision_id, None)
        task = _DecisionTask(dict(data))
        return dict(engine.result(task))
    except (ValidationException, SpiffWorkflowException) as exc:
        raise ExecutionError(f"decision {decision_id}: {exc}") from exc


class _DecisionTask:
    """What SpiffWorkflow's DMN engine reads from a task: its data and the workflow's script engine."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.workflow = self
        self.script_engine = SCRIPT_ENGINE


def process_properties(bundle: SpecBundle) -> ProcessProperties:
    """Read the extension properties of the process's start event and of every user task it runs."""
    start: dict[str, str] = {}
    for task_spec in bundle.spec.task_specs.values():
        if type(task_spec).__name__ == "StartEvent":
            start = _raw_properties(task_spec)
            break
    manual = _manual_task_specs(bundle.spec, bundle.subprocess_specs)
    steps = {task_spec.bpmn_id: _raw_properties(task_spec) for task_spec in manual}
    return read_properties(start, steps)


def _raw_properties(task_spec: Any) -> dict[str, str]:
    return dict((getattr(task_spec, "extensions", None) or {}).get("properties", {}))


def _called_decisions(tree: etree._ElementTree) -> set[str]:
    return {
        (el.text or "").strip()
        for el in tree.getroot().iter("{http://spiffworkflow.org/bpmn/schema/1.0/core}calledDecisionId")
    }


def _manual_task_specs(spec: Any, subs: Mapping[str, Any]) -> Iterator[Any]:
    for process_spec in [spec, *subs.values()]:
        for task_spec in process_spec.task_specs.values():
            if getattr(task_spec, "manual", False):
                yield task_spec


def _human_task_specs(spec: Any, subs: Mapping[str, Any]) -> Iterator[HumanTaskSpec]:
    for task_spec in _manual_task_specs(spec, subs):
        yield _human_spec(task_spec)


def _human_spec(task_spec: Any) -> HumanTaskSpec:
    return HumanTaskSpec(element_id=task_spec.bpmn_id, name=task_spec.bpmn_name or task_spec.bpmn_id,
                         lane=task_spec.lane)


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
        _SERIALIZER.migrate(dct)
        workflow = _SERIALIZER.registry.restore(
            dct, spec=bundle.spec, subprocess_specs=bundle.subprocess_specs
        )
        # Every restore comes back with the library's unrestricted engine: put ours back.
        workflow.script_engine = SCRIPT_ENGINE
        return cls(workflow)

    def dump(self) -> str:
        """Serialize the workflow state (without its spec)."""
        return cast(str, _SERIALIZER.serialize_json(self.workflow))

    def advance(self, now: datetime) -> None:
        """Run engine steps (scripts, gateways, due timers) until the workflow waits for something."""
        self._scanned = None
        with engine_time(now), collect_effects() as effects:
            try:
                self.workflow.refresh_timers()
                self.workflow.do_engine_steps()
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
        return _human_spec(task.task_spec)

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
                        ready.append(ReadyTask(str(task.id), _human_spec(task.task_spec), task.data,
                                               _boundary_timer_at(task)))
                elif (when := _timer_value(task)) is not None:
                    timers.append(when)
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


def _describe(exc: SpiffWorkflowException) -> str:
    task = getattr(exc, "task", None)
    where = f" at {task.task_spec.bpmn_id}" if task is not None else ""
    notes = "; ".join(getattr(exc, "__notes__", []) or [])
    return f"{exc}{where}" + (f" ({notes})" if notes else "")

