"""RestrictedPython evaluation of scripts, conditions, timer/deadline expressions and DMN cells.

SpiffWorkflow evaluates with plain eval/exec, which would let whoever uploads a BPMN file
run arbitrary code on the server. Everything here goes through RestrictedPython with a
short whitelist of builtins and our own guards, and security refusals are raised as
SandboxError so the engine can tell "forbidden" apart from an ordinary script bug.
"""

from __future__ import annotations

import ast
import copy
import functools
import math
import operator
import re
import textwrap
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, Literal

from RestrictedPython.compile import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import (
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
    safer_getattr_raise,
)
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from engine.errors import SandboxError

# ---------------------------------------------------------------------------
# Helpers exposed to every expression and script
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkingDays:
    """A duration counted in working days (resolved against a business calendar by the deadline code)."""

    days: int


_DURATION = re.compile(
    r"""\A P
    (?:(?P<years>\d+(?:[.,]\d+)?)Y)?
    (?:(?P<months>\d+(?:[.,]\d+)?)M)?
    (?:(?P<weeks>\d+(?:[.,]\d+)?)W)?
    (?:(?P<days>\d+(?:[.,]\d+)?)D)?
    (?:T
        (?:(?P<hours>\d+(?:[.,]\d+)?)H)?
        (?:(?P<minutes>\d+(?:[.,]\d+)?)M)?
        (?:(?P<seconds>\d+(?:[.,]\d+)?)S)?
    )?
    \Z""",
    re.VERBOSE,
)


