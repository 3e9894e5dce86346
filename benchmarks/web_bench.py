"""Web benchmarks: the worklist and the JSON API over 10,000 open cases on SQLite.

Run from the project root:  python -m benchmarks.web_bench [--cases N]

Builds a SQLite database in a temporary directory: the real protocol (processes/, forms/) deployed,
one territory with one agency per kind, and N open cases (default 10,000) on the follow-up cycle
with varied risk levels and deadlines; a few hundred are driven through the engine and the rest are
copied from them in SQL (own ids, references and dates). Then, through the whole Flask stack (test
client, no network): GET /api/v1/tasks (a page of 50), GET / (the worklist page), and
POST /api/v1/tasks/<id>/complete, with the SQL statements of each completion counted. Prints one
table; figures are reported against the targets, not asserted.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select, text, update
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.db import Base
from engine.definitions import read_directory
from engine.deploy import deploy
from engine.execution import start_case, start_process
from engine.levels import SHIPPED
from engine.models import Agency, AgencyKind, Case, OpenTask, Territory, UserAccount
from engine.models.agency import DEFAULT_KINDS
from webapp import create_app
from webapp.auth.passwords import hash_password
from webapp.extensions import db

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "benchmark-password-1"  # noqa: S105 - a throw-away benchmark account
HTTPS = {"base_url": "https://localhost"}
LEVELS = ("bajo", "medio", "alto", "extremo")
ENGINE_CASES = 200


def build(app: Flask, cases: int, now: datetime) -> dict[str, int]:
    """Seed the world, deploy the protocol and open `cases` follow-up cases; return user ids by kind."""
    rng = random.Random(7)
    with app.app_context():
        Base.metadata.create_all(db.engine)
        session: Session = db.session()
        for code, label in DEFAULT_KINDS.items():
            session.add(AgencyKind(code=code, name=label))
        territory = Territory(code="bench", name="Territorio de pruebas", region="EX")
        session.add(territory)
        session.flush()
        hashed = hash_password(PASSWORD)
        users: dict[str, int] = {}
        for code in DEFAULT_KINDS:
            agency = Agency(name=f"{code} pruebas", kind=code, active=True, territories=[territory])
            session.add(agency)
            session.flush()
            user = UserAccount(username=f"{code}.bench", display_name=f"{code} bench", agency_id=agency.id,
                               roles=["professional"], active=True, password_hash=hashed)
            session.add(user)
            session.flush()
            users[code] = user.id
        deploy(session, read_directory(ROOT / "processes", ROOT / "forms"), actor="bench", now=now)
        session.commit()
        police = Actor(user_id=users["state_police"], name="bench", agency_id=None)
        for number in range(min(cases, ENGINE_CASES)):
            start = now - timedelta(days=rng.randint(0, 70), hours=rng.randint(0, 23))
            level = LEVELS[number % len(LEVELS)]
            case, _ = start_case(session, territory_id=territory.id, process_key="followup",
                                 data={"reason": "periodic"},
                                 now=start, actor=police)
            case.risk_level = level
            # The social services' periodic follow-up, the step the completion figure times (its own track).
            start_process(session, case, "social_care", {"reason": "followup"}, now=start, actor=police)
            session.execute(update(OpenTask).where(OpenTask.case_id == case.id).values(risk_rank=SHIPPED.rank(level)))
            session.commit()
        _clone(session, cases, rng, now)
        session.execute(text("ANALYZE"))
        session.commit()
    return users


def _clone(session: Session, cases: int, rng: random.Random, now: datetime) -> None:
    """Copy the engine-driven cases in SQL until there are `cases`, shifting their dates."""
    templates = session.execute(select(Case.id)).scalars().all()
    existing = len(templates)
    counter = existing
    conn = session.connection()
    while counter < cases:
        template = templates[counter % existing]
        shift = timedelta(days=rng.randint(-30, 30)).total_seconds()
        level = LEVELS[rng.randrange(4)]
        conn.execute(text(
            "INSERT INTO case_file (reference, territory_id, status, risk_level, facts, created_at, updated_at, "
            "version) SELECT :ref, territory_id, status, :level, facts, created_at, updated_at, version "
            "FROM case_file WHERE id = :t"
        ), {"ref": f"VG-2026-{counter + 1:06d}", "level": level, "t": template})
        new_case = conn.execute(text("SELECT last_insert_rowid()")).scalar_one()
        conn.execute(text(
            "INSERT INTO process_instance (case_id, definition_id, process_key, status, state, serializer_version, "
            "row_version, started_at, ended_at, next_timer_at, outcome) SELECT :c, definition_id, process_key, status, "
            "state, serializer_version, row_version, started_at, ended_at, next_timer_at, outcome "
            "FROM process_instance WHERE case_id = :t AND status = 'running'"
        ), {"c": new_case, "t": template})
        new_instance = conn.execute(text("SELECT last_insert_rowid()")).scalar_one()
        copied = [c.name for c in OpenTask.__table__.columns
                  if c.name not in ("id", "case_id", "instance_id", "visible_from", "due_at", "risk_rank")]
        conn.execute(text(
            f"INSERT INTO open_task (case_id, instance_id, visible_from, due_at, risk_rank, {', '.join(copied)}) "
            f"SELECT :c, :i, datetime(visible_from, :shift || ' seconds'), datetime(due_at, :shift || ' seconds'), "
            f":rank, {', '.join(copied)} FROM open_task WHERE case_id = :t"
        ), {"c": new_case, "i": new_instance, "t": template, "shift": shift, "rank": SHIPPED.rank(level)})
        conn.execute(text(
            "INSERT INTO task_event (case_id, task_id, instance_id, task_guid, element_id, name, agency_id, actor_id, "
            "action, at, due_at, data) SELECT :c, NULL, :i, task_guid, element_id, name, agency_id, actor_id, action, "
            "at, due_at, data FROM task_event WHERE case_id = :t"
        ), {"c": new_case, "i": new_instance, "t": template})
        counter += 1


def token(client: FlaskClient, username: str) -> dict[str, str]:
    """Sign in through the API and return the Authorization header."""
    response = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD}, **HTTPS)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


def timed(call: Callable[[], Any], repetitions: int, warmup: int = 5) -> list[float]:
    """Time `call` in milliseconds, warm-up excluded."""
    samples = []
    for n in range(warmup + repetitions):
        started = time.perf_counter()
        call()
        if n >= warmup:
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def main(argv: list[str] | None = None) -> int:
    """Build the population, run the three measurements and print the table."""
    parser = argparse.ArgumentParser(description="Worklist and API over many open cases (SQLite)")
    parser.add_argument("--cases", type=int, default=10_000)
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{Path(folder) / 'bench.sqlite'}",
                          "SECRET_KEY": "benchmark", "PROCESSES_DIR": ROOT / "processes",
                          "FORMS_DIR": ROOT / "forms"})
        started = time.perf_counter()
        build(app, args.cases, now)
        built_s = time.perf_counter() - started
        client = app.test_client()
        headers = token(client, "state_police.bench")
        with app.app_context():
            open_cases = db.session.execute(select(func.count(func.distinct(OpenTask.case_id)))).scalar_one()
            agency_tasks = db.session.execute(select(func.count()).select_from(OpenTask).where(
                OpenTask.agency_kind == "state_police")).scalar_one()

        def list_tasks() -> None:
            response = client.get("/api/v1/tasks?scope=agency&per_page=50", headers=headers, **HTTPS)
            assert response.status_code == 200
            assert len(response.get_json()["items"]) == 50

        api_ms = statistics.median(timed(list_tasks, 100))
        browser = app.test_client()
        login_page = browser.get("/login", **HTTPS).get_data(as_text=True)
        csrf = login_page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        signed_in = browser.post("/login", data={"username": "state_police.bench", "password": PASSWORD,
                                                  "csrf_token": csrf}, base_url=HTTPS["base_url"],
                                 headers={"Referer": "https://localhost/login"})
        assert signed_in.status_code == 302

        def worklist_page() -> None:
            response = browser.get("/?tab=agency", **HTTPS)
            assert response.status_code == 200

        page_ms = statistics.median(timed(worklist_page, 100))
        complete_samples, statements = _complete_samples(app, client, headers, 100)
    rows = [
        ("population: open cases / police agency tasks (built in s)",
         f"{open_cases:,} / {agency_tasks:,} ({built_s:.0f} s)", f"{args.cases:,}", open_cases == args.cases),
        ("GET /api/v1/tasks?scope=agency, page of 50 (median)", f"{api_ms:.2f} ms", "< 10 ms", api_ms < 10),
        ("GET / worklist page, Mi organismo (median)", f"{page_ms:.2f} ms", "< 30 ms", page_ms < 30),
        ("POST /api/v1/tasks/<id>/complete (median)", f"{statistics.median(complete_samples):.2f} ms", "< 5 ms",
         statistics.median(complete_samples) < 5),
        ("SQL statements per completion (max)", f"{max(statements)}", "<= 12", max(statements) <= 12),
    ]
    print(f"Coordina web benchmarks (SQLite, {args.cases:,} open cases, Python {sys.version.split()[0]})")
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark'.ljust(width)}  {'figure':>24}  {'target':>10}  verdict")
    for name, figure, target, ok in rows:
        print(f"{name.ljust(width)}  {figure:>24}  {target:>10}  {'PASS' if ok else 'FAIL'}")
    return 0


def _complete_samples(
    app: Flask, client: FlaskClient, headers: dict[str, str], count: int
) -> tuple[list[float], list[int]]:
    """Complete `count` social-services follow-ups through the API; time them and count statements."""
    social = token(client, "social_services.bench")
    with app.app_context():
        tasks = db.session.execute(
            select(OpenTask.id, OpenTask.version).where(OpenTask.element_id == "social_services_followup")
            .order_by(OpenTask.id).limit(count + 5)
        ).all()
        engine = db.engine
    data = {"contact_type": "phone", "situation": "Sin cambios.", "needs_change": False, "concern": False}
    statements: list[int] = []
    current = [0]

    def count_statement(*_args: Any) -> None:
        current[0] += 1

    event.listen(engine, "before_cursor_execute", count_statement)
    samples = []
    try:
        for n, (task_id, version) in enumerate(tasks):
            current[0] = 0
            started = time.perf_counter()
            response = client.post(f"/api/v1/tasks/{task_id}/complete", json={"data": data, "version": version},
                                   headers=social, **HTTPS)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, response.get_data(as_text=True)
            if n >= 5:
                samples.append(elapsed)
                statements.append(current[0])
    finally:
        event.remove(engine, "before_cursor_execute", count_statement)
    del headers
    return samples, statements


if __name__ == "__main__":
    sys.exit(main())
