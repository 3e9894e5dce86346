"""RestrictedPython evaluation of scripts, conditions, timer/deadline expressions and DMN cells.

SpiffWorkflow evaluates with plain eval/exec, which would let whoever uploads a BPMN file
run arbitrary code on the server. Everything here goes through RestrictedPython with a
short whitelist of builtins and our own guards, and security refusals are raised as
SandboxError so the engine can tell "forbidden" apart from an ordinary script bug. The guards
themselves are in `engine.sandbox_guards`; the helpers every expression gets (durations, dates) in
`engine.durations`.
"""

from __future__ import annotations

import ast
import copy
import functools
import math
import re
import textwrap
import types
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, TypeVar

from RestrictedPython.compile import compile_restricted_eval, compile_restricted_exec

from engine import budget
from engine.durations import HELPERS
from engine.errors import SandboxError
from engine.sandbox_guards import FORBIDDEN_ATTRIBUTES, FORBIDDEN_BUILTINS, GUARDS
from engine.sandbox_policy import BoundingTransformer

# ---------------------------------------------------------------------------
# Compilation
# ---------------------------------------------------------------------------

_T = TypeVar("_T")
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
        elif node.attr in FORBIDDEN_ATTRIBUTES:
            self._add(node, f"attribute {node.attr!r} is not allowed")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        """Refuse calls to built-ins the sandbox leaves out (open, eval, getattr...)."""
        if isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_BUILTINS:
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
    result = compiler(tree, filename, policy=BoundingTransformer)
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


def _namespace(
    context: Mapping[str, Any], external: Mapping[str, Any] | None, meter: budget.Meter
) -> dict[str, Any]:
    """Build globals: guards, then helpers, then task data, then external values (last wins)."""
    namespace: dict[str, Any] = dict(GUARDS)
    namespace["_tick_"] = meter.tick
    namespace["_caught_"] = meter.caught
    namespace.update(HELPERS)
    for source in (context, external or {}):
        for key, value in source.items():
            # A data key like "_getattr_" would replace a guard; such names cannot be
            # referenced by sandboxed code anyway, so they are simply not offered.
            if isinstance(key, str) and not key.startswith("_"):
                namespace[key] = value
    return namespace


def _refusal(exc: Exception, meter: budget.Meter) -> Exception:
    """Turn what a sandboxed run raised into the refusal to report, or give the error back."""
    if isinstance(exc, MemoryError):
        return budget.BudgetExceededError(
            f"stopped: the {meter.what} went over its memory budget of {meter.limits.describe_memory()}"
        )
    if isinstance(exc, RecursionError):
        return budget.BudgetExceededError(f"stopped: the {meter.what} called itself too deeply")
    name = getattr(exc, "name", None)
    if isinstance(exc, NameError) and name in FORBIDDEN_BUILTINS:
        return SandboxError(f"forbidden: {name}() is not available in scripts and expressions")
    return exc


def _run(what: str, run: Callable[[budget.Meter], _T]) -> _T:
    """Run sandboxed code as one evaluation under the budget, turning its refusals into SandboxErrors."""
    meter, token = budget.start(what)
    try:
        return run(meter)
    except (NameError, MemoryError, RecursionError) as exc:
        refusal = _refusal(exc, meter)
        if refusal is exc:
            raise
        raise refusal from None
    finally:
        budget.stop(token)


def evaluate(expression: str, context: Mapping[str, Any], external: Mapping[str, Any] | None = None) -> Any:
    """Evaluate an expression against task data (external values take precedence), under the budget."""
    code = _compile(_normalise_expression(expression), "eval")
    return _run("expression", lambda meter: eval(code, _namespace(context, external, meter)))  # noqa: S307 - restricted code, guarded globals


def execute(script: str, context: dict[str, Any], external: Mapping[str, Any] | None = None) -> None:
    """Run a script task under the budget: it reads and assigns task data, updated only if it succeeds."""
    code = _compile(_normalise_script(script), "exec")
    # A deep copy keeps a script that fails halfway from leaving half-mutated lists behind.
    data = {k: v for k, v in context.items() if isinstance(k, str) and not k.startswith("_")}
    copied = copy.deepcopy(data)

    def run(meter: budget.Meter) -> tuple[dict[str, Any], dict[str, Any]]:
        namespace = _namespace(copied, external, meter)
        injected = dict(namespace)
        exec(code, namespace)  # noqa: S102 - restricted code, guarded globals
        return namespace, _updates(namespace, injected, copied, meter)

    namespace, updates = _run("script", run)
    for key in data:
        if key not in namespace:
            del context[key]  # the script deleted it
    context.update(updates)


def _updates(
    namespace: dict[str, Any], injected: dict[str, Any], copied: dict[str, Any], meter: budget.Meter
) -> dict[str, Any]:
    """Return the task data a script left behind, as JSON values (walked under its budget)."""

    updates: dict[str, Any] = {}
    for key, value in namespace.items():
        if key.startswith("_"):
            continue
        if key in injected and value is injected[key]:
            # Not rebound: a helper, guard or external value stays out of task data, and
            # task data keeps its original value unless it is a list/dict changed in place.
            if key in copied and value is copied[key] and isinstance(value, list | dict):
                updates[key] = _to_json(value, key, set(), meter)
            continue
        updates[key] = _to_json(value, key, set(), meter)
    return updates


def _to_json(value: Any, where: str, ancestors: set[int], meter: budget.Meter) -> Any:
    """Return value as JSON-friendly data (sets become sorted lists) or refuse it."""
    # A list repeated inside itself ([[x] * 1000] * 1000...) is small in memory but huge as data.
    meter.charge(8)
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
            result[key] = _to_json(item, f"{where}[{key!r}]", ancestors, meter)
        return result
    if isinstance(value, set | frozenset):
        try:
            items = sorted(value)
        except TypeError:
            raise SandboxError(
                f'script left a set of values that cannot be sorted in variable "{where}"; use a list'
            ) from None
        return [_to_json(item, f"{where}[{index}]", ancestors, meter) for index, item in enumerate(items)]
    if isinstance(value, list | tuple):
        return [_to_json(item, f"{where}[{index}]", ancestors, meter) for index, item in enumerate(value)]
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
