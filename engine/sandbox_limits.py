"""Checked stand-ins for the operations that can build a huge value from small inputs in one C call.

Each estimates the size of its result BEFORE computing it and refuses (BudgetExceededError) what
would go over the running evaluation's budget (see `engine.budget`): `**`, `*`, `<<`, `+`, `%`,
f-string values, slices, the builtins that consume a whole iterable, and the string/container
methods that grow. `engine.sandbox_policy` routes sandboxed code through them.
"""

from __future__ import annotations

import builtins
import operator
import re
import types
from collections.abc import Callable, Mapping
from typing import Any

from engine.budget import MAX_FORMAT_WIDTH, MAX_INT_BITS, BudgetExceededError, meter

_SEQUENCES = (str, bytes, list, tuple)
MAX_PRINTED_DIGITS = 4_300
_MAX_PRINTED_BITS = int(MAX_PRINTED_DIGITS * 3.3219)


def _refuse_number(bits: int) -> BudgetExceededError:
    """Refuse a number that would be too long."""
    digits = int(bits * 0.30103)
    return BudgetExceededError(
        f"stopped: the result would be a number of about {digits:,} digits; "
        f"the sandbox allows {int(MAX_INT_BITS * 0.30103):,}"
    )


def _item_bytes(value: object) -> int:
    """Bytes per item of a sequence: 1 for bytes and ASCII text, 4 for other text, 8 per reference."""
    if isinstance(value, str):
        return 1 if value.isascii() else 4
    return 1 if isinstance(value, bytes) else 8


def _count(value: object, what: str) -> int:
    """Return how many items value will give, refusing more than the budget allows."""
    try:
        n = operator.length_hint(value, 0)
    except OverflowError:
        n = -1
    limit = meter().limits.max_items
    if n < 0 or n > limit:
        raise BudgetExceededError(f"stopped: {what} of more than {limit:,} items is over the memory budget")
    return n


def _take(value: Any, what: str) -> Any:
    """Check and charge an iterable about to be consumed whole; give it back."""
    meter().charge(8 * _count(value, what))
    return value


def _charge_sequence(length: int, sample: object) -> None:
    """Charge a sequence of `length` items like `sample` (refusing it if it is over the budget)."""
    meter().charge(max(length, 0) * _item_bytes(sample))


# --- Operators -----------------------------------------------------------------------------------


def pow_(base: Any, exponent: Any) -> Any:
    """Compute base ** exponent unless the result would be a huge number."""
    if type(base) is int and type(exponent) is int and exponent > 1 and abs(base) > 1:
        bits = (base.bit_length() - 1) * exponent
        if bits > MAX_INT_BITS:
            raise _refuse_number(bits)
    return base**exponent


def mul_(left: Any, right: Any) -> Any:
    """Compute left * right unless it would be a huge number, text or list."""
    _check_mul(left, right)
    return left * right


def _check_mul(left: Any, right: Any) -> None:
    """Refuse or charge the product of left and right before it is computed."""
    if isinstance(left, int) and isinstance(right, int):
        bits = left.bit_length() + right.bit_length()
        if bits > MAX_INT_BITS:
            raise _refuse_number(bits)
    elif isinstance(left, _SEQUENCES) and isinstance(right, int):
        _charge_sequence(len(left) * right, left)
    elif isinstance(right, _SEQUENCES) and isinstance(left, int):
        _charge_sequence(len(right) * left, right)


def lshift_(left: Any, right: Any) -> Any:
    """Compute left << right unless the result would be a huge number."""
    if isinstance(left, int) and isinstance(right, int) and right > 0 and left:
        bits = left.bit_length() + right
        if bits > MAX_INT_BITS:
            raise _refuse_number(bits)
    return left << right


def add_(left: Any, right: Any) -> Any:
    """Compute left + right, charging the copy when both are text or lists."""
    if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        _charge_sequence(len(left) + len(right), left)
    return left + right


def iadd_(left: Any, right: Any) -> Any:
    """Apply left += right (a list takes any iterable), checking the size first."""
    if isinstance(left, list):
        _take(right, "+=")
    elif isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        _charge_sequence(len(left) + len(right), left)
    left += right
    return left


def imul_(left: Any, right: Any) -> Any:
    """Apply left *= right, checked as left * right is."""
    _check_mul(left, right)
    left *= right
    return left


