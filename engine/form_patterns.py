"""Form `pattern`s: checked at deploy time, matched with RE2 (linear time) when data is validated.

Python's `re`, which jsonschema uses, backtracks: `^(a+)+$` against forty "a"s and a "b" takes
longer than the universe has existed. We match with Google's RE2, whose time is linear in the
text, and refuse at deploy time what RE2 cannot run (backreferences, lookaround) and nested
quantifiers, which are harmless here but freeze the browsers and outside clients that read our
schemas with a backtracking engine.
"""

from __future__ import annotations

import functools
import re
import re._parser as sre_parse  # type: ignore[import-not-found]  # no stub; sre_parse warns
from collections.abc import Iterator, Mapping
from typing import Any

import re2
from jsonschema import Draft202012Validator, ValidationError, validators

from engine.errors import Problem

_REPEATS = (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, sre_parse.POSSESSIVE_REPEAT)
_MAX_PATTERN = 1_000


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> Any:
    """Compile a pattern with RE2 (which refuses what it cannot match in linear time)."""
    return re2.compile(pattern)


def _repeats(items: Any, inside: bool) -> Iterator[str]:
    """Yield a reason for every repetition of something that itself repeats."""
    for op, value in items:
        if op in _REPEATS:
            _low, high, body = value
            repeats = high is sre_parse.MAXREPEAT or high > 1
            if repeats and inside:
                yield "a repetition inside a repetition, like (a+)+"
                return
            yield from _repeats(body, inside or (repeats and _can_repeat(body)))
        elif op == sre_parse.SUBPATTERN:
            yield from _repeats(value[-1], inside)
        elif op == sre_parse.BRANCH:
            for branch in value[1]:
                yield from _repeats(branch, inside)
        elif op in (sre_parse.GROUPREF, sre_parse.GROUPREF_EXISTS):
            yield "a backreference"
        elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
            yield "a lookahead or lookbehind"


def _can_repeat(items: Any) -> bool:
    """Say whether a pattern body contains a repetition anywhere."""
    for op, value in items:
        if op in _REPEATS:
            return True
        if op == sre_parse.SUBPATTERN and _can_repeat(value[-1]):
            return True
        if op == sre_parse.BRANCH and any(_can_repeat(branch) for branch in value[1]):
            return True
    return False


def pattern_problem(pattern: Any) -> str | None:
    """Say why a form pattern is refused, or None if it is safe."""
    if not isinstance(pattern, str):
        return "a pattern must be text"
    if len(pattern) > _MAX_PATTERN:
        return f"a pattern may be at most {_MAX_PATTERN} characters long"
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as exc:
        return f"not a valid regular expression ({exc})"
    for reason in _repeats(parsed, inside=False):
        return f"{reason} can take exponential time in a browser or another client; write it without one"
    try:
        _compiled(pattern)
    except re2.error as exc:
        return f"a linear-time engine cannot run it ({exc})"
    return None


def _patterns(schema: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Yield (field path, pattern) for every `pattern` and `patternProperties` key in a schema."""
    if isinstance(schema, Mapping):
        for key, value in schema.items():
            if key == "pattern":
                yield path or "(form)", value
            elif key == "patternProperties" and isinstance(value, Mapping):
                for pattern, sub in value.items():
                    yield path or "(form)", pattern
                    yield from _patterns(sub, path)
            elif key == "properties" and isinstance(value, Mapping):
                for name, sub in value.items():
                    yield from _patterns(sub, f"{path}/{name}" if path else str(name))
            else:
                yield from _patterns(value, path)
    elif isinstance(schema, list):
        for item in schema:
            yield from _patterns(item, path)


def check_patterns(schema: Mapping[str, Any], form: str, file_name: str) -> list[Problem]:
    """Refuse the form's unsafe patterns, naming the form and the field."""
    problems = []
    for field, pattern in _patterns(schema, ""):
        problem = pattern_problem(pattern)
        if problem is not None:
            problems.append(Problem(
                file=file_name, element_id=form, message=f"field {field!r}: pattern {pattern!r} refused: {problem}"
            ))
    return problems


def _pattern(validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    """The `pattern` keyword, matched with RE2."""
    if validator.is_type(instance, "string") and _compiled(pattern).search(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """The `patternProperties` keyword, matched with RE2."""
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _compiled(pattern).search(key) is not None:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


FormValidator: Any = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _pattern, "patternProperties": _pattern_properties}
)
