"""Print the structural figures of the code base and check each against its limit.

    python -m tools.structure              # print the figures; exit 1 if any is over its limit
    python -m tools.structure --no-fail    # print them only

The figures (issue 14, "Done when"):

- `commit()` calls under `webapp/`: the request and each CLI command own the transaction, so only
  the few places that own one may call `.commit()` (any attribute call named `commit`).
- modules over 400 lines in `engine/` or `webapp/` (physical lines, as `wc -l` counts them).
- imports of the SpiffWorkflow adapter `engine.spiff`, or of `SpiffWorkflow` itself, outside `engine/`.
- import cycles between the top-level packages (an edge is any `import` of another package of ours,
  wherever it stands: module level, inside a function or under `if TYPE_CHECKING:`).
- blocks of six or more lines repeated in production code (`engine/`, `webapp/`, `forms/`, `tools/`).
  Lines are compared after collapsing whitespace; blank lines, comments, docstrings, import statements
  and lines made only of closing brackets are left out before comparing, so a block is six lines of
  code that says something. Overlapping copies inside one file do not count.

Every figure is read with `ast` from the source, never by importing it.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "forms", "webapp", "tools", "benchmarks")
PRODUCTION = ("engine", "webapp", "forms", "tools")
LINE_LIMITED = ("engine", "webapp")
# Production code other than the engine; benchmarks/ may import SpiffWorkflow bare (the floor they compare to).
ADAPTER_FREE = tuple(p for p in PRODUCTION if p != "engine")
MAX_COMMITS = 3
MAX_LINES = 400
BLOCK = 6
_BRACKETS_ONLY = re.compile(r"^[)\]}>,;:\s]*$")


@dataclass
class Figure:
    """One measured figure, its limit and the places that make it up."""

    name: str
    value: int
    limit: int
    offenders: list[str] = field(default_factory=list)

    @property
    def exceeded(self) -> bool:
        """Whether the figure is over its limit."""
        return self.value > self.limit


def python_files(root: Path, packages: Iterable[str]) -> Iterator[Path]:
    """Yield every .py file of the given top-level packages, sorted, skipping caches."""
    for package in packages:
        folder = root / package
        if folder.is_dir():
            yield from sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(root: Path, path: Path) -> Iterator[tuple[str, int]]:
    """Yield the absolute name of each module a file imports, with its line (relative imports resolved)."""
    module = _module_name(root, path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in sorted(ast.walk(_parse(path)), key=lambda n: getattr(n, "lineno", 0)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                if node.level > len(parts):
                    continue  # climbs out of the top-level package: it cannot name one of ours
                prefix = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            # `from engine import spiff` imports the module engine.spiff: name both candidates.
            yield target, node.lineno
            for alias in node.names:
                yield f"{target}.{alias.name}", node.lineno


def commit_calls(root: Path, package: str = "webapp") -> Figure:
    """Count the `.commit()` calls under a package."""
    offenders = []
    for path in python_files(root, [package]):
        lines = sorted(node.lineno for node in ast.walk(_parse(path))
                       if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                       and node.func.attr == "commit")
        offenders += [f"{_relative(root, path)}:{line}" for line in lines]
    return Figure(f"commit() calls under {package}/", len(offenders), MAX_COMMITS, offenders)


def long_modules(root: Path, packages: Sequence[str] = LINE_LIMITED, limit: int = MAX_LINES) -> Figure:
    """List the modules longer than the line limit."""
    offenders = []
    for path in python_files(root, packages):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            offenders.append(f"{_relative(root, path)}: {lines} lines")
    where = " or ".join(f"{p}/" for p in packages)
    return Figure(f"modules over {limit} lines in {where}", len(offenders), 0, offenders)


def adapter_imports(root: Path, packages: Sequence[str] = ADAPTER_FREE) -> Figure:
    """List the imports of engine.spiff or SpiffWorkflow outside engine/."""
    offenders = []
    for path in python_files(root, packages):
        seen: set[int] = set()
        for name, line in imported_modules(root, path):
            forbidden = name.split(".")[0] == "SpiffWorkflow" or (name + ".").startswith("engine.spiff.")
            if forbidden and line not in seen:
                seen.add(line)
                offenders.append(f"{_relative(root, path)}:{line}: {name}")
    return Figure("imports of engine.spiff or SpiffWorkflow outside engine/", len(offenders), 0, offenders)


def package_graph(root: Path, packages: Sequence[str] = PACKAGES) -> dict[tuple[str, str], list[str]]:
    """Map each edge (importer, imported) between top-level packages to the imports that make it."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in python_files(root, packages):
        source = path.relative_to(root).parts[0]
        lines: set[tuple[str, int]] = set()
        for name, line in imported_modules(root, path):
            target = name.split(".")[0]
            if target in packages and target != source and (target, line) not in lines:
                lines.add((target, line))
                edges[source, target].append(f"{_relative(root, path)}:{line}")
    return dict(edges)