_CONVERSION = re.compile(rb"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def mod_(left: Any, right: Any) -> Any:
    """Compute left % right; for text formatting, check widths and the size of what is rendered."""
    if isinstance(left, str | bytes):
        pattern = left.encode("utf-8", "replace") if isinstance(left, str) else left
        for match in _CONVERSION.finditer(pattern):
            for group in match.groups():
                if group == b"*" or (group and int(group) > MAX_FORMAT_WIDTH):
                    raise BudgetExceededError(
                        f"stopped: format widths must be written out and at most {MAX_FORMAT_WIDTH:,}"
                    )
        rendered(right)
        _charge_sequence(len(left), left)
    return left % right


_FORMAT_SPEC = re.compile(r"\d+")


def format_spec(spec: str) -> str | None:
    """Say what is wrong with an f-string format spec, or None if it is fine (checked at compile time)."""
    if any(int(n) > MAX_FORMAT_WIDTH for n in _FORMAT_SPEC.findall(spec)):
        return f"format widths and precisions must be at most {MAX_FORMAT_WIDTH:,}"
    return None


def rendered(value: Any) -> Any:
    """Check that printing value (str(), %, an f-string) stays within the budget; give it back."""
    current = meter()
    # A list repeated inside itself ([[[0] * 1000] * 1000] * 1000) is small in memory but prints
    # a billion items, so every item printed counts, however often it is shared.
    limit, items, total, stack = current.limits.max_items, 0, 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            # Printing an integer takes time quadratic in its length: Python's own guard (which a
            # PYTHONINTMAXSTRDIGITS=0 would lift) stops at 4,300 digits, and so do we.
            if item.bit_length() > _MAX_PRINTED_BITS:
                raise BudgetExceededError(
                    f"stopped: printing a number of more than {MAX_PRINTED_DIGITS:,} digits is not allowed"
                )
            total += item.bit_length() // 3 + 2
        elif isinstance(item, dict | list | tuple | set | frozenset):
            items += len(item)
            if items > limit:
                raise BudgetExceededError(f"stopped: printing more than {limit:,} items is over the memory budget")
            stack.extend(item.items() if isinstance(item, dict) else item)
            total += 2 * len(item)
        else:
            total += 32
    current.charge(total)
    return value


_PLAIN = frozenset({int, float, str, bool, bytes, type(None)})
_CONTAINERS = (list, tuple, dict, set, frozenset)


def deep_(value: Any) -> Any:
    """Check a value about to be compared or hashed, which walks it all in one C call; give it back.

    `[[[0] * 1000] * 1000] * 1000` is small in memory, but comparing or hashing it visits a
    billion items: every item counts, however often it is shared.
    """
    if type(value) in _PLAIN or not isinstance(value, _CONTAINERS):
        return value
    limit, items, stack = meter().limits.max_items, 0, [value]
    while stack:
        item = stack.pop()
        items += len(item)
        if items > limit:
            raise BudgetExceededError(
                f"stopped: comparing or hashing more than {limit:,} items (each repetition counted) "
                "is over the budget"
            )
        values = item.values() if isinstance(item, dict) else item
        stack.extend(v for v in values if isinstance(v, _CONTAINERS))
        if isinstance(item, dict):
            stack.extend(k for k in item if isinstance(k, _CONTAINERS))
    return value


def getitem_(obj: Any, key: Any) -> Any:
    """Read an item; a slice of text or a list is a copy and is charged as one."""
    if type(key) is slice and isinstance(obj, _SEQUENCES):
        _charge_sequence(len(range(*key.indices(len(obj)))), obj)
    elif type(key) is tuple:
        deep_(key)
    return obj[key]


def sized_(value: Any) -> Any:
    """Check an iterable unpacked with * (in a list display or a call)."""
    return _take(value, "unpacking")


# --- Builtins ------------------------------------------------------------------------------------


def _consuming(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    """Wrap a builtin that consumes its iterable arguments whole."""

    compares = name in _COMPARING

    def bounded(*args: Any, **kwargs: Any) -> Any:
        for arg in args:
            if not isinstance(arg, int | float | str) or name in ("list", "tuple", "set", "sorted"):
                _take(arg, f"{name}()")
                if compares:
                    deep_(arg)
        if name == "sum" and len(args) > 1 and isinstance(args[1], list | tuple):
            raise BudgetExceededError("stopped: sum() of lists takes time quadratic in their number; "
                                      "use a comprehension")
        return function(*args, **kwargs)

    bounded.__name__ = name
    bounded.__doc__ = function.__doc__
    return bounded


def _str(*args: Any, **kwargs: Any) -> str:
    """Text of a value, checked for size first."""
    if args:
        rendered(args[0])
    return str(*args, **kwargs)


def _round(number: Any, ndigits: Any = None) -> Any:
    """round(), refusing digit counts far beyond any number's length (round(5, -10**9) computes 10**10**9)."""
    if isinstance(ndigits, int) and abs(ndigits) > MAX_PRINTED_DIGITS:
        raise BudgetExceededError(f"stopped: round() to more than {MAX_PRINTED_DIGITS:,} digits is not allowed")
    return round(number, ndigits)


_COMPARING = frozenset({"dict", "max", "min", "set", "sorted"})  # they compare or hash the items
_CONSUMERS = ("all", "any", "dict", "enumerate", "filter", "list", "map", "max", "min", "reversed", "set",
              "sorted", "sum", "tuple", "zip")  # fmt: skip
BOUNDED_BUILTINS: Mapping[str, Callable[..., Any]] = {
    name: _consuming(getattr(builtins, name), name) for name in _CONSUMERS
} | {"str": _str, "round": _round}
_REAL_TYPES: Mapping[object, type] = {
    BOUNDED_BUILTINS[name]: getattr(builtins, name) for name in ("dict", "list", "set", "tuple", "str")
}


def real_type(value: Any) -> Any:
    """Map a bounded stand-in (the sandbox's list, str...) back to the type it stands for."""
    return _REAL_TYPES.get(value, value) if type(value) is types.FunctionType else value


def isinstance_(value: object, kind: Any) -> bool:
    """isinstance() that knows the bounded list, dict, set, tuple and str stand for the real types."""
    if type(kind) is tuple:
        return isinstance(value, tuple(real_type(k) for k in kind))
    return isinstance(value, real_type(kind))


# --- Methods -------------------------------------------------------------------------------------


def _growing_text_method(obj: str | bytes, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a text method whose result can be much longer than the text."""

    def bounded(*args: Any, **kwargs: Any) -> Any:
        length = len(obj)
        if name in ("ljust", "rjust", "center", "zfill") and args and isinstance(args[0], int):
            length = max(length, args[0])
        elif name == "expandtabs":
            tab = args[0] if args and isinstance(args[0], int) else int(kwargs.get("tabsize", 8))
            length += (obj.count("\t") if isinstance(obj, str) else obj.count(b"\t")) * max(tab, 0)
        elif name == "replace" and len(args) >= 2:
            old, new = args[0], args[1]
            if len(new) > len(old):
                length += (obj.count(old) if old else len(obj) + 1) * (len(new) - len(old))
        elif name == "join" and args:
            items = list(_take(args[0], "join()"))
            length = sum(len(item) for item in items if isinstance(item, str | bytes)) + len(obj) * len(items)
            args = (items, *args[1:])
        elif name in ("split", "rsplit", "splitlines"):
            separator = args[0] if args and name != "splitlines" else None
            pieces = obj.count(separator) + 1 if separator else len(obj) // 2 + 1
            length = 8 * _count(range(pieces), f"{name}()") + len(obj)
        elif name == "translate":
            table = args[0] if args else {}
            widest = max((len(v) for v in table.values() if isinstance(v, str | bytes)), default=1) \
                if isinstance(table, dict) else 1
            length *= max(widest, 1)
        _charge_sequence(length, obj)
        return method(*args, **kwargs)

    return bounded


def _consuming_method(obj: object, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a container method that consumes its arguments (extend, update...) or compares items (index...)."""

    def bounded(*args: Any, **kwargs: Any) -> Any:
        if name in _COMPARING_METHODS:
            deep_(obj)
        for arg in args:
            if not isinstance(arg, int | float):
                _take(arg, f"{name}()")
                deep_(arg)
        return method(*args, **kwargs)

    return bounded


def _to_bytes(number: int, method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap int.to_bytes, whose length argument is the size of the result."""

    def bounded(length: int = 1, *args: Any, **kwargs: Any) -> Any:
        meter().charge(int(length))
        return method(length, *args, **kwargs)

    return bounded


_TEXT_GROWERS = frozenset({"center", "expandtabs", "join", "ljust", "replace", "rjust", "rsplit", "split",
                           "splitlines", "translate", "zfill"})  # fmt: skip
# Text methods that answer without building a text (or only a small one).
_TEXT_QUERIES = frozenset({"count", "endswith", "find", "index", "isalnum", "isalpha", "isascii", "isdecimal",
                           "isdigit", "isidentifier", "islower", "isnumeric", "isprintable", "isspace", "istitle",
                           "isupper", "rfind", "rindex", "startswith"})  # fmt: skip
_COMPARING_METHODS = frozenset({"count", "index", "remove", "sort"})
_CONSUMING_METHODS = frozenset({"difference", "difference_update", "extend", "fromkeys", "intersection",
                                "intersection_update", "isdisjoint", "issubset", "issuperset",
                                "symmetric_difference", "symmetric_difference_update", "union", "update"})  # fmt: skip


def bounded_method(obj: object, name: str, attribute: Any) -> Any:
    """Give back the attribute, or a checked stand-in for a method that can build a huge value."""
    if isinstance(obj, str | bytes) and name not in _TEXT_QUERIES:
        # Every other text method builds a new text at least as long (upper, strip, encode...):
        # a few of them on a large text in a short loop would otherwise go unmeasured.
        return _growing_text_method(obj, name, attribute)
    if name == "copy" and isinstance(obj, _CONTAINERS):
        meter().charge(8 * len(obj))
        return attribute
    if (name in _CONSUMING_METHODS or name in _COMPARING_METHODS) and isinstance(obj, (*_CONTAINERS, type)):
        return _consuming_method(obj, name, attribute)
    if name == "to_bytes" and isinstance(obj, int):
        return _to_bytes(obj, attribute)
    return attribute


def apply_(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call with *args/**kwargs (RestrictedPython routes those calls here), checking their size."""
    _count(args, "a call")
    _count(kwargs, "a call")
    return function(*args, **kwargs)


