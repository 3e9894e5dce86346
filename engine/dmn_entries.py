"""What one input entry of a DMN rule can match, modelled the way SpiffWorkflow's DMNEngine evaluates it.

SpiffWorkflow evaluates input entries as Python, not FEEL. Each entry is modelled as the set of
input values it can match (numbers as intervals, other values by equality); `intersect` of two
such sets is empty only when no value matches both. The model only ever over-approximates what an
entry matches, so entries it calls disjoint really are; anything it does not understand counts as
"may match anything" (and is marked inexact).
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import reduce

_INF = math.inf
# The name SpiffWorkflow itself substitutes for `?`, so parse errors read the same as at run time.
_INPUT = "dmninputexpr"
# SpiffWorkflow's own pattern: replace `?` only outside quotes, exactly as the engine will.
_QUESTION_MARK = re.compile(r"""(\?)(?=(?:[^'"]|['"][^'"]*['"])*$)""")
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
class Domain:
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


_ANYTHING = Domain((_REALS,), (), True)
_UNKNOWN = replace(_ANYTHING, exact=False)


def _contains(values: Iterable[object], value: object) -> bool:
    """Return whether value equals one of values, using == as the engine does."""
    return any(value == candidate for candidate in values)


def _numbers(intervals: Iterable[_Interval]) -> tuple[_Interval, ...]:
    """Return the non-empty intervals."""
    return tuple(interval for interval in intervals if not interval.is_empty())


def intersect(a: Domain, b: Domain) -> Domain:
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
    return Domain(numbers, others, excluded, a.exact and b.exact)


def _union(a: Domain, b: Domain) -> Domain:
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
    return Domain(numbers, others, excluded, a.exact and b.exact)


def _complement(domain: Domain) -> Domain:
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
    return Domain(_numbers(gaps), domain.others, not domain.others_excluded)


def _as_number(value: object) -> float | None:
    """Return value as a real number if Python orders it with numbers (bools included), else None."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, complex) and value.imag == 0:
        return value.real
    return None


def _point(value: object) -> Domain:
    """Return the domain of values equal to value."""
    number = _as_number(value)
    if number is not None:
        return Domain((_Interval(number, True, number, True),), (), False)
    return Domain((), (value,), False)


def _finite(values: Iterable[object]) -> Domain:
    """Return the domain of values equal to one of values."""
    return reduce(_union, (_point(v) for v in values), Domain((), (), False))


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


def _comparison(left: ast.expr, op: ast.cmpop, right: ast.expr) -> Domain:
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
    return Domain(_numbers([interval]), (), False)


def _domain_of(node: ast.expr) -> Domain:
    """Return an over-approximation of the input values for which node is true."""
    if isinstance(node, ast.BoolOp):
        combine: Callable[[Domain, Domain], Domain] = (
            intersect if isinstance(node.op, ast.And) else _union
        )
        return reduce(combine, (_domain_of(value) for value in node.values))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return _complement(_domain_of(node.operand))
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        links = (_comparison(a, op, b) for a, op, b in zip(operands, node.ops, operands[1:], strict=False))
        return reduce(intersect, links, _ANYTHING)
    return _UNKNOWN


@dataclass(frozen=True)
class Entry:
    """What the checker learned about one input entry."""

    domain: Domain
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


def analyse_entry(text: str | None, input_expression: str | None) -> Entry:
    """Model one input entry the way SpiffWorkflow's DMNEngine will evaluate it."""
    # The engine treats only a missing/empty text or exactly "-" as "any value".
    if text is None or text in ("", "-"):
        return Entry(_ANYTHING, text or "-")
    if text.strip() in ("", "-"):
        return Entry(
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
            return Entry(_UNKNOWN, text, _syntax_message(text, err), _error_line(err))
        return Entry(_domain_of(tree.body), text)
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
            return Entry(_UNKNOWN, text, _syntax_message(text, first_error), _error_line(first_error))
    if needs_eq:
        return _analyse_equality(text)
    return _analyse_operator(text, input_expression)


def _error_line(err: SyntaxError | ValueError) -> int:
    """Return how many lines into the entry text the error is."""
    lineno = err.lineno if isinstance(err, SyntaxError) else None
    return lineno - 1 if lineno else 0


def _analyse_equality(text: str) -> Entry:
    """Model an entry the engine evaluates as `(input) == (text)`."""
    try:
        body = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError) as err:
        # It parsed as statements (e.g. `x = 1`) but `(input) == (x = 1)` is not an expression.
        return Entry(_UNKNOWN, text, _syntax_message(text, err), _error_line(err))
    if isinstance(body, ast.Tuple):
        ok, values = _literal(body)
        if ok and isinstance(values, tuple):
            # Spiff compares the input with the whole tuple, which never matches what the author
            # meant; model the intended set so overlap checks stay meaningful, but flag it.
            return Entry(
                _finite(values),
                text,
                warnings=("comma lists are not supported by the engine; use ? in [...]",),
            )
    return Entry(_comparison(ast.Name(_INPUT), ast.Eq(), body), text)


def _analyse_operator(text: str, input_expression: str | None) -> Entry:
    """Model an entry the engine appends to the input expression, such as `< 5`."""
    try:
        body = ast.parse(f"{_INPUT} {text}".lstrip(" \t"), mode="eval").body
    except (SyntaxError, ValueError) as err:
        return Entry(_UNKNOWN, text, _syntax_message(text, err), _error_line(err))
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
    return Entry(_domain_of(body), text, warnings=tuple(warnings))
