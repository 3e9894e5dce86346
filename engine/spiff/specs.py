"""Process specs: parse BPMN and DMN, read their properties, store them once per definition version."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from engine.errors import ExecutionError, Problem
from engine.properties import ProcessProperties, read_properties
from engine.spiff.scripts import SCRIPT_ENGINE
from engine.xmlsafe import parse_xml

SERIALIZER_VERSION = "1.5"


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


SERIALIZER = _make_serializer()


@dataclass(frozen=True)
class SpecBundle:
    """A restored process spec with the subprocess specs it calls; shared by every run of it."""

    spec: Any
    subprocess_specs: dict[str, Any]


def spec_to_dict(bundle: SpecBundle) -> dict[str, Any]:
    """Serialize a spec bundle to plain JSON-able data (stored once per definition version)."""
    registry = SERIALIZER.registry
    return {
        "spec": registry.convert(bundle.spec),
        "subprocess_specs": {k: registry.convert(v) for k, v in bundle.subprocess_specs.items()},
    }


def spec_from_dict(data: Mapping[str, Any]) -> SpecBundle:
    """Restore a spec bundle stored by `spec_to_dict`."""
    registry = SERIALIZER.registry
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
        yield human_spec(task_spec)


def human_spec(task_spec: Any) -> HumanTaskSpec:
    """Describe a user task spec of the library as the engine sees it."""
    return HumanTaskSpec(element_id=task_spec.bpmn_id, name=task_spec.bpmn_name or task_spec.bpmn_id,
                         lane=task_spec.lane)
