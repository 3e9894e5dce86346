"""What changed between two versions of a definition: BPMN elements, DMN rules, form fields, risk levels.

Pure functions of two source texts (no database): the designer shows their result, and a change
that only moves shapes on the diagram (BPMNDI) is no change at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree

from engine.xmlsafe import parse_xml

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
ADDED, REMOVED, CHANGED = "added", "removed", "changed"
# Parts of a form field compared one by one (JSON Schema keywords).
FIELD_KEYWORDS = ("type", "title", "description", "format", "enum", "oneOf", "items", "minimum", "maximum",
                  "minLength", "maxLength", "pattern", "default", "const", "x-choices")


@dataclass(frozen=True)
class Detail:
    """One aspect of an element that differs: what, before and after (as text; empty when absent)."""

    what: str
    before: str
    after: str


@dataclass(frozen=True)
class Change:
    """An element (BPMN), rule (DMN) or field or check (form) added, removed or changed."""

    status: str  # added | removed | changed
    element_id: str
    kind: str  # the BPMN/DMN tag (userTask, rule...), or "field", "check", "form", "level"
    name: str
    details: tuple[Detail, ...] = ()


def diff_definitions(kind: str, before: str, after: str) -> list[Change]:
    """Compare two sources of a process, decision, form or risk scale."""
    if kind == "process":
        return _compare(_bpmn_elements(before), _bpmn_elements(after))
    if kind == "decision":
        return _compare(_dmn_elements(before), _dmn_elements(after))
    if kind == "form":
        return _compare(_form_elements(before), _form_elements(after))
    if kind == "levels":
        return _compare(_level_elements(before), _level_elements(after))
    if kind == "invariants":
        return _compare(_invariant_elements(before), _invariant_elements(after))
    raise ValueError(f"unknown definition kind {kind!r}")


# An element as compared: (kind, name, {aspect: text}).
_Element = tuple[str, str, dict[str, str]]


def _compare(before: Mapping[str, _Element], after: Mapping[str, _Element]) -> list[Change]:
    changes: list[Change] = []
    for element_id, (kind, name, aspects) in after.items():
        if element_id not in before:
            details = tuple(Detail(what, "", value) for what, value in aspects.items() if value)
            changes.append(Change(ADDED, element_id, kind, name, details))
            continue
        old_kind, _old_name, old_aspects = before[element_id]
        details = tuple(
            Detail(what, old_aspects.get(what, ""), aspects.get(what, ""))
            for what in dict.fromkeys([*old_aspects, *aspects])
            if old_aspects.get(what, "") != aspects.get(what, "")
        )
        if kind != old_kind:
            details = (Detail("type", old_kind, kind), *details)
        if details:
            changes.append(Change(CHANGED, element_id, kind, name, details))
    for element_id, (kind, name, aspects) in before.items():
        if element_id not in after:
            details = tuple(Detail(what, value, "") for what, value in aspects.items() if value)
            changes.append(Change(REMOVED, element_id, kind, name, details))
    return changes


# --- BPMN ---------------------------------------------------------------------------------------
def _bpmn_elements(source: str) -> dict[str, _Element]:
    root = parse_xml(source.encode("utf-8"), filename="diff.bpmn").getroot()
    lanes: dict[str, str] = {}
    for lane in root.iter(f"{{{BPMN_NS}}}lane"):  # outer lanes first: the innermost lane wins
        for ref in lane.iterfind(f"{{{BPMN_NS}}}flowNodeRef"):
            lanes[(ref.text or "").strip()] = lane.get("name") or lane.get("id") or ""
    found: dict[str, _Element] = {}
    for process in root.iterfind(f"{{{BPMN_NS}}}process"):
        found[process.get("id", "")] = ("process", process.get("name") or "", {"name": process.get("name") or ""})
        for el in _with_ids(process):
            element_id = el.get("id", "")
            tag = etree.QName(el).localname
            found[element_id] = (tag, el.get("name") or "", _bpmn_aspects(el, lanes.get(element_id, "")))
    return found


def _with_ids(process: etree._Element) -> Iterator[etree._Element]:
    for el in process.iter():
        if not isinstance(el.tag, str) or el is process or not el.get("id"):
            continue
        if etree.QName(el).namespace != BPMN_NS or etree.QName(el).localname in ("laneSet",):
            continue
        yield el


def _bpmn_aspects(el: etree._Element, lane: str) -> dict[str, str]:
    aspects = {"name": el.get("name") or "", "lane": lane}
    for attribute in ("sourceRef", "targetRef", "attachedToRef", "default", "cancelActivity", "calledElement"):
        if el.get(attribute) is not None:
            aspects[attribute] = el.get(attribute) or ""
    ext = el.find(f"{{{BPMN_NS}}}extensionElements")
    if ext is not None:
        for prop in ext.iterfind(f"{{{SPIFF_NS}}}properties/{{{SPIFF_NS}}}property"):
            aspects[f"property {prop.get('name', '')}"] = prop.get("value", "")
        for extension in ext:
            if isinstance(extension.tag, str) and etree.QName(extension).localname != "properties":
                aspects[etree.QName(extension).localname] = (extension.text or "").strip()
    for tag, what in (("conditionExpression", "condition"), ("script", "script"), ("documentation", "documentation")):
        child = el.find(f"{{{BPMN_NS}}}{tag}")
        if child is not None:
            aspects[what] = (child.text or "").strip()
    for definition in el:
        if not isinstance(definition.tag, str) or not etree.QName(definition).localname.endswith("EventDefinition"):
            continue
        aspects["event"] = etree.QName(definition).localname
        for timer in ("timeDuration", "timeDate", "timeCycle"):
            value = definition.find(f"{{{BPMN_NS}}}{timer}")
            if value is not None:
                aspects[f"timer {timer}"] = (value.text or "").strip()
    return aspects


# --- DMN ----------------------------------------------------------------------------------------
def _dmn_elements(source: str) -> dict[str, _Element]:
    root = parse_xml(source.encode("utf-8"), filename="diff.dmn").getroot()
    found: dict[str, _Element] = {}
    for decision in root.iterfind("{*}decision"):
        table = decision.find("{*}decisionTable")
        aspects = {"name": decision.get("name") or ""}
        if table is None:
            found[decision.get("id", "")] = ("decision", decision.get("name") or "", aspects)
            continue
        aspects["hit policy"] = table.get("hitPolicy", "UNIQUE")
        inputs = [_label(i) for i in table.iterfind("{*}input")]
        outputs = [o.get("name") or _label(o) for o in table.iterfind("{*}output")]
        aspects["inputs"] = ", ".join(inputs)
        aspects["outputs"] = ", ".join(outputs)
        for i in table.iterfind("{*}input"):
            expression = i.find("{*}inputExpression/{*}text")
            aspects[f"input expression {_label(i)}"] = (expression.text or "").strip() if expression is not None else ""
        found[decision.get("id", "")] = ("decision", decision.get("name") or "", aspects)
        for rule in table.iterfind("{*}rule"):
            rule_aspects = {"description": _text(rule.find("{*}description"))}
            for label, entry in zip(inputs, rule.iterfind("{*}inputEntry"), strict=False):
                rule_aspects[f"input {label}"] = _text(entry.find("{*}text"))
            for label, entry in zip(outputs, rule.iterfind("{*}outputEntry"), strict=False):
                rule_aspects[f"output {label}"] = _text(entry.find("{*}text"))
            found[rule.get("id", "")] = ("rule", rule_aspects["description"], rule_aspects)
    return found


def _label(el: etree._Element) -> str:
    return el.get("label") or el.get("name") or el.get("id") or ""


def _text(el: etree._Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


# --- Forms --------------------------------------------------------------------------------------
def _form_elements(source: str) -> dict[str, _Element]:
    raw: dict[str, Any] = json.loads(source)
    schema = raw.get("schema") or {}
    required = set(schema.get("required") or [])
    widgets = (raw.get("ui") or {}).get("widgets") or {}
    sections = {name: str(section.get("title", "")) for section in (raw.get("ui") or {}).get("sections") or []
                for name in section.get("fields") or []}
    found: dict[str, _Element] = {
        "(form)": ("form", str(raw.get("title", "")),
                   {"title": str(raw.get("title", "")), "description": str(raw.get("description", ""))}),
    }
    for name, prop in (schema.get("properties") or {}).items():
        aspects = {key: _show(prop[key]) for key in FIELD_KEYWORDS if key in prop}
        aspects["required"] = "yes" if name in required else "no"
        aspects["section"] = sections.get(name, "")
        aspects["widget"] = str(widgets.get(name, ""))
        found[name] = ("field", str(prop.get("title") or name), aspects)
    for number, check in enumerate(raw.get("checks") or [], start=1):
        key = f"check:{check.get('field', '')}:{check.get('expression', '')}"
        found[key] = ("check", str(check.get("message", f"check {number}")),
                      {"field": str(check.get("field", "")), "expression": str(check.get("expression", "")),
                       "message": str(check.get("message", ""))})
    return found


# --- Risk scales ----------------------------------------------------------------------------------
def _level_elements(source: str) -> dict[str, _Element]:
    raw: dict[str, Any] = json.loads(source)
    found: dict[str, _Element] = {}
    for rank, level in enumerate(raw.get("levels") or [], start=1):
        if isinstance(level, dict):
            aspects = {"rank": str(rank), "label": str(level.get("label", "")),
                       "label_en": str(level.get("label_en", "")), "colour": str(level.get("colour", "")),
                       "high": "yes" if level.get("high") else "no"}
            found[str(level.get("code", ""))] = ("level", aspects["label"], aspects)
    return found


# --- Invariants ---------------------------------------------------------------------------------
def _invariant_elements(source: str) -> dict[str, _Element]:
    raw: dict[str, Any] = json.loads(source)
    return {
        str(item.get("id", "")): ("invariant", str(item.get("title", "")),
                                  {key: _show(value) for key, value in item.items() if key != "id"})
        for item in raw.get("invariants") or [] if isinstance(item, dict)
    }


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
