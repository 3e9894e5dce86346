"""Deploy-time check that DMN rules cannot overlap where the table's hit policy forbids it.

SpiffWorkflow evaluates input entries as Python, not FEEL, and with hit policy UNIQUE it silently
returns the first matching rule. This module models each input entry as the set of input values it
can match (numbers as intervals, other values by equality) and refuses rule pairs that it cannot
prove disjoint. The model only ever over-approximates what an entry matches, so a pair it calls
disjoint really is; anything it does not understand counts as "may match anything".
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import reduce
from itertools import combinations
from typing import cast

from lxml import etree

from engine.errors import Problem

_INF = math.inf
# The name SpiffWorkflow itself substitutes for `?`, so parse errors read the same as at run time.
_INPUT = "dmninputexpr"
# SpiffWorkflow's own pattern: replace `?` only outside quotes, exactly as the engine will.
_QUESTION_MARK = re.compile(r"""(\?)(?=(?:[^'"]|['"][^'"]*['"])*$)""")
_KNOWN_POLICIES = frozenset({"UNIQUE", "FIRST", "PRIORITY", "ANY", "COLLECT", "RULE ORDER", "OUTPUT ORDER"})
_LITERAL_ERRORS = (ValueError, TypeError, SyntaxError, MemoryError, RecursionError)


@dataclass(frozen=True)
class _Interval:
    """A numeric interval over the extended reals; bounds may be infinite."""

    lo: float
    lo_closed: bool
    hi: float
    hi_closed: bool

    def is_empty(self) -> bool:
        """Return whether no number lies in the interval."""
        return self.lo > self.hi or (self.lo == self.hi and not (self.lo_closed and self.hi_closed))

    def intersect(self, other: _Interval) -> _Interval:
        """Return the interval of numbers in both intervals (possibly empty)."""
        if self.lo != other.lo:
            lo, lo_closed = (self.lo, self.lo_closed) if self.lo > other.lo else (other.lo, other.lo_closed)
        else:
            lo, lo_closed = self.lo, self.lo_closed and other.lo_closed
        if self.hi != other.hi:
            hi, hi_closed = (self.hi, self.hi_closed) if self.hi < other.hi else (other.hi, other.hi_closed)
        else:
            hi, hi_closed = self.hi, self.hi_closed and other.hi_closed
        return _Interval(lo, lo_closed, hi, hi_closed)


_REALS = _Interval(-_INF, True, _INF, True)


@dataclass(frozen=True)
class _Domain:
    """The input values an entry may match: numbers as intervals, any other value by equality."""

    numbers: tuple[_Interval, ...]
    # Non-numeric values: exactly `others`, or, when `others_excluded`, everything except them.
    others: tuple[object, ...]
    others_excluded: bool
    # False when part of the entry was not understood and the domain is only an upper bound; its
    # complement would then be a lower bound, which is unsafe, so complements of it are "anything".
    exact: bool = True

    def is_empty(self) -> bool:
        """Return whether no value at all can match."""
        return not self.numbers and not self.others and not self.others_excluded


_ANYTHING = _Domain((_REALS,), (), True)
_UNKNOWN = replace(_ANYTHING, exact=False)


def _contains(values: Iterable[object], value: object) -> bool:
    """Return whether value equals one of values, using == as the engine does."""
    return any(value == candidate for candidate in values)


def _numbers(intervals: Iterable[_Interval]) -> tuple[_Interval, ...]:
    """Return the non-empty intervals."""
    return tuple(interval for interval in intervals if not interval.is_empty())


def _intersect(a: _Domain, b: _Domain) -> _Domain:
    """Return the values matched by both domains."""
    numbers = _numbers(x.intersect(y) for x in a.numbers for y in b.numbers)
    if not a.others_excluded and not b.others_excluded:
        others, excluded = tuple(v for v in a.others if _contains(b.others, v)), False
    elif not a.others_excluded:
        others, excluded = tuple(v for v in a.others if not _contains(b.others, v)), False
    elif not b.others_excluded:
        others, excluded = tuple(v for v in b.others if not _contains(a.others, v)), False
    else:
        others, excluded = a.others + tuple(v for v in b.others if not _contains(a.others, v)), True
    return _Domain(numbers, others, excluded, a.exact and b.exact)


def _union(a: _Domain, b: _Domain) -> _Domain:
    """Return the values matched by either domain."""
    numbers = a.numbers + b.numbers
    if not a.others_excluded and not b.others_excluded:
        others, excluded = a.others + tuple(v for v in b.others if not _contains(a.others, v)), False
    elif not a.others_excluded:
        others, excluded = tuple(v for v in b.others if not _contains(a.others, v)), True
    elif not b.others_excluded:
        others, excluded = tuple(v for v in a.others if not _contains(b.others, v)), True
    else:
        others, excluded = tuple(v for v in a.others if _contains(b.others, v)), True
    return _Domain(numbers, others, excluded, a.exact and b.exact)


def _complement(domain: _Domain) -> _Domain:
    """Return the values the domain does not match (anything, if the domain is not exact)."""
    if not domain.exact:
        return _UNKNOWN
    gaps: list[_Interval] = []
    # Sweep left to right; (start, start_closed) is where the next uncovered stretch begins.
    start, start_closed = -_INF, True
    for interval in sorted(domain.numbers, key=lambda i: (i.lo, not i.lo_closed)):
        gaps.append(_Interval(start, start_closed, interval.lo, not interval.lo_closed))
        if (interval.hi, interval.hi_closed) > (start, not start_closed):
            start, start_closed = interval.hi, not interval.hi_closed
    gaps.append(_Interval(start, start_closed, _INF, True))
    return _Domain(_numbers(gaps), domain.others, not domain.others_excluded)


def _as_number(value: object) -> float | None:
    """Return value as a real number if Python orders it with numbers (bools included), else None."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, complex) and value.imag == 0:
        return value.real
    return None


def _point(value: object) -> _Domain:
    """Return the domain of values equal to value."""
    number = _as_number(value)
    if number is not None:
        return _Domain((_Interval(number, True, number, True),), (), False)
    return _Domain((), (value,), False)


def _finite(values: Iterable[object]) -> _Domain:
    """Return the domain of values equal to one of values."""
    return reduce(_union, (_point(v) for v in values), _Domain((), (), False))


def _literal(node: ast.expr) -> tuple[bool, object]:
    """Return (True, value) if node is a Python literal, else (False, None)."""
    try:
        return True, ast.literal_eval(node)
    except _LITERAL_ERRORS:
        return False, None


_MIRRORED: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.Eq,
    ast.NotEq: ast.NotEq,
    ast.Lt: ast.Gt,
    ast.LtE: ast.GtE,
    ast.Gt: ast.Lt,
    ast.GtE: ast.LtE,
}


def _is_input(node: ast.expr) -> bool:
    """Return whether node is the placeholder standing for the input value."""
    return isinstance(node, ast.Name) and node.id == _INPUT


def _comparison(left: ast.expr, op: ast.cmpop, right: ast.expr) -> _Domain:
    """Return the domain of one `left op right` link of a comparison chain."""
    if _is_input(left) == _is_input(right):
        return _UNKNOWN
    op_type: type[ast.cmpop] | None = type(op)
    if _is_input(right):
        left, right = right, left
        op_type = _MIRRORED.get(type(op))
    ok, value = _literal(right)
    if not ok or op_type is None:
        return _UNKNOWN
    if op_type is ast.Eq:
        return _point(value)
    if op_type is ast.NotEq:
        return _complement(_point(value))
    if op_type in (ast.In, ast.NotIn):
        # Membership in a string means substring, which this model cannot express.
        if not isinstance(value, list | tuple | set | frozenset | dict):
            return _UNKNOWN
        members = _finite(value)
        return members if op_type is ast.In else _complement(members)
    if op_type in (ast.Is, ast.IsNot):
        # Only `is None` is reliable: `is True` does not match 1 although `== True` does.
        if value is not None:
            return _UNKNOWN
        return _point(None) if op_type is ast.Is else _complement(_point(None))
    bound = _as_number(value)
    if bound is None:
        return _UNKNOWN
    if op_type is ast.Lt:
        interval = _Interval(-_INF, True, bound, False)
    elif op_type is ast.LtE:
        interval = _Interval(-_INF, True, bound, True)
    elif op_type is ast.Gt:
        interval = _Interval(bound, False, _INF, True)
    else:
        interval = _Interval(bound, True, _INF, True)
    # Ordering a non-number against a number raises in the engine, so only numbers match.
    return _Domain(_numbers([interval]), (), False)


def _domain_of(node: ast.expr) -> _Domain:
    """Return an over-approximation of the input values for which node is true."""
    if isinstance(node, ast.BoolOp):
        combine: Callable[[_Domain, _Domain], _Domain] = (
            _intersect if isinstance(node.op, ast.And) else _union
        )
        return reduce(combine, (_domain_of(value) for value in node.values))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return _complement(_domain_of(node.operand))
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        links = (_comparison(a, op, b) for a, op, b in zip(operands, node.ops, operands[1:], strict=False))
        return reduce(_intersect, links, _ANYTHING)
    return _UNKNOWN


@dataclass(frozen=True)
class _Entry:
    """What the checker learned about one input entry."""

    domain: _Domain
    text: str
    # A problem that makes the rule fail at run time; such rules are left out of overlap checks.
    error: str | None = None
    error_line_offset: int = 0
    warnings: tuple[str, ...] = ()


def _syntax_message(text: str, err: SyntaxError | ValueError) -> str:
    """Return a short explanation of why text does not parse."""
    detail = err.msg if isinstance(err, SyntaxError) else str(err)
    hint = "; remove the surrounding whitespace" if text != text.strip() else ""
    return f"input entry `{text.strip()}` is not a valid Python expression ({detail}){hint}"


def _analyse_entry(text: str | None, input_expression: str | None) -> _Entry:
    """Model one input entry the way SpiffWorkflow's DMNEngine will evaluate it."""
    # The engine treats only a missing/empty text or exactly "-" as "any value".
    if text is None or text in ("", "-"):
        return _Entry(_ANYTHING, text or "-")
    if text.strip() in ("", "-"):
        return _Entry(
            _UNKNOWN,
            text,
            'input entry has whitespace around it or is blank; the engine only treats an empty entry or '
            'exactly "-" as any value',
        )
    if _QUESTION_MARK.search(text):
        expression = _QUESTION_MARK.sub(_INPUT, text)
        try:
            # eval(), which the engine uses here, ignores leading spaces and tabs.
            tree = ast.parse(expression.lstrip(" \t"), mode="eval")
        except (SyntaxError, ValueError) as err:
            return _Entry(_UNKNOWN, text, _syntax_message(text, err), _error_line(err))
        return _Entry(_domain_of(tree.body), text)
    # Without `?` the engine compares with == when the text parses on its own, and otherwise
    # appends the text to the input expression (for `< 5`, `in [...]`, `!= "x"`).
    try:
        ast.parse(text)
        needs_eq = True
    except (SyntaxError, ValueError) as first_error:
        try:
            ast.parse(f"v {text}")
            needs_eq = False
        except (SyntaxError, ValueError):
            return _Entry(_UNKNOWN, text, _syntax_message(text, first_error), _error_line(first_error))
    if needs_eq:
        return _analyse_equality(text)
    return _analyse_operator(text, input_expression)


def _error_line(err: SyntaxError | ValueError) -> int:
    """Return how many lines into the entry text the error is."""
    lineno = err.lineno if isinstance(err, SyntaxError) else None
    return lineno - 1 if lineno else 0


def _analyse_equality(text: str) -> _Entry:
    """Model an entry the engine evaluates as `(input) == (text)`."""
    try:
        body = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError) as err:
        # It parsed as statements (e.g. `x = 1`) but `(input) == (x = 1)` is not an expression.
        return _Entry(_UNKNOWN, text, _syntax_message(text, err), _error_line(err))
    if isinstance(body, ast.Tuple):
        ok, values = _literal(body)
        if ok and isinstance(values, tuple):
            # Spiff compares the input with the whole tuple, which never matches what the author
            # meant; model the intended set so overlap checks stay meaningful, but flag it.
            return _Entry(
                _finite(values),
                text,
                warnings=("comma lists are not supported by the engine; use ? in [...]",),
            )
    return _Entry(_comparison(ast.Name(_INPUT), ast.Eq(), body), text)


def _analyse_operator(text: str, input_expression: str | None) -> _Entry:
    """Model an entry the engine appends to the input expression, such as `< 5`."""
    try:
        body = ast.parse(f"{_INPUT} {text}".lstrip(" \t"), mode="eval").body
    except (SyntaxError, ValueError) as err:
        return _Entry(_UNKNOWN, text, _syntax_message(text, err), _error_line(err))
    warnings: list[str] = []
    if not (isinstance(body, ast.Compare) and _is_input(body.left)):
        warnings.append(
            f"input entry `{text.strip()}` does not start with a comparison operator, yet the engine "
            f"appends it to the input expression; write it with ? (e.g. `? {text.strip()}`)"
        )
    elif input_expression and input_expression.strip():
        # The engine concatenates without a space or parentheses, so `in [...]` after `riesgo`
        # becomes `riesgoin [...]`, and `< 5` after `a or b` compares only `b`.
        glued = input_expression + text
        try:
            intended = ast.dump(ast.parse(f"({input_expression.strip()}) {text.strip()}", mode="eval"))
        except (SyntaxError, ValueError):
            intended = None
        try:
            actual: str | None = ast.dump(ast.parse(glued.lstrip(" \t"), mode="eval"))
        except (SyntaxError, ValueError):
            actual = None
        if intended is not None and actual != intended:
            warnings.append(
                f"the engine evaluates input entry `{text.strip()}` as `{glued.strip()}`, which is not "
                f"the intended comparison; write it with ? (e.g. `? {text.strip()}`)"
            )
    return _Entry(_domain_of(body), text, warnings=tuple(warnings))


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
    entries: tuple[_Entry, ...]
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
        entries: list[_Entry] = []
        broken = False
        for column, (element, expression) in enumerate(zip(entry_elements, expressions, strict=True)):
            text_element = element.find("{*}text")
            entry = _analyse_entry(_text_of(element), expression)
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
        if _intersect(a.domain, b.domain).is_empty():
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
