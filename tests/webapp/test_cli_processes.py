"""`flask processes deploy|validate`: all or nothing, every problem on its own line."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from engine.models import Definition
from tests.support.web import AppFactory
from webapp.extensions import db


def definitions(app: Flask) -> list[tuple[str, str, int]]:
    """Return (kind, key, version) of every stored definition."""
    with app.app_context():
        rows = [tuple(r) for r in db.session.execute(select(Definition.kind, Definition.key, Definition.version))]
    return sorted(rows)


def break_form(processes_dir: Path) -> None:
    """Make simple.bpmn name a form that does not exist."""
    path = processes_dir / "simple.bpmn"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('name="form" value="note"', 'name="form" value="missing_form"', 1),
                    encoding="utf-8")


def test_deploy_stores_every_test_process_once_and_a_second_run_changes_nothing(
    app: Flask, runner: FlaskCliRunner
) -> None:
    first = runner.invoke(args=["processes", "deploy", "--comment", "primera"])
    assert first.exit_code == 0, first.output
    assert "created process simple v1 (simple.bpmn)" in first.output
    stored = definitions(app)
    assert ("process", "simple", 1) in stored
    assert ("process", "hearing", 1) in stored
    assert ("decision", "reassessment_period", 1) in stored
    with app.app_context():
        comments = set(db.session.execute(select(Definition.comment)).scalars())
    assert comments == {"primera"}

    second = runner.invoke(args=["processes", "deploy"])
    assert second.exit_code == 0, second.output
    assert f"0 created, {len(stored)} unchanged." in second.output
    assert definitions(app) == stored


def test_a_broken_file_fails_the_deploy_naming_file_element_and_reason_and_stores_nothing(
    make_app: AppFactory, processes_dir: Path
) -> None:
    break_form(processes_dir)
    app = make_app(PROCESSES_DIR=processes_dir)
    result = app.test_cli_runner().invoke(args=["processes", "deploy"])
    assert result.exit_code == 1
    problem_lines = [line for line in result.output.splitlines() if line.startswith("simple.bpmn")]
    assert problem_lines, result.output
    assert "[review]" in problem_lines[0]
    assert "form 'missing_form' does not exist" in problem_lines[0]
    assert "nothing was stored" in result.output
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Definition)).scalar_one() == 0


def test_validate_checks_without_storing(make_app: AppFactory, processes_dir: Path) -> None:
    app = make_app(PROCESSES_DIR=processes_dir)
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["processes", "validate"])
    assert ok.exit_code == 0, ok.output
    assert "file(s) valid" in ok.output
    break_form(processes_dir)
    broken = runner.invoke(args=["processes", "validate"])
    assert broken.exit_code == 1
    assert "missing_form" in broken.output
    assert definitions(app) == []


def test_verify_prints_speed_and_levels_and_exits_1_exactly_when_an_invariant_is_broken(
    make_app: AppFactory,
) -> None:
    root = Path(__file__).resolve().parents[2]
    app = make_app(PROCESSES_DIR=root / "processes", FORMS_DIR=root / "forms")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["processes", "deploy"]).exit_code == 0
    result = runner.invoke(args=["processes", "verify", "--histories", "2", "--days", "15", "--workers", "1"])
    assert "2 historias de 15 días (semilla 1)" in result.output
    assert "historias/segundo" in result.output
    assert "Niveles alcanzados: " in result.output
    broken = "Incumplida «" in result.output
    assert result.exit_code == (1 if broken else 0), result.output
    if broken:
        assert "Secuencia más corta" in result.output
        assert "día 0, 08:00: detección registrada" in result.output


def test_verify_without_a_deployed_protocol_says_so_and_exits_1(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["processes", "verify", "--histories", "1", "--days", "1", "--workers", "1"])
    assert result.exit_code == 1
    assert "No hay ningún protocolo desplegado" in result.output