def parse_duration(iso: str) -> timedelta:
    """Parse an ISO-8601 duration such as "PT72H", "P7D", "P1W" or "P1DT12H"."""
    if not isinstance(iso, str):
        raise TypeError(f"duration must be text like 'P7D', not {type(iso).__name__}")
    text = iso.strip().upper()
    match = _DURATION.match(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(
            f"{iso!r} is not an ISO-8601 duration (expected e.g. 'PT72H', 'P7D', 'P1W' or 'P1DT12H')"
        )
    parts = {name: float(value.replace(",", ".")) for name, value in match.groupdict().items() if value}
    # Months and years have no fixed length, so a legal deadline written with them would
    # be ambiguous; make the modeller say how many days they mean.
    if "years" in parts or "months" in parts:
        raise ValueError(
            f"{iso!r} uses months or years, which have no fixed length; write the duration in days or weeks"
        )
    return timedelta(
        weeks=parts.get("weeks", 0),
        days=parts.get("days", 0),
        hours=parts.get("hours", 0),
        minutes=parts.get("minutes", 0),
        seconds=parts.get("seconds", 0),
    )


def parse_datetime(iso: str | datetime) -> datetime:
    """Parse an ISO-8601 date/time into an aware datetime (naive values are taken as UTC)."""
    if isinstance(iso, datetime):
        value = iso
    elif isinstance(iso, str):
        try:
            value = datetime.fromisoformat(iso.strip())
        except ValueError:
            raise ValueError(
                f"{iso!r} is not an ISO-8601 date/time (expected e.g. '2024-05-01T09:30:00+02:00')"
            ) from None
    else:
        raise TypeError(f"date/time must be text like '2024-05-01T09:30:00Z', not {type(iso).__name__}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _days(n: float) -> timedelta:
    """Return a duration of n calendar days."""
    return timedelta(days=n)


def _hours(n: float) -> timedelta:
    """Return a duration of n hours."""
    return timedelta(hours=n)


def _minutes(n: float) -> timedelta:
    """Return a duration of n minutes."""
    return timedelta(minutes=n)


def _weeks(n: float) -> timedelta:
    """Return a duration of n weeks."""
    return timedelta(weeks=n)


def _working_days(n: int) -> WorkingDays:
    """Return a duration of n working days, for the deadline code to resolve."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"working_days() needs a whole number of days, not {n!r}")
    if n < 0:
        raise ValueError(f"working_days() needs zero or more days, not {n}")
    return WorkingDays(n)


HELPERS: Mapping[str, object] = types.MappingProxyType(
    {
        "duration": parse_duration,
        "days": _days,
        "hours": _hours,
        "minutes": _minutes,
        "weeks": _weeks,
        "working_days": _working_days,
        "parse_datetime": parse_datetime,
        "date": date,
        "datetime": datetime,
        "time": time,
        "timedelta": timedelta,
        "timezone": timezone,
    }
)

# ---------------------------------------------------------------------------
# Builtins and guards
# ---------------------------------------------------------------------------

_SAFE_BUILTIN_NAMES = (
    "None", "True", "False", "abs", "bool", "divmod", "float", "int", "isinstance", "len",
    "range", "round", "str",
    "ArithmeticError", "Exception", "IndexError", "KeyError", "LookupError", "TypeError",
    "ValueError", "ZeroDivisionError",
)  # fmt: skip
# RestrictedPython leaves these out because they iterate in C, bypassing `_getiter_`. Our
# `_getiter_` guards nothing (there is no per-object access control here), so there is
# nothing for them to bypass.
_EXTRA_BUILTINS: Mapping[str, object] = {
    "all": all, "any": any, "dict": dict, "enumerate": enumerate, "filter": filter,
    "list": list, "map": map, "max": max, "min": min, "reversed": reversed, "set": set,
    "sorted": sorted, "sum": sum, "tuple": tuple, "zip": zip,
}  # fmt: skip
_BUILTINS: Mapping[str, object] = types.MappingProxyType(
    {name: safe_builtins[name] for name in _SAFE_BUILTIN_NAMES} | dict(_EXTRA_BUILTINS)
)

# Names people may reach for that exist in Python but not here: a NameError on them
# is a refusal, and saying so beats "name 'open' is not defined".
_FORBIDDEN_BUILTINS = frozenset(
    {
        "open", "eval", "exec", "compile", "globals", "locals", "vars", "type", "getattr",
        "setattr", "delattr", "hasattr", "dir", "input", "breakpoint", "help", "memoryview",
        "object", "super", "classmethod", "staticmethod", "property", "exit", "quit",
    }
)  # fmt: skip

# `mro()` hands out `object`; harmless without "_" attributes, but there is no use for it.
_FORBIDDEN_ATTRIBUTES = INSPECT_ATTRIBUTES | {"mro"}
_STR_FORMAT_METHODS = frozenset({"format", "format_map"})

# Typed aliases: RestrictedPython's guard functions carry no annotations.
_safer_getattr_raise: Callable[[object, str], Any] = safer_getattr_raise
_guarded_unpack_sequence: Callable[..., Any] = guarded_unpack_sequence
_guarded_iter_unpack_sequence: Callable[..., Any] = guarded_iter_unpack_sequence


def _guarded_getattr(obj: object, name: str) -> Any:
    """Read an attribute unless it leads out of the sandbox."""
    if not isinstance(name, str):
        raise TypeError("attribute name must be text")
    if name.startswith("_"):
        raise SandboxError(f'forbidden: attribute names starting with "_" are not allowed ({name!r})')
    if name in _FORBIDDEN_ATTRIBUTES:
        raise SandboxError(f"forbidden: attribute {name!r} is not allowed")
    # str.format can walk attributes by name ("{0.__class__}"), escaping the guard above.
    if name in _STR_FORMAT_METHODS and (
        isinstance(obj, str) or (isinstance(obj, type) and issubclass(obj, str))
    ):
        raise SandboxError("forbidden: str.format() is not allowed (use an f-string or the % operator)")
    try:
        return _safer_getattr_raise(obj, name)
    except NotImplementedError as exc:
        # RestrictedPython's own refusals (string.Formatter and friends) are security refusals.
        raise SandboxError(f"forbidden: {exc}") from None


def _guarded_getitem(obj: Any, key: Any) -> Any:
    """Read an item; plain data gives nothing to guard beyond attribute access."""
    return obj[key]


def _guarded_getiter(obj: Iterable[Any]) -> Iterable[Any]:
    """Iterate as Python does; the sandbox has no per-object read permissions."""
    return obj


class _ReadOnly:
    """Stand-in returned by the write guard for objects scripts may not modify."""

    def __init__(self, target: object) -> None:
        object.__setattr__(self, "_target", target)

    def _refuse(self, *args: object) -> None:
        """Refuse any modification."""
        kind = type(object.__getattribute__(self, "_target")).__name__
        raise SandboxError(
            f"forbidden: {kind} values cannot be modified in a script (only lists and dicts can)"
        )

    __setattr__ = _refuse
    __delattr__ = _refuse
    __setitem__ = _refuse
    __delitem__ = _refuse


def _guarded_write(obj: Any) -> Any:
    """Allow writes (item/attribute assignment, del) only to plain lists and dicts."""
    if type(obj) in (dict, list):
        return obj
    return _ReadOnly(obj)


_INPLACE_OPERATORS: Mapping[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow,
    "<<=": operator.ilshift, ">>=": operator.irshift, "&=": operator.iand,
    "|=": operator.ior, "^=": operator.ixor,
}  # fmt: skip


def _inplace_var(op: str, target: Any, value: Any) -> Any:
    """Apply an augmented assignment (x += y); no more dangerous than x = x + y."""
    try:
        function = _INPLACE_OPERATORS[op]
    except KeyError:
        raise SandboxError(f"forbidden: operator {op} is not allowed") from None
    return function(target, value)


def _apply(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call with *args/**kwargs, which RestrictedPython routes through this guard."""
    return function(*args, **kwargs)


_GUARDS: Mapping[str, object] = types.MappingProxyType(
    {
        "__builtins__": _BUILTINS,
        "_getattr_": _guarded_getattr,
        "_getitem_": _guarded_getitem,
        "_getiter_": _guarded_getiter,
        "_iter_unpack_sequence_": _guarded_iter_unpack_sequence,
        "_unpack_sequence_": _guarded_unpack_sequence,
        "_write_": _guarded_write,
        "_inplacevar_": _inplace_var,
        "_apply_": _apply,
    }
)

# ---------------------------------------------------------------------------
# Compilation
# ---------------------------------------------------------------------------

_RP_ERROR = re.compile(r"\ALine (\d+|None): (.*?)\.?\Z", re.DOTALL)


class _Precheck(ast.NodeVisitor):
    """Find forbidden constructs and describe them better than RestrictedPython does."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def _add(self, node: ast.AST, what: str) -> None:
        """Record one forbidden construct with its line."""
        self.problems.append(f"forbidden: {what} (line {getattr(node, 'lineno', '?')})")

    def visit_Import(self, node: ast.Import) -> None:
        """Refuse import statements."""
        self._add(node, "import is not allowed")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        """Refuse from-import statements."""
        self._add(node, "import is not allowed")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        """Refuse class definitions (there is no __build_class__ in the sandbox)."""
        self._add(node, "class definitions are not allowed")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        """Refuse attributes starting with "_" or exposing interpreter internals."""
        if node.attr.startswith("_"):
            self._add(node, 'attribute names starting with "_" are not allowed')
        elif node.attr in _FORBIDDEN_ATTRIBUTES:
            self._add(node, f"attribute {node.attr!r} is not allowed")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        """Refuse calls to built-ins the sandbox leaves out (open, eval, getattr...)."""
        if isinstance(node.func, ast.Name) and node.func.id in _FORBIDDEN_BUILTINS:
            self._add(node, f"{node.func.id}() is not available in the sandbox")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        """Refuse names starting with "_" (the guards live there; a lone "_" is fine) and print."""
        if node.id.startswith("_") and node.id != "_":
            self._add(node, f'the name "{node.id}" starts with "_", which is not allowed')
        elif node.id in ("print", "printed"):
            # RestrictedPython would rewrite print into a collector we do not provide.
            self._add(node, "print() is not available (scripts have no output; assign a variable instead)")


def _rewrite_rp_error(error: str) -> str:
    """Turn RestrictedPython's 'Line 3: Foo is not allowed.' into our message style."""
    match = _RP_ERROR.match(error)
    if match is None:
        return f"forbidden: {error}"
    line, text = match.groups()
    return f"forbidden: {text[:1].lower()}{text[1:]} (line {line})"


@functools.lru_cache(maxsize=4096)
def _compile(source: str, mode: Literal["eval", "exec"]) -> types.CodeType:
    """Compile restricted code, raising SyntaxError or SandboxError with a clear message."""
    filename = "<expression>" if mode == "eval" else "<script>"
    try:
        tree: ast.Expression | ast.Module = (
            ast.parse(source, filename, "eval") if mode == "eval" else ast.parse(source, filename, "exec")
        )
    except SyntaxError as exc:
        raise SyntaxError(f"syntax error: {exc.msg} (line {exc.lineno})") from None
    except ValueError as exc:  # e.g. NUL bytes in the source
        raise SyntaxError(f"syntax error: {exc}") from None

    precheck = _Precheck()
    precheck.visit(tree)
    if precheck.problems:
        raise SandboxError("; ".join(dict.fromkeys(precheck.problems)))

    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    result = compiler(tree, filename)
    if result.errors or result.code is None:
        raise SandboxError("; ".join(_rewrite_rp_error(e) for e in result.errors) or "forbidden code")
    return result.code


def _normalise_expression(source: str) -> str:
    """Strip the surrounding whitespace XML attributes and DMN cells tend to carry."""
    return source.strip()


def _normalise_script(source: str) -> str:
    """Dedent a script, which BPMN editors often indent inside the XML element."""
    return textwrap.dedent(source).strip("\n")


def _check(source: str, mode: Literal["eval", "exec"]) -> str | None:
    """Return the compile error message for source, or None if it compiles."""
    try:
        _compile(source, mode)
    except (SyntaxError, SandboxError) as exc:
        return str(exc)
    return None


def check_expression(source: str) -> str | None:
    """Compile-check an expression: None if it is fine, else a message saying why not."""
    return _check(_normalise_expression(source), "eval")


def check_script(source: str) -> str | None:
    """Compile-check a script: None if it is fine, else a message saying why not."""
    return _check(_normalise_script(source), "exec")


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------


def _namespace(context: Mapping[str, Any], external: Mapping[str, Any] | None) -> dict[str, Any]:
    """Build globals: guards, then helpers, then task data, then external values (last wins)."""
    namespace: dict[str, Any] = dict(_GUARDS)
    namespace.update(HELPERS)
    for source in (context, external or {}):
        for key, value in source.items():
            # A data key like "_getattr_" would replace a guard; such names cannot be
            # referenced by sandboxed code anyway, so they are simply not offered.
            if isinstance(key, str) and not key.startswith("_"):
                namespace[key] = value
    return namespace


def _refusal_for(exc: NameError) -> SandboxError | None:
    """Turn a NameError on a deliberately missing builtin into a SandboxError."""
    name = getattr(exc, "name", None)
    if name in _FORBIDDEN_BUILTINS:
        return SandboxError(f"forbidden: {name}() is not available in scripts and expressions")
    return None


def evaluate(expression: str, context: Mapping[str, Any], external: Mapping[str, Any] | None = None) -> Any:
    """Evaluate an expression against task data (external values take precedence)."""
    code = _compile(_normalise_expression(expression), "eval")
    try:
        return eval(code, _namespace(context, external))  # noqa: S307 - restricted code, guarded globals
    except NameError as exc:
        refusal = _refusal_for(exc)
        if refusal is None:
            raise
        raise refusal from None


def execute(script: str, context: dict[str, Any], external: Mapping[str, Any] | None = None) -> None:
    """Run a script task: it reads and assigns task data, which is updated only if it succeeds."""
    code = _compile(_normalise_script(script), "exec")
    # A deep copy keeps a script that fails halfway from leaving half-mutated lists behind.
    data = {k: v for k, v in context.items() if isinstance(k, str) and not k.startswith("_")}
    copied = copy.deepcopy(data)
    namespace = _namespace(copied, external)
    injected = dict(namespace)
    try:
        exec(code, namespace)  # noqa: S102 - restricted code, guarded globals
    except NameError as exc:
        refusal = _refusal_for(exc)
        if refusal is None:
            raise
        raise refusal from None

    updates: dict[str, Any] = {}
    for key, value in namespace.items():
        if key.startswith("_"):
            continue
        if key in injected and value is injected[key]:
            # Not rebound: a helper, guard or external value stays out of task data, and
            # task data keeps its original value unless it is a list/dict changed in place.
            if key in copied and value is copied[key] and isinstance(value, list | dict):
                updates[key] = _to_json(value, key, set())
            continue
        updates[key] = _to_json(value, key, set())
    for key in data:
        if key not in namespace:
            del context[key]  # the script deleted it
    context.update(updates)


def _to_json(value: Any, where: str, ancestors: set[int]) -> Any:
    """Return value as JSON-friendly data (sets become sorted lists) or refuse it."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SandboxError(
                f'script left {value} in variable "{where}"; only finite numbers can be stored'
            )
        return value
    if isinstance(value, list | tuple | set | frozenset | dict):
        if id(value) in ancestors:
            raise SandboxError(f'script left a value containing itself in variable "{where}"')
        ancestors = ancestors | {id(value)}
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SandboxError(
                    f'script left a dict with a non-text key {key!r} in variable "{where}"; '
                    "task data keys must be text"
                )
            result[key] = _to_json(item, f"{where}[{key!r}]", ancestors)
        return result
    if isinstance(value, set | frozenset):
        try:
            items = sorted(value)
        except TypeError:
            raise SandboxError(
                f'script left a set of values that cannot be sorted in variable "{where}"; use a list'
            ) from None
        return [_to_json(item, f"{where}[{index}]", ancestors) for index, item in enumerate(items)]
    if isinstance(value, list | tuple):
        return [_to_json(item, f"{where}[{index}]", ancestors) for index, item in enumerate(value)]
    raise SandboxError(
        f'script left {_describe(value)} in variable "{where}"; only JSON values (text, numbers, '
        "true/false, None, lists and dicts) can be stored in task data"
    )


def _describe(value: object) -> str:
    """Name a non-JSON value for an error message, with a hint where one helps."""
    if isinstance(value, types.FunctionType | types.BuiltinFunctionType | types.MethodType):
        return "a function"
    if isinstance(value, type):
        return "a class"
    if isinstance(value, types.ModuleType):
        return "a module"
    if isinstance(value, datetime | date | time):
        return f"a {type(value).__name__} (store it as text with .isoformat())"
    if isinstance(value, timedelta):
        return "a timedelta (store it as a number, e.g. of hours or days)"
    return f"a {type(value).__name__} object"
