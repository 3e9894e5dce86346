"""`flask demo seed` and `flask deadlines run`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from engine.actor import Actor
from engine.execution import start_case
from engine.models import Agency, Case, CaseParty, DueTimer, OpenTask, Territory, UserAccount
from engine.models.agency import DEFAULT_KINDS
from tests.support.web import AppFactory
from webapp.auth.passwords import verify_password
from webapp.demo.seed import DEMO_PASSWORD
from webapp.extensions import db

ROOT = Path(__file__).resolve().parents[2]


def count(app: Flask, model: type) -> int:
    """Count the rows of a table."""
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def test_demo_seed_creates_territories_agencies_and_users_once(app: Flask, runner: FlaskCliRunner) -> None:
    first = runner.invoke(args=["demo", "seed"])
    assert first.exit_code == 0, first.output
    assert "no process named 'intake'" in first.output
    kinds = len(DEFAULT_KINDS)
    counts = (count(app, Territory), count(app, Agency), count(app, UserAccount), count(app, Case))
    assert counts == (2, 2 * kinds, 4 * kinds + 2, 0)  # two per agency, plus admin and designer
    with app.app_context():
        territory = db.session.execute(select(Territory).where(Territory.code == "vegas-bajas")).scalar_one()
        assert (territory.name, territory.region) == ("Mancomunidad Integral de Servicios Vegas Bajas", "EX")
        police = db.session.execute(select(Agency).where(Agency.name == "Guardia Civil — Puebla de la Calzada"))
        agency = police.scalar_one()
        usernames = set(db.session.execute(
            select(UserAccount.username).where(UserAccount.agency_id == agency.id)
        ).scalars())
        assert usernames == {"gc.puebla", "gc.puebla.jefa"}
        [shared_hash] = db.session.execute(select(UserAccount.password_hash).distinct()).scalars().all()
        assert verify_password(shared_hash, DEMO_PASSWORD)  # every demo account signs in with the README's password

    second = runner.invoke(args=["demo", "seed"])
    assert second.exit_code == 0, second.output
    assert "already present" in second.output
    assert (count(app, Territory), count(app, Agency), count(app, UserAccount), count(app, Case)) == counts


def test_demo_seed_starts_twelve_cases_when_intake_is_deployed(make_app: AppFactory) -> None:
    app = make_app(PROCESSES_DIR=ROOT / "processes", FORMS_DIR=ROOT / "forms")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["processes", "deploy"]).exit_code == 0
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert "12 cases" in result.output
    assert count(app, Case) == 12
    with app.app_context():
        agencies = set(db.session.execute(select(OpenTask.agency_id)).scalars())
        assert None not in agencies  # each task went to the agency serving the case's territory
        names = [p.identity["name"] for p in db.session.execute(select(CaseParty)).scalars()]
        assert len(names) == 24
        assert all(name.startswith("Persona ficticia") for name in names)


def test_deadlines_run_fires_what_is_due_and_commits(app: Flask, runner: FlaskCliRunner) -> None:
    assert runner.invoke(args=["processes", "deploy"]).exit_code == 0
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with app.app_context():
        territory = db.session.execute(select(Territory).where(Territory.code == "vegas-bajas")).scalar_one()
        start_case(db.session(), territory_id=territory.id, process_key="hearing", data={}, now=start,
                   actor=Actor.system("tests"))
        db.session.commit()

    early = runner.invoke(args=["deadlines", "run", "--now", (start + timedelta(hours=1)).isoformat()])
    assert early.exit_code == 0, early.output
    assert "0 fired, 0 failed." in early.output
    late = runner.invoke(args=["deadlines", "run", "--now", (start + timedelta(hours=80)).isoformat()])
    assert late.exit_code == 0, late.output
    assert "1 fired, 0 failed." in late.output
    assert count(app, DueTimer) == 0


def test_deadlines_run_refuses_a_time_without_offset(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["deadlines", "run", "--now", "2026-03-02T09:00:00"])
    assert result.exit_code == 2
    assert "UTC offset" in result.output
