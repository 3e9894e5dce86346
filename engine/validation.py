"""Deploy-time checks of BPMN and DMN sources, each finding naming file, element and line.

These run on the XML (so every finding has a line number) before SpiffWorkflow parses the files:
lanes name known agency kinds, user tasks name valid forms, deadlines and timers parse, every
script, condition and DMN cell compiles in the sandbox, and DMN rules cannot overlap.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import cast

from lxml import etree

from engine import durations, sandbox
from engine.assignment import lane_kind
from engine.dmn_check import check_decision_tables
from engine.errors import Problem
from engine.forms import FormDefinition
from engine.properties import (
    ASSIGNED_AGENCY,
    DUE,
    ESCALATE_AGENCY_AFTER,
    ESCALATE_COORDINATOR_AFTER,
    ESCALATE_SUPERVISOR_AFTER,
    FORM,
    NEEDS_IDENTITY,
    PRIORITY,
    REMINDER_BEFORE,
    TRACK,
    VISIBLE_BEFORE,
)

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
DMN_NAMESPACES = frozenset({
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
})
# Extension properties whose value is an expression giving a duration (or a date for `due`).
DURATION_PROPERTIES = (DUE, VISIBLE_BEFORE, REMINDER_BEFORE, ESCALATE_AGENCY_AFTER, ESCALATE_SUPERVISOR_AFTER,
                       ESCALATE_COORDINATOR_AFTER)
HUMAN_TASK_TAGS = ("userTask", "manualTask")
_NO_FORM = "no deployed or draft form has that name, or it is invalid"
_UNQUOTED_ISO = re.compile(r"\A(R\d*/)?P(\d|T\d)[0-9A-Z.]*\Z")


def check_sources(
    bpmn: Mapping[str, etree._ElementTree], dmn: Mapping[str, etree._ElementTree], *,
    forms: Mapping[str, FormDefinition], kinds: Mapping[str, str],
) -> list[Problem]:
    """Return every problem found in the BPMN and DMN trees (empty when they can be deployed)."""
    problems: list[Problem] = []
    process_ids = {process.get("id") for tree in bpmn.values() for process in tree.getroot().iterfind(_bpmn("process"))}
    for name, tree in bpmn.items():
        problems.extend(_check_bpmn(name, tree, forms, kinds))
        problems.extend(_check_started_processes(name, tree, process_ids))
    for name, tree in dmn.items():
        problems.extend(_check_dmn(name, tree))
    return problems


def _bpmn(tag: str) -> str:
    return f"{{{BPMN_NS}}}{tag}"


def _check_bpmn(
    name: str, tree: etree._ElementTree, forms: Mapping[str, FormDefinition], kinds: Mapping[str, str]
) -> Iterator[Problem]:
    root = tree.getroot()
    if root.tag != _bpmn("definitions"):
        yield Problem(file=name, line=_line(root),
                      message=f"not a BPMN 2.0 file: the root element is {root.tag!r}, "
                              f"expected definitions in namespace {BPMN_NS}")
        return
    for process in root.iterfind(_bpmn("process")):
        lanes = _innermost_lanes(process)
        for tag in HUMAN_TASK_TAGS:
            for task in process.iter(_bpmn(tag)):
                yield from _check_human_task(name, task, lanes, forms, kinds)
        for start in process.iter(_bpmn("startEvent")):
            form, form_line = _properties(start).get(FORM, ("", _line(start)))
            if form and form not in forms:
                yield Problem(file=name, element_id=start.get("id"), line=form_line,
                              message=f"start form {form!r} does not exist ({_NO_FORM})")
    for el in root.iter(_bpmn("timeDuration"), _bpmn("timeDate"), _bpmn("timeCycle")):
        yield from _check_timer(name, el)
    for el in root.iter(_bpmn("conditionExpression")):
        yield from _expression(name, el, (el.text or "").strip(), "condition")
    for el in root.iter(_bpmn("script"), f"{{{SPIFF_NS}}}preScript", f"{{{SPIFF_NS}}}postScript"):
        message = sandbox.check_script(el.text or "")
        if message:
            yield Problem(file=name, element_id=_owner_id(el), line=_line(el),
                          message=f"script refused: {message}")


_TRACK = re.compile(r"\A[a-z][a-z0-9_]{0,39}\Z")


def _check_started_processes(name: str, tree: etree._ElementTree, process_ids: set[str | None]) -> Iterator[Problem]:
    """Refuse a start_process(...) or next_process naming a process that does not exist, and a bad track."""
    for start in tree.getroot().iter(_bpmn("startEvent")):
        track, track_line = _properties(start).get(TRACK, ("", None))
        if track and not _TRACK.match(track):
            yield Problem(file=name, element_id=start.get("id"), line=track_line,
                          message=f"track {track!r} must be a lower-case name (letters, digits, _), at most 40")
    for el in tree.getroot().iter(_bpmn("script")):
        try:
            parsed = ast.parse(el.text or "")
        except SyntaxError:
            continue  # the sandbox check reports it
        for node in ast.walk(parsed):
            key = None
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "start_process"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                key = node.args[0].value
            elif (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "next_process"
                                                       for t in node.targets)
                  and isinstance(node.value, ast.Constant)):
                key = node.value.value
            if isinstance(key, str) and key not in process_ids:
                yield Problem(file=name, element_id=_owner_id(el), line=_line(el),
                              message=f"the script starts the process {key!r}, which does not exist")


def _innermost_lanes(process: etree._Element) -> dict[str, str | None]:
    """Map each flow node id to the name of the innermost lane that lists it."""
    lanes: dict[str, str | None] = {}
    # iter() walks outer lanes before inner ones, so inner lanes overwrite: innermost wins.
    for lane in process.iter(_bpmn("lane")):
        for ref in lane.iterfind(_bpmn("flowNodeRef")):
            lanes[(ref.text or "").strip()] = lane.get("name")
    return lanes


def _properties(task: etree._Element) -> dict[str, tuple[str, int | None]]:
    found: dict[str, tuple[str, int | None]] = {}
    for prop in task.iterfind(f"{_bpmn('extensionElements')}/{{{SPIFF_NS}}}properties/{{{SPIFF_NS}}}property"):
        found[prop.get("name", "")] = (prop.get("value", ""), _line(prop))
    return found


def _check_human_task(
    name: str, task: etree._Element, lanes: Mapping[str, str | None],
    forms: Mapping[str, FormDefinition], kinds: Mapping[str, str],
) -> Iterator[Problem]:
    task_id = task.get("id", "")
    line = _line(task)
    if task_id not in lanes:
        yield Problem(file=name, element_id=task_id, line=line,
                      message="user task is outside any lane: put it in the lane of the agency that does it")
    props = _properties(task)
    if task_id in lanes and ASSIGNED_AGENCY not in props:
        lane = lanes[task_id]
        if lane_kind(lane, kinds) is None:
            yield Problem(file=name, element_id=task_id, line=line,
                          message=f"lane {lane!r} names no known agency kind (known: {', '.join(sorted(kinds))})")
    if ASSIGNED_AGENCY in props:
        # The agency comes from the task's data (a Mesa agreement): its lane may name the role instead.
        value, prop_line = props[ASSIGNED_AGENCY]
        yield from _expression_problem(name, task_id, prop_line, value.strip(), ASSIGNED_AGENCY)
    form, form_line = props.get(FORM, ("", line))
    if not form:
        yield Problem(file=name, element_id=task_id, line=line,
                      message="user task names no form (extension property 'form')")
    elif form not in forms:
        yield Problem(file=name, element_id=task_id, line=form_line,
                      message=f"form {form!r} does not exist ({_NO_FORM})")
    for prop_name in DURATION_PROPERTIES:
        if prop_name in props:
            value, prop_line = props[prop_name]
            yield from _check_duration_expression(name, task_id, prop_line, prop_name, value)
    if NEEDS_IDENTITY in props and props[NEEDS_IDENTITY][0].strip().lower() not in ("true", "false"):
        yield Problem(file=name, element_id=task_id, line=props[NEEDS_IDENTITY][1],
                      message="needsIdentity must be true or false")
    if PRIORITY in props:
        value, prop_line = props[PRIORITY]
        yield from _expression_problem(name, task_id, prop_line, value, PRIORITY)


def _check_duration_expression(
    name: str, element_id: str, line: int | None, what: str, expression: str
) -> Iterator[Problem]:
    message = sandbox.check_expression(expression)
    if message:
        yield Problem(file=name, element_id=element_id, line=line, message=f"{what} expression: {message}")
        return
    literal = _literal(expression)
    if isinstance(literal, str):
        try:
            durations.parse_duration(literal)
        except ValueError:
            if what != DUE or not _is_iso_datetime(literal):
                yield Problem(file=name, element_id=element_id, line=line,
                              message=f"{what} {literal!r} is not an ISO-8601 duration such as 'P7D' or 'PT72H'")
    elif literal is not None and not isinstance(literal, str):
        yield Problem(file=name, element_id=element_id, line=line,
                      message=f"{what} must be an ISO-8601 duration in quotes (e.g. \"'P7D'\") or an expression")


def _check_timer(name: str, el: etree._Element) -> Iterator[Problem]:
    expression = (el.text or "").strip()
    element_id = _owner_id(el)
    message = sandbox.check_expression(expression) if expression else "empty timer expression"
    if message:
        yield Problem(file=name, element_id=element_id, line=_line(el),
                      message=f"timer expression: {message} (durations are quoted: \"PT72H\")")
        return
    if _UNQUOTED_ISO.match(expression):
        yield Problem(file=name, element_id=element_id, line=_line(el),
                      message=f"timer expression {expression} is read as a variable name: durations are "
                              f'quoted ("{expression}")')
        return
    literal = _literal(expression)
    if not isinstance(literal, str):
        return  # an expression over data: checked when it runs
    kind = etree.QName(el).localname
    ok = True
    if kind == "timeDuration":
        try:
            durations.parse_duration(literal)
        except ValueError:
            ok = False
    elif kind == "timeDate":
        ok = _is_iso_datetime(literal)
    else:
        ok = literal.upper().startswith("R")
    if not ok:
        yield Problem(file=name, element_id=element_id, line=_line(el),
                      message=f"timer value {literal!r} does not parse as an ISO-8601 {kind}")


def _expression(name: str, el: etree._Element, text: str, what: str) -> Iterator[Problem]:
    yield from _expression_problem(name, _owner_id(el), _line(el), text, what)


def _expression_problem(
    name: str, element_id: str | None, line: int | None, text: str, what: str
) -> Iterator[Problem]:
    message = sandbox.check_expression(text) if text else f"empty {what}"
    if message:
        yield Problem(file=name, element_id=element_id, line=line, message=f"{what} refused: {message}")


def _check_dmn(name: str, tree: etree._ElementTree) -> Iterator[Problem]:
    root = tree.getroot()
    ns = etree.QName(root).namespace
    if etree.QName(root).localname != "definitions" or ns not in DMN_NAMESPACES:
        yield Problem(file=name, line=_line(root),
                      message=f"not a DMN file: the root element is {root.tag!r}; expected definitions in "
                              f"one of the DMN 1.1-1.3 namespaces")
        return
    for el in root.iter("{*}inputExpression"):
        text_el = el.find("{*}text")
        yield from _expression(name, el, (text_el.text or "").strip() if text_el is not None else "",
                               "DMN input expression")
    for el in root.iter("{*}outputEntry"):
        text_el = el.find("{*}text")
        text = (text_el.text or "").strip() if text_el is not None else ""
        if text:
            yield from _expression(name, el, text, "DMN output entry")
    for el in root.iter("{*}inputEntry"):
        text_el = el.find("{*}text")
        text = (text_el.text or "").strip() if text_el is not None else ""
        if text and text != "-":
            message = _check_input_entry(text)
            if message:
                yield Problem(file=name, element_id=_owner_id(el), line=_line(el),
                              message=f"DMN input entry refused: {message}")
    yield from check_decision_tables(tree, filename=name)


def _check_input_entry(text: str) -> str | None:
    """Compile a DMN cell the way the DMN engine will run it ('?' or an operator-prefixed test)."""
    if "?" in text:
        return sandbox.check_expression(text.replace("?", "dmninputexpr"))
    if sandbox.check_expression(text) is None:
        return None
    return sandbox.check_expression(f"dmninputexpr {text}")


def _owner_id(el: etree._Element) -> str | None:
    node: etree._Element | None = el
    while node is not None:
        if node.get("id"):
            return node.get("id")
        node = node.getparent()
    return None


def _line(el: etree._Element) -> int | None:
    # lxml-stubs declare sourceline as `...`; lxml really returns an int, or None when unknown.
    return cast("int | None", el.sourceline)


def _literal(expression: str) -> object:
    try:
        return ast.literal_eval(expression)
    except (ValueError, SyntaxError):
        return None


def _is_iso_datetime(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True