def _cycles(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Return the strongly connected components of more than one node (Tarjan), each sorted."""
    successors: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        successors[source].append(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in successors[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in nodes:
        if node not in index:
            visit(node)
    return sorted(components)


def import_cycles(root: Path, packages: Sequence[str] = PACKAGES) -> Figure:
    """List the cycles between top-level packages, each with the imports that close it."""
    edges = package_graph(root, packages)
    offenders = []
    for component in _cycles(packages, edges):
        offenders.append("cycle: " + " ⇄ ".join(component))
        for (source, target), places in sorted(edges.items()):
            if source in component and target in component:
                offenders.append(f"  {source} → {target}: {', '.join(places)}")
    cycles = sum(1 for line in offenders if line.startswith("cycle"))
    return Figure("import cycles between top-level packages", cycles, 0, offenders)


def _skipped_lines(tree: ast.Module) -> set[int]:
    """Return the line numbers of docstrings and import statements."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            skipped.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                skipped.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return skipped


def code_lines(path: Path) -> list[tuple[int, str]]:
    """Return (line number, normalised text) of the lines of a file that count for repetition."""
    text = path.read_text(encoding="utf-8")
    skipped = _skipped_lines(ast.parse(text, filename=str(path)))
    kept = []
    for number, line in enumerate(text.splitlines(), start=1):
        normal = " ".join(line.split())
        if number in skipped or not normal or normal.startswith("#") or _BRACKETS_ONLY.match(normal):
            continue
        kept.append((number, normal))
    return kept


@dataclass(frozen=True)
class Copy:
    """One place where a repeated block stands."""

    path: str
    first: int
    last: int

    def __str__(self) -> str:
        return f"{self.path}:{self.first}-{self.last}"


def repeated_blocks(root: Path, packages: Sequence[str] = PRODUCTION, size: int = BLOCK) -> list[list[Copy]]:
    """Find blocks of `size` or more counted lines that stand in two places or more.

    Windows of `size` counted lines are hashed; runs of consecutive repeated windows merge into one
    block per file. Blocks are grouped by the window they start with; each group lists its copies.
    """
    files = {_relative(root, path): code_lines(path) for path in python_files(root, packages)}
    places: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for name, lines in files.items():
        for start in range(len(lines) - size + 1):
            window = "\n".join(text for _, text in lines[start:start + size])
            places[hashlib.sha1(window.encode(), usedforsecurity=False).hexdigest()].append((name, start))

    def distinct(found: list[tuple[str, int]]) -> list[tuple[str, int]]:
        kept: list[tuple[str, int]] = []
        for name, start in found:
            if not any(n == name and abs(s - start) < size for n, s in kept):
                kept.append((name, start))
        return kept

    repeated: dict[tuple[str, int], str] = {}
    for key, found in places.items():
        found = distinct(found)
        if len(found) > 1:
            for place in found:
                repeated[place] = key
    groups: dict[str, list[Copy]] = defaultdict(list)
    for name, lines in files.items():
        start = 0
        while start < len(lines):
            if (name, start) not in repeated:
                start += 1
                continue
            end = start
            while (name, end + 1) in repeated:
                end += 1
            groups[repeated[name, start]].append(Copy(name, lines[start][0], lines[end + size - 1][0]))
            start = end + 1
    blocks = [sorted(copies, key=lambda c: (c.path, c.first)) for copies in groups.values() if len(copies) > 1]
    return sorted(blocks, key=lambda copies: (copies[0].path, copies[0].first))


def repeated_figure(root: Path, packages: Sequence[str] = PRODUCTION) -> Figure:
    """Count the repeated blocks of production code, listing each with its copies."""
    blocks = repeated_blocks(root, packages)
    offenders = [" = ".join(str(copy) for copy in copies) for copies in blocks]
    where = ", ".join(f"{p}/" for p in packages)
    return Figure(f"blocks of {BLOCK}+ lines repeated in {where}", len(blocks), 0, offenders)


def figures(root: Path = ROOT) -> list[Figure]:
    """Measure every figure of the tree at `root`."""
    return [commit_calls(root), long_modules(root), adapter_imports(root), import_cycles(root),
            repeated_figure(root)]


def report(measured: Sequence[Figure]) -> str:
    """Render the figures, each with its limit and its offenders."""
    lines = []
    for figure in measured:
        mark = "OVER" if figure.exceeded else "ok"
        lines.append(f"{figure.name}: {figure.value} (limit {figure.limit}) {mark}")
        lines.extend(f"    {offender}" for offender in figure.offenders)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, root: Path = ROOT) -> int:
    """Print the figures; return 1 if any is over its limit, unless --no-fail."""
    parser = argparse.ArgumentParser(prog="python -m tools.structure", description=__doc__.split("\n")[0])
    parser.add_argument("--no-fail", action="store_true", help="print the figures, always exit 0")
    args = parser.parse_args(argv)
    measured = figures(root)
    print(report(measured))
    return 0 if args.no_fail or not any(f.exceeded for f in measured) else 1


if __name__ == "__main__":
    sys.exit(main())
