"""Deploy-time check that DMN rules cannot overlap where the table's hit policy forbids it.

SpiffWorkflow evaluates input entries as Python, not FEEL, and with hit policy UNIQUE it silently
returns the first matching rule. Each input entry is modelled as the set of input values it can
match (`engine.dmn_entries`), and rule pairs it cannot prove disjoint are refused.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import cast

from lxml import etree

from engine.dmn_entries import Entry, analyse_entry, intersect
from engine.errors import Problem

_KNOWN_POLICIES = frozenset({"UNIQUE", "FIRST", "PRIORITY", "ANY", "COLLECT", "RULE ORDER", "OUTPUT ORDER"})


def _local(element: etree._Element) -> str:
    """Return the tag name of element without its namespace."""
    return etree.QName(element).localname


def _line(element: etree._Element) -> int | None:
    """Return the source line of element."""
    # lxml-stubs declare sourceline as `...`; lxml really returns an int, or None when unknown.
    return cast("int | None", element.sourceline)


def _text_of(element: etree._Element | None) -> str | None:
    """Return the text of element's `text` child, or None."""
    if element is None:
        return None
    text = element.find("{*}text")
    return None if text is None else text.text


def _decision_name(table: etree._Element) -> str:
    """Return the id (or name) of the decision that holds table."""
    for ancestor in table.iterancestors():
        if _local(ancestor) == "decision":
            return ancestor.get("id") or ancestor.get("name") or "?"
    return table.get("id") or "?"


def _normalised_output(element: etree._Element) -> str:
    """Return an output entry's text in a form where `'a'` and `"a"` compare equal."""
    text = (_text_of(element) or "").strip()
    try:
        return ast.dump(ast.parse(text, mode="eval")) if text else ""
    except (SyntaxError, ValueError):
        return text


@dataclass(frozen=True)
class _Rule:
    """One row of a decision table, as far as the overlap check needs it."""

    rule_id: str
    row: int
    line: int | None
    entries: tuple[Entry, ...]
    outputs: tuple[str, ...]


def check_decision_tables(tree: etree._ElementTree, *, filename: str) -> list[Problem]:
    """Return a Problem for every rule pair that may both match where the hit policy forbids it."""
    problems: list[Problem] = []
    for table in tree.getroot().iter("{*}decisionTable"):
        problems.extend(_check_table(table, filename))
    return problems


def _check_table(table: etree._Element, filename: str) -> list[Problem]:
    """Return the problems of one decision table."""
    problems: list[Problem] = []
    decision = _decision_name(table)
    policy = (table.get("hitPolicy") or "UNIQUE").strip().upper()
    if policy not in _KNOWN_POLICIES:
        # The engine treats any unknown policy like FIRST, so a typo would silently disable UNIQUE.
        problems.append(
            Problem(
                filename,
                f'decision "{decision}" has unknown hit policy "{policy}"; '
                f"expected one of {', '.join(sorted(_KNOWN_POLICIES))}",
                table.get("id"),
                _line(table),
            )
        )
    inputs = table.findall("{*}input")
    expressions = [_text_of(inp.find("{*}inputExpression")) for inp in inputs]
    columns = [
        inp.get("label") or (expr or "").strip() or f"#{i}"
        for i, (inp, expr) in enumerate(zip(inputs, expressions, strict=True), start=1)
    ]
    checkable: list[_Rule] = []
    for row, rule in enumerate(table.findall("{*}rule"), start=1):
        rule_id = rule.get("id") or f"row {row}"
        entry_elements = rule.findall("{*}inputEntry")
        if len(entry_elements) != len(inputs):
            problems.append(
                Problem(
                    filename,
                    f'rule {rule_id} (row {row}) of decision "{decision}" has {len(entry_elements)} '
                    f"input entries but the table has {len(inputs)} inputs",
                    rule_id,
                    _line(rule),
                )
            )
            continue
        entries: list[Entry] = []
        broken = False
        for column, (element, expression) in enumerate(zip(entry_elements, expressions, strict=True)):
            text_element = element.find("{*}text")
            entry = analyse_entry(_text_of(element), expression)
            entries.append(entry)
            where = f'rule {rule_id} (row {row}), column "{columns[column]}", of decision "{decision}"'
            base_line = _line(text_element if text_element is not None else element)
            element_id = element.get("id") or rule_id
            if entry.error is not None:
                broken = True
                line = base_line + entry.error_line_offset if base_line is not None else None
                problems.append(Problem(filename, f"{entry.error} (in {where})", element_id, line))
            problems.extend(
                Problem(filename, f"{warning} (in {where})", element_id, base_line)
                for warning in entry.warnings
            )
        if not broken:
            outputs = tuple(_normalised_output(out) for out in rule.findall("{*}outputEntry"))
            checkable.append(_Rule(rule_id, row, _line(rule), tuple(entries), outputs))
    if policy in ("UNIQUE", "ANY"):
        for first, second in combinations(checkable, 2):
            problem = _overlap_problem(first, second, columns, decision, policy, filename)
            if problem is not None:
                problems.append(problem)
    return problems


def _overlap_problem(
    first: _Rule, second: _Rule, columns: Sequence[str], decision: str, policy: str, filename: str
) -> Problem | None:
    """Return a Problem if the two rules may both match and the hit policy forbids it."""
    if policy == "ANY" and first.outputs == second.outputs:
        return None
    unclear: list[str] = []
    for column, (a, b) in enumerate(zip(first.entries, second.entries, strict=True)):
        if intersect(a.domain, b.domain).is_empty():
            return None
        unclear.extend(
            f'`{entry.text.strip()}` (column "{columns[column]}")'
            for entry in (a, b)
            if not entry.domain.exact
        )
    pair = f"{first.rule_id} (row {first.row}) and {second.rule_id} (row {second.row})"
    if policy == "ANY":
        conflict = "with different outputs (hit policy ANY); give them identical outputs, "
    else:
        conflict = "(hit policy UNIQUE); "
    if unclear:
        message = (
            f'cannot prove exclusivity of rules {pair} of decision "{decision}": the checker does not '
            f"understand {', '.join(dict.fromkeys(unclear))}, so both may match {conflict}"
            "write the conditions as literals, comparisons such as `< 5` or `? in [...]`, "
            "or use hit policy FIRST"
        )
    else:
        message = (
            f'rules {pair} of decision "{decision}" can both match {conflict}'
            "make their conditions exclusive or use hit policy FIRST"
        )
    # Point at the later rule: under UNIQUE it is the one the engine will silently never pick.
    return Problem(filename, message, f"{first.rule_id} / {second.rule_id}", second.line)
