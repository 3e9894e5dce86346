"""The structural figures script finds what it counts on small synthetic trees."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tools import structure


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


BLOCK_A = textwrap.dedent("""\
    def first(rows):
        total = 0
        for row in rows:
            if row.kind == "police":
                total += row.weight
            elif row.kind == "health":
                total -= row.weight
        return total
""")

BLOCK_B = textwrap.dedent("""\
    def second(rows):
        total = 0
        for row in rows:
            if row.kind == "police":
                total += row.weight
            elif row.kind == "health":
                total -= row.weight
        return total * 2
""")


def test_commit_calls_counts_every_attribute_commit_under_webapp(tmp_path: Path) -> None:
    _write(tmp_path, {
        "webapp/views.py": "def view(db):\n    db.session.commit()\n    db.session.rollback()\n",
        "webapp/feature/cli.py": "def run(session):\n    session.commit()\n    if True:\n        session.commit()\n",
        "engine/ops.py": "def op(session):\n    session.commit()\n",
    })
    figure = structure.commit_calls(tmp_path)
    assert figure.value == 3
    assert figure.offenders == ["webapp/feature/cli.py:2", "webapp/feature/cli.py:4", "webapp/views.py:2"]
    assert not figure.exceeded


def test_commit_calls_over_the_limit_is_exceeded(tmp_path: Path) -> None:
    _write(tmp_path, {"webapp/views.py": "def v(s):\n" + "    s.commit()\n" * 4})
    assert structure.commit_calls(tmp_path).exceeded


def test_long_modules_lists_only_engine_and_webapp_files_over_the_limit(tmp_path: Path) -> None:
    _write(tmp_path, {
        "engine/long.py": "x = 1\n" * 401,
        "engine/exact.py": "x = 1\n" * 400,
        "webapp/deep/long.py": "x = 1\n" * 500,
        "tools/long.py": "x = 1\n" * 900,
    })
    figure = structure.long_modules(tmp_path)
    assert figure.offenders == ["engine/long.py: 401 lines", "webapp/deep/long.py: 500 lines"]
    assert figure.exceeded


@pytest.mark.parametrize("line", [
    "from engine import spiff",
    "from engine.spiff import start_properties",
    "import engine.spiff",
    "import SpiffWorkflow",
    "from SpiffWorkflow.bpmn import BpmnWorkflow",
    "def f():\n    from engine import spiff\n    return spiff",
])
def test_adapter_imports_outside_engine_are_found(tmp_path: Path, line: str) -> None:
    _write(tmp_path, {"webapp/cases/queries.py": line + "\n"})
    figure = structure.adapter_imports(tmp_path)
    assert figure.value == 1
    assert figure.offenders[0].startswith("webapp/cases/queries.py:")


def test_adapter_imports_inside_engine_and_of_other_engine_modules_are_allowed(tmp_path: Path) -> None:
    _write(tmp_path, {
        "engine/execution.py": "from engine import spiff\nfrom SpiffWorkflow.bpmn import BpmnWorkflow\n",
        "webapp/views.py": "from engine import execution\nfrom engine.spiffy import x\nimport engine.errors\n",
        "webapp/cases/__init__.py": "from . import spiff\n",
        "webapp/cases/spiff.py": "",
    })
    assert structure.adapter_imports(tmp_path).value == 0


def test_relative_imports_resolve_inside_their_package(tmp_path: Path) -> None:
    _write(tmp_path, {
        "engine/spiff.py": "",
        "engine/sub/mod.py": "from .. import spiff\n",
        "webapp/sub/mod.py": "from ..spiff import x\nfrom ... import engine\n",
    })
    assert list(structure.imported_modules(tmp_path, tmp_path / "engine/sub/mod.py")) == [
        ("engine", 1), ("engine.spiff", 1)]
    # webapp.spiff is not the adapter, and `from ... import` climbs out of webapp: neither counts.
    assert structure.adapter_imports(tmp_path).value == 0


def test_import_cycle_between_packages_is_found_with_its_imports(tmp_path: Path) -> None:
    _write(tmp_path, {
        "engine/execution.py": "import forms\n",
        "forms/__init__.py": "def f():\n    from engine.errors import EngineError\n",
        "webapp/views.py": "from engine import execution\nfrom forms import f\n",
    })
    figure = structure.import_cycles(tmp_path)
    assert figure.value == 1
    assert figure.offenders == [
        "cycle: engine ⇄ forms",
        "  engine → forms: engine/execution.py:1",
        "  forms → engine: forms/__init__.py:2",
    ]


def test_import_cycle_through_three_packages_and_relative_imports(tmp_path: Path) -> None:
    _write(tmp_path, {
        "engine/a.py": "from webapp import views\nfrom . import b\n",
        "engine/b.py": "",
        "webapp/views.py": "import tools.x\n",
        "tools/x.py": "from engine.a import thing\n",
    })
    figure = structure.import_cycles(tmp_path)
    assert figure.value == 1
    assert figure.offenders[0] == "cycle: engine ⇄ tools ⇄ webapp"


def test_layered_packages_have_no_cycle(tmp_path: Path) -> None:
    _write(tmp_path, {
        "engine/a.py": "import json\nfrom engine import b\n",
        "engine/b.py": "",
        "webapp/views.py": "import engine.a\nimport forms\n",
        "forms/__init__.py": "",
        "benchmarks/bench.py": "import webapp.views\nimport engine\n",
    })
    assert structure.import_cycles(tmp_path).value == 0


def test_repeated_block_across_files_is_found_with_both_copies(tmp_path: Path) -> None:
    _write(tmp_path, {"webapp/a.py": "import os\n\n" + BLOCK_A, "tools/b.py": "# copy\n" + BLOCK_B})
    [copies] = structure.repeated_blocks(tmp_path)
    assert [str(c) for c in copies] == ["tools/b.py:3-8", "webapp/a.py:4-9"]
    assert structure.repeated_figure(tmp_path).exceeded


def test_repeated_block_ignores_whitespace_comments_and_blank_lines(tmp_path: Path) -> None:
    spaced = BLOCK_B.replace("total = 0", "total  =  0\n\n    # start from nothing").replace("    ", "  ")
    _write(tmp_path, {"engine/a.py": BLOCK_A, "engine/b.py": spaced})
    assert len(structure.repeated_blocks(tmp_path)) == 1


def test_repeated_block_within_one_file_counts(tmp_path: Path) -> None:
    _write(tmp_path, {"forms/__init__.py": BLOCK_A + "\n\n" + BLOCK_B})
    [copies] = structure.repeated_blocks(tmp_path)
    assert [c.path for c in copies] == ["forms/__init__.py", "forms/__init__.py"]


def test_five_repeated_lines_are_not_a_block(tmp_path: Path) -> None:
    five = "\n".join(BLOCK_A.splitlines()[1:6]) + "\n"
    _write(tmp_path, {"engine/a.py": "def a(rows):\n" + five + "            total -= 1\n",
                      "engine/b.py": "def b(rows):\n" + five + "            total -= 2\n"})
    assert structure.repeated_blocks(tmp_path) == []


def test_repeated_imports_docstrings_and_closing_brackets_are_not_blocks(tmp_path: Path) -> None:
    text = '''\
        """A module docstring
        that runs over
        several lines
        and says the same
        in two files
        word for word."""
        from engine import (
            a,
            b,
            c,
            d,
            e,
        )
        VALUES = [
            1,
        ]
    '''
    _write(tmp_path, {"engine/a.py": text, "webapp/b.py": text})
    assert structure.repeated_blocks(tmp_path) == []


def test_repeated_code_outside_production_packages_is_not_counted(tmp_path: Path) -> None:
    _write(tmp_path, {"benchmarks/a.py": BLOCK_A, "benchmarks/b.py": BLOCK_B, "engine/c.py": BLOCK_A})
    assert structure.repeated_blocks(tmp_path) == []


def test_main_exits_1_over_a_limit_and_0_with_no_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, {"engine/a.py": "import webapp\n", "webapp/b.py": "import engine\n"})
    assert structure.main([], root=tmp_path) == 1
    out = capsys.readouterr().out
    assert "import cycles between top-level packages: 1 (limit 0) OVER" in out
    assert "cycle: engine ⇄ webapp" in out
    assert structure.main(["--no-fail"], root=tmp_path) == 0


def test_main_exits_0_on_a_clean_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, {"engine/a.py": "x = 1\n", "webapp/b.py": "import engine.a\n"})
    assert structure.main([], root=tmp_path) == 0
    assert "OVER" not in capsys.readouterr().out
