"""The compile-time half of bounded evaluation: RestrictedPython's transformer, plus meters and checks.

On top of RestrictedPython's own rewriting, every loop pass, comprehension item and function or
lambda call ticks the evaluation's meter (`_tick_()`), and `**`, `*`, `<<`, `+`, `%`, f-string
values, `*`-unpacking in displays and whatever is compared or hashed (comparison operands, set items,
dict keys) go through the checked stand-ins of `engine.sandbox_limits`.
What can be proved unbounded without running is refused here: `while True` with no way out, and
constant powers, shifts or repetitions whose result is over the budget.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, cast

from RestrictedPython.transformer import RestrictingNodeTransformer

from engine import sandbox_limits
from engine.budget import BudgetExceededError, current_limits

_BINOP_GUARDS: dict[type[ast.operator], str] = {
    ast.Pow: "_pow_", ast.Mult: "_mul_", ast.LShift: "_lshift_", ast.Add: "_add_", ast.Mod: "_mod_",
}  # fmt: skip


def _call(name: str, *args: ast.expr, at: ast.AST) -> ast.Call:
    """Build the call name(*args), placed at the line of `at`."""
    call = ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])
    return ast.fix_missing_locations(ast.copy_location(call, at))


def _deep(node: ast.expr) -> ast.expr:
    """Route a value that will be compared or hashed through the check of its expanded size."""
    return node if isinstance(node, ast.Constant) else _call("_deep_", node, at=node)


def _tick(at: ast.AST) -> ast.Call:
    """Build a call that ticks the meter (it returns True)."""
    return _call("_tick_", at=at)


def _tick_statement(at: ast.AST) -> ast.Expr:
    """Build a statement that ticks the meter."""
    return ast.copy_location(ast.Expr(_tick(at)), at)


@dataclass(frozen=True)
class _Length:
    """A constant text or list known only by its length (it is never built at compile time)."""

    length: int
    item_bytes: int


def _static(node: ast.expr) -> Any:
    """Work out a constant expression's value, or its length for repetitions; None if not constant.

    Raises BudgetExceededError when the constant is over the budget.
    """
    if isinstance(node, ast.Constant) and isinstance(node.value, int | str | bytes):
        value = node.value
        return _Length(len(value), 1) if isinstance(value, str | bytes) else value
    if isinstance(node, ast.List | ast.Tuple) and all(isinstance(e, ast.Constant) for e in node.elts):
        return _Length(len(node.elts), 8)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _static(node.operand)
        if type(operand) is int:
            return -operand if isinstance(node.op, ast.USub) else operand
        return None
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow | ast.Mult | ast.LShift)):
        return None
    left, right = _static(node.left), _static(node.right)
    if type(left) is int and type(right) is int:
        guard = {ast.Pow: sandbox_limits.pow_, ast.Mult: sandbox_limits.mul_, ast.LShift: sandbox_limits.lshift_}
        try:
            return guard[type(node.op)](left, right)
        except (ArithmeticError, ValueError):
            return None
    if isinstance(node.op, ast.Mult) and {type(left), type(right)} == {_Length, int}:
        text, times = (left, right) if isinstance(left, _Length) else (right, left)
        result = _Length(text.length * max(times, 0), text.item_bytes)
        if result.length * result.item_bytes > current_limits().memory_bytes:
            raise BudgetExceededError(
                f"the repetition would need about {result.length * result.item_bytes / 2**20:,.0f} MB, "
                f"over the memory budget of {current_limits().describe_memory()}"
            )
        return result
    return None


def _exits(body: list[ast.stmt]) -> bool:
    """Say whether a loop body can leave its loop (break, return or raise outside inner loops)."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Break | ast.Return | ast.Raise):
            return True
        if isinstance(node, ast.FunctionDef | ast.Lambda):
            continue
        for child in ast.iter_child_nodes(node):
            # A break inside an inner loop leaves only that loop; a return or raise leaves ours too.
            if isinstance(node, ast.For | ast.While) and isinstance(child, ast.Break):
                continue
            stack.append(child)
    return False


