"""`flask demo generate`: a history driven through the real protocol on a simulated clock, the same for a seed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Engine

from engine.clock import FakeClock
from engine.db import Base
from engine.definitions import forget_cached_definitions
from engine.models import AgencyKind, Case, CaseParty, OpenTask, TaskEvent, Territory
from engine.models.agency import DEFAULT_KINDS
from tests.support.web import AppFactory
from webapp.extensions import db

ROOT = Path(__file__).resolve().parents[2]
END = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
ARGS = ["demo", "generate", "--cases", "10", "--days", "60", "--seed", "11"]
REVIEWS = ("reassessment_review",)


def protocol_app(make_app: AppFactory) -> Flask:
    """An app with the real protocol deployed and its clock stopped at END."""
    app = make_app(PROCESSES_DIR=ROOT / "processes", FORMS_DIR=ROOT / "forms", CLOCK=FakeClock(END))
    deployed = app.test_cli_runner().invoke(args=["processes", "deploy"])
    assert deployed.exit_code == 0, deployed.output
    return app


def summary(app: Flask) -> dict[str, Any]:
    """What a history amounts to: cases, events by action, open steps, late completions, levels."""
    with app.app_context():
        session = db.session()
        return {
            "cases": session.execute(select(Case.status, Case.risk_level, func.count())
                                     .group_by(Case.status, Case.risk_level).order_by(Case.status, Case.risk_level))
            .all(),
            "events": session.execute(select(TaskEvent.action, func.count()).group_by(TaskEvent.action)
                                      .order_by(TaskEvent.action)).all(),
            "open": session.execute(select(OpenTask.element_id, func.count()).group_by(OpenTask.element_id)
                                    .order_by(OpenTask.element_id)).all(),
            "late": session.execute(select(func.count()).where(TaskEvent.action == "completed",
                                                               TaskEvent.at > TaskEvent.due_at)).scalar_one(),
        }


def wipe(engine: Engine) -> None:
    """Empty every table (the agency kinds put back, as the test app expects them)."""
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))
        conn.execute(insert(AgencyKind), [{"code": c, "name": n} for c, n in DEFAULT_KINDS.items()])
    forget_cached_definitions()  # new ids for the definitions deployed again


def test_generate_builds_the_same_history_for_the_same_seed(make_app: AppFactory, db_engine: Engine) -> None:
    first_app = protocol_app(make_app)
    first = first_app.test_cli_runner().invoke(args=ARGS)
    assert first.exit_code == 0, first.output
    first_summary = summary(first_app)
    wipe(db_engine)
    second_app = protocol_app(make_app)
    second = second_app.test_cli_runner().invoke(args=ARGS)
    assert second.exit_code == 0, second.output
    assert second.output == first.output
    assert summary(second_app) == first_summary


def test_generate_seeds_the_demo_first_and_leaves_late_steps(make_app: AppFactory) -> None:
    app = protocol_app(make_app)
    result = app.test_cli_runner().invoke(args=ARGS)
    assert result.exit_code == 0, result.output
    assert "Seeded the demo" in result.output
    assert "Generated 10 cases over 60 days" in result.output
    with app.app_context():
        session = db.session()
        assert session.execute(select(func.count()).select_from(Territory)).scalar_one() == 2
        opened = session.execute(select(Case.created_at).order_by(Case.created_at)).scalars().all()
        assert len(opened) == 12 + 10  # the seed's cases (today) and the history's
        assert opened[0] < END.replace(month=4, day=15)  # spread over the 60 days
        late_done = session.execute(select(func.count()).where(
            TaskEvent.action == "completed", TaskEvent.at > TaskEvent.due_at)).scalar_one()
        late_open = session.execute(select(func.count()).where(OpenTask.due_at < END)).scalar_one()
        assert late_done > 0
        assert late_open > 0
        names = [party.identity["name"] for party in session.execute(select(CaseParty)).scalars()]
        assert all(name.startswith("Persona ficticia") for name in names)  # synthetic only


def test_generate_does_nothing_once_a_history_is_present(make_app: AppFactory) -> None:
    app = protocol_app(make_app)
    runner = app.test_cli_runner()
    assert runner.invoke(args=ARGS).exit_code == 0
    before = summary(app)
    again = runner.invoke(args=ARGS)
    assert again.exit_code == 0, again.output
    assert "already present" in again.output
    assert summary(app) == before


def test_the_default_history_has_a_territory_s_risk_mix_level_changes_and_refusals(make_app: AppFactory) -> None:
    app = protocol_app(make_app)
    result = app.test_cli_runner().invoke(args=["demo", "generate", "--cases", "40", "--days", "120", "--seed", "7"])
    assert result.exit_code == 0, result.output  # what `make run` generates
    with app.app_context():
        session = db.session()
        history = session.execute(select(Case.id, Case.risk_level, Case.facts).where(Case.created_at < END)).all()
        reviewed: dict[int, set[str]] = {}
        for case_id, data in session.execute(select(TaskEvent.case_id, TaskEvent.data).where(
                TaskEvent.action == "completed", TaskEvent.element_id.in_(REVIEWS))):
            reviewed.setdefault(case_id, set()).add(data["final_level"])
    assert len(history) == 40
    levels = Counter(level for _id, level, _facts in history if level is not None)
    assessed = sum(levels.values())
    assert assessed >= 30
    assert levels["bajo"] + levels["medio"] >= 0.75 * assessed  # DOMAIN.md section 8: 98% nationally
    assert levels["bajo"] > levels["medio"] > levels["alto"]
    assert 1 <= levels["extremo"] <= 0.1 * assessed  # the demo shows one per territory; 0.04% nationally
    assert any(len(seen) > 1 for seen in reviewed.values())  # some cases changed level over time
    refused = sum(facts.get("consent_to_share") in ("no", "legal_basis") for _id, _level, facts in history)
    assert 0.1 * len(history) <= refused <= 0.35 * len(history)  # about one in five, an assumption
