"""What sandboxed code may touch: the whitelisted builtins and the guards RestrictedPython calls.

RestrictedPython rewrites attribute reads, item reads, iteration, writes, augmented assignment and
*args/**kwargs calls into calls to the `_..._` names of `GUARDS`; these decide what is allowed.
Names and attributes refused here are also refused at compile time by `engine.sandbox`, with a
clearer message.
"""

from __future__ import annotations

import operator
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from RestrictedPython.Guards import (
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
    safer_getattr_raise,
)
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from engine import sandbox_limits
from engine.errors import SandboxError
from engine.sandbox_policy import GUARD_NAMES

_SAFE_BUILTIN_NAMES = (
    "None", "True", "False", "abs", "bool", "divmod", "float", "int", "isinstance", "len",
    "range", "round", "str",
    "ArithmeticError", "Exception", "IndexError", "KeyError", "LookupError", "TypeError",
    "ValueError", "ZeroDivisionError",
)  # fmt: skip
# RestrictedPython leaves out the builtins that iterate in C (all, any, dict, list, map, sorted,
# sum...) because they bypass `_getiter_`. Our `_getiter_` guards nothing (there is no per-object
# access control here), so there is nothing for them to bypass; what they could do is consume a
# huge range in one C call, so they come as the size-checked stand-ins of `engine.sandbox_limits`
# (with an isinstance() that knows them), as does str().
_BUILTINS: Mapping[str, object] = types.MappingProxyType(
    {name: safe_builtins[name] for name in _SAFE_BUILTIN_NAMES}
    | dict(sandbox_limits.BOUNDED_BUILTINS)
    | {"isinstance": sandbox_limits.isinstance_}
)

# Names people may reach for that exist in Python but not here: a NameError on them
# is a refusal, and saying so beats "name 'open' is not defined".
FORBIDDEN_BUILTINS = frozenset(
    {
        "open", "eval", "exec", "compile", "globals", "locals", "vars", "type", "getattr",
        "setattr", "delattr", "hasattr", "dir", "input", "breakpoint", "help", "memoryview",
        "object", "super", "classmethod", "staticmethod", "property", "exit", "quit",
    }
)  # fmt: skip

# `mro()` hands out `object`; harmless without "_" attributes, but there is no use for it.
FORBIDDEN_ATTRIBUTES = INSPECT_ATTRIBUTES | {"mro"}
_STR_FORMAT_METHODS = frozenset({"format", "format_map"})

# Typed aliases: RestrictedPython's guard functions carry no annotations.
_safer_getattr_raise: Callable[[object, str], Any] = safer_getattr_raise
_guarded_unpack_sequence: Callable[..., Any] = guarded_unpack_sequence
_guarded_iter_unpack_sequence: Callable[..., Any] = guarded_iter_unpack_sequence


def _guarded_getattr(obj: object, name: str) -> Any:
    """Read an attribute unless it leads out of the sandbox."""
    if not isinstance(name, str):
        raise TypeError("attribute name must be text")
    obj = sandbox_limits.real_type(obj)  # dict.fromkeys, str.join: the bounded builtins stand for types
    if name.startswith("_"):
        raise SandboxError(f'forbidden: attribute names starting with "_" are not allowed ({name!r})')
    if name in FORBIDDEN_ATTRIBUTES:
        raise SandboxError(f"forbidden: attribute {name!r} is not allowed")
    # str.format can walk attributes by name ("{0.__class__}"), escaping the guard above.
    if name in _STR_FORMAT_METHODS and (
        isinstance(obj, str) or (isinstance(obj, type) and issubclass(obj, str))
    ):
        raise SandboxError("forbidden: str.format() is not allowed (use an f-string or the % operator)")
    try:
        return sandbox_limits.bounded_method(obj, name, _safer_getattr_raise(obj, name))
    except NotImplementedError as exc:
        # RestrictedPython's own refusals (string.Formatter and friends) are security refusals.
        raise SandboxError(f"forbidden: {exc}") from None


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


# The operators that can build a huge value go through the same checks as x = x + y would.
_INPLACE_OPERATORS: Mapping[str, Callable[[Any, Any], Any]] = {
    "+=": sandbox_limits.iadd_, "-=": operator.isub, "*=": sandbox_limits.imul_, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": sandbox_limits.mod_, "**=": sandbox_limits.pow_,
    "<<=": sandbox_limits.lshift_, ">>=": operator.irshift, "&=": operator.iand,
    "|=": operator.ior, "^=": operator.ixor,
}  # fmt: skip


def _inplace_var(op: str, target: Any, value: Any) -> Any:
    """Apply an augmented assignment (x += y), checked as x = x + y is."""
    try:
        function = _INPLACE_OPERATORS[op]
    except KeyError:
        raise SandboxError(f"forbidden: operator {op} is not allowed") from None
    return function(target, value)


GUARDS: Mapping[str, object] = types.MappingProxyType(
    {
        "__builtins__": _BUILTINS,
        "_getattr_": _guarded_getattr,
        "_getitem_": sandbox_limits.getitem_,
        "_getiter_": _guarded_getiter,
        "_iter_unpack_sequence_": _guarded_iter_unpack_sequence,
        "_unpack_sequence_": _guarded_unpack_sequence,
        "_write_": _guarded_write,
        "_inplacevar_": _inplace_var,
        "_apply_": sandbox_limits.apply_,
    }
    | GUARD_NAMES
)