class BoundingTransformer(RestrictingNodeTransformer):
    """RestrictedPython's transformer, with meter ticks and checked operators."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        """Route **, *, <<, + and % through their checked stand-ins (refusing huge constants now)."""
        try:
            _static(node)
        except BudgetExceededError as exc:
            self.error(node, f"{str(exc).removeprefix('stopped: ')} (an expression that never fits)")
        node = self.node_contents_visit(node)
        name = _BINOP_GUARDS.get(type(node.op))
        if name is None:
            return node
        return _call(name, node.left, node.right, at=node)

    def visit_While(self, node: ast.While) -> ast.AST:
        """Tick on every pass; refuse `while True` loops that nothing can leave."""
        if isinstance(node.test, ast.Constant) and node.test.value and not _exits(node.body):
            self.error(node, "a `while True` loop without break, return or raise never ends")
        node = self.node_contents_visit(node)
        node.body.insert(0, _tick_statement(node))
        return node

    def visit_For(self, node: ast.For) -> ast.AST:
        """Tick on every pass of a for loop."""
        node = cast(ast.For, super().visit_For(node))
        node.body.insert(0, _tick_statement(node))
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        """Tick on every item of a comprehension or generator expression."""
        node = cast(ast.comprehension, super().visit_comprehension(node))
        node.ifs.insert(0, _tick(node.iter))
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        """Tick on every call of a function defined in the script."""
        node = cast(ast.FunctionDef, super().visit_FunctionDef(node))
        node.body.insert(0, _tick_statement(node))
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        """Tick on every call of a lambda (`_tick_() and body` is body)."""
        node = cast(ast.Lambda, super().visit_Lambda(node))
        node.body = ast.copy_location(ast.BoolOp(op=ast.And(), values=[_tick(node.body), node.body]), node.body)
        return node

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        """Check the size of each value an f-string prints, and refuse huge or computed widths."""
        spec = node.format_spec
        if isinstance(spec, ast.JoinedStr):
            if not all(isinstance(part, ast.Constant) for part in spec.values):
                self.error(node, "computed format specs are not allowed in f-strings")
            else:
                text = "".join(str(cast(ast.Constant, part).value) for part in spec.values)
                problem = sandbox_limits.format_spec(text)
                if problem is not None:
                    self.error(node, problem)
        node = self.node_contents_visit(node)
        node.value = _call("_fmt_", node.value, at=node.value)
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        """Check the operands of ==, <, in...: comparing nested lists walks them in one C call."""
        node = self.node_contents_visit(node)
        node.left = _deep(node.left)
        node.comparators = [_deep(c) for c in node.comparators]
        return node

    def visit_Set(self, node: ast.Set) -> ast.AST:
        """Check the items of a set display, which are hashed."""
        node = self.node_contents_visit(node)
        node.elts = [_deep(e) for e in node.elts]
        return node

    def visit_Dict(self, node: ast.Dict) -> ast.AST:
        """Check the keys of a dict display, which are hashed."""
        node = self.node_contents_visit(node)
        node.keys = [None if k is None else _deep(k) for k in node.keys]
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        """Check the key of an item assignment, which is hashed (reads go through `_getitem_`)."""
        visited = super().visit_Subscript(node)
        if isinstance(visited, ast.Subscript) and not isinstance(visited.slice, ast.Slice):
            visited.slice = _deep(visited.slice)
        return cast(ast.AST, visited)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        """Re-raise a budget refusal in every `except` block, so that no script can catch it and go on."""
        visited = cast(ast.ExceptHandler, super().visit_ExceptHandler(node))
        visited.body.insert(0, ast.copy_location(ast.Expr(_call("_caught_", at=node)), node))
        return visited

    def visit_Starred(self, node: ast.Starred) -> ast.AST:
        """Check the size of what `*x` unpacks into a list, tuple or set display."""
        node = self.node_contents_visit(node)
        if isinstance(node.ctx, ast.Load):
            node.value = _call("_sized_", node.value, at=node.value)
        return node


GUARD_NAMES: dict[str, object] = {
    "_pow_": sandbox_limits.pow_, "_mul_": sandbox_limits.mul_, "_lshift_": sandbox_limits.lshift_,
    "_add_": sandbox_limits.add_, "_mod_": sandbox_limits.mod_, "_fmt_": sandbox_limits.rendered,
    "_sized_": sandbox_limits.sized_, "_deep_": sandbox_limits.deep_,
}  # fmt: skip
