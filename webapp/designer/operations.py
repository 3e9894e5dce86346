"""What the designer's views do besides engine calls: skeletons of new files, form previews, scenarios."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy.orm import Session

from engine.definitions import filled_form, latest_runnable, start_form
from engine.errors import EngineError, Problem
from engine.forms import parse_form
from engine.invariants import SUFFIX as INVARIANTS_SUFFIX
from engine.levels import SHIPPED, current_levels, levels_json
from engine.trial import example_data
from webapp import form_html

# A new invariants file: an empty list to fill (README.md, "Garantías del protocolo", says what each kind checks).
INVARIANTS_SKELETON = '{"invariants": [\n]}\n'
BPMN_SKELETON = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" \
xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" \
xmlns:di="http://www.omg.org/spec/DD/20100524/DI" \
xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="{key}_definitions" \
targetNamespace="https://coordina.example/bpmn">
  <bpmn:process id="{key}" name="{key}" isExecutable="true">
    <bpmn:startEvent id="{key}_started" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="{key}_diagram">
    <bpmndi:BPMNPlane id="{key}_plane" bpmnElement="{key}">
      <bpmndi:BPMNShape id="{key}_started_di" bpmnElement="{key}_started">
        <dc:Bounds x="180" y="160" width="36" height="36" />
      </bpmndi:BPMNShape>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
"""
DMN_SKELETON = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="{key}_definitions" name="{key}" \
namespace="https://coordina.example/dmn">
  <decision id="{key}" name="{key}">
    <decisionTable id="{key}_table">
      <input id="{key}_in" label="Entrada">
        <inputExpression id="{key}_in_expression"><text>level</text></inputExpression>
      </input>
      <output id="{key}_out" label="Salida" name="result" />
    </decisionTable>
  </decision>
</definitions>
"""


def skeleton(file_name: str) -> str:
    """Return the starting text of a new file of the designer."""
    if file_name.endswith(".levels.json"):
        return levels_json(SHIPPED)
    key, _, suffix = file_name.rpartition(".")
    if file_name.endswith(INVARIANTS_SUFFIX):
        return INVARIANTS_SKELETON
    if suffix == "bpmn":
        return BPMN_SKELETON.format(key=key)
    if suffix == "dmn":
        return DMN_SKELETON.format(key=key)
    form = {"title": key.replace("_", " ").capitalize(),
            "schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                       "properties": {}, "required": [], "additionalProperties": False},
            "ui": {"sections": [], "order": []}}
    return json.dumps(form, ensure_ascii=False, indent=2) + "\n"


def preview(session: Session, file_name: str, content: str) -> tuple[Markup | None, list[Problem]]:
    """Render a form definition exactly as the task page does (choices filled in), or say why it cannot be used."""
    form, problems = parse_form(file_name, content.encode("utf-8"))
    if form is None:
        return None, problems
    return form_html.render(filled_form(session, form)), []


def default_scenario(session: Session, process_key: str, now: datetime) -> dict[str, Any]:
    """A scenario to start from: the start form's required answers and a case at the scale's middle level."""
    codes = current_levels(session).codes
    case = {"risk_level": codes[len(codes) // 2]}  # medio on the shipped scale
    data: dict[str, Any] = {}
    try:
        definition = latest_runnable(session, process_key)
    except EngineError:
        return {"case": case, "data": {}, "steps": [], "advance": "PT0S"}
    form = start_form(session, definition)
    if form is not None:
        data = example_data(form, now)
    return {"case": case, "data": data, "steps": [], "advance": "PT0S"}
