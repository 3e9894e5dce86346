"""The supervisor's board over 100,000 generated-like cases on PostgreSQL.

Run from the project root:  python -m benchmarks.board_bench [--cases N] [--reps R]

Creates a throw-away PostgreSQL database (COORDINA_BENCH_PG, as engine_bench), deploys the real
protocol and runs `flask demo generate` (the real engine on a simulated clock) to get template cases
with their history. The rest of the population is bulk copies of those cases made in SQL: each copy
gets its own id and reference, a territory (four in five in Vegas Bajas, whose police supervisor signs
in), the agencies and members of that territory, a risk level, and every date shifted by -10 to +10
days (so deadlines and history vary). Copies keep the open steps, the history (`task_event`) and the
running instances (without their workflow state, which the board never reads); no identifying data.
The copied history is rolled up for the board and the deadline worker's passes are timed (the
copies' backlog, then what an hour and 30 seconds of a running system leave: see `deadline_passes`).
Then, through the whole Flask stack (test client, signed in as the supervisor): GET /supervision for
30 and 365 days, the late-steps CSV, and each board query alone. Prints one table; figures are
reported against the target, not asserted.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, text
from sqlalchemy.engine import Engine

from benchmarks.engine_bench import postgres_available, postgres_database
from engine.clock import FakeClock
from engine.db import Base, UTCDateTime
from engine.levels import SHIPPED
from engine.models import Agency, AgencyKind, Case, OpenTask, TaskEvent, Territory, UserAccount, agency_territory
from engine.models.agency import DEFAULT_KINDS
from engine.stats import roll_up_step_timings
from webapp import create_app
from webapp.auth.principal import load_principal
from webapp.demo.seed import DEMO_PASSWORD
from webapp.extensions import db
from webapp.notifications.worker import run_pass
from webapp.supervision.queries import (
    BoardFilters,
    late_steps,
    open_step_counts,
    own_agency_tasks,
    reassessments_due,
    risk_levels,
    step_timings,
)

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SUPERVISOR = "gc.puebla.jefa"
TEMPLATE_ARGS = ["demo", "generate", "--cases", "40", "--days", "120", "--seed", "7"]
LEVELS = ("bajo", "medio", "alto", "extremo")
SHIFT_DAYS = 10
MAIN_TERRITORY_SHARE = 0.8
TABLES = Base.metadata.tables
TARGET_MS = 300

BENCH_N = Table("bench_n", MetaData(), Column("i", Integer, primary_key=True, autoincrement=False),
                Column("src_case", Integer), Column("ref", String(32)), Column("shift", Integer),
                Column("territory_id", Integer), Column("level", String(16)), Column("rank", Integer))
BENCH_INSTANCE = Table("bench_instance", MetaData(), Column("src", Integer, primary_key=True, autoincrement=False),
                       Column("ord", Integer))
BENCH_AGENCY = Table("bench_agency", MetaData(), Column("src", Integer), Column("territory_id", Integer),
                     Column("dst", Integer))
BENCH_USER = Table("bench_user", MetaData(), Column("src", Integer), Column("territory_id", Integer),
                   Column("dst", Integer))
SCRATCH = (BENCH_N, BENCH_INSTANCE, BENCH_AGENCY, BENCH_USER)


def build(app: Flask, engine: Engine, cases: int) -> float:
    """Generate the template history with the engine, then copy it in SQL up to `cases`; return seconds."""
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(AgencyKind), [{"code": c, "name": n} for c, n in DEFAULT_KINDS.items()])
    runner = app.test_cli_runner()
    for args in (["processes", "deploy"], TEMPLATE_ARGS):
        result = runner.invoke(args=args)
        if result.exit_code != 0:
            raise RuntimeError(result.output)
    _clone(engine, cases, random.Random(7))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE)"))
        conn.execute(text("CHECKPOINT"))  # write the copies out now, not during the timings
    return time.perf_counter() - started


def _columns(table: Table, overrides: dict[str, str], skip: tuple[str, ...] = ()) -> tuple[str, str]:
    """Column list and SELECT expressions copying `s` rows: dates shifted by n.shift seconds."""
    names, exprs = [], []
    for column in table.columns:
        if column.name in skip:
            continue
        names.append(column.name)
        default = f"s.{column.name}"
        if isinstance(column.type, UTCDateTime):
            default = f"s.{column.name} + make_interval(secs => n.shift)"
        exprs.append(overrides.get(column.name, default))
    return ", ".join(names), ", ".join(exprs)


def _clone(engine: Engine, cases: int, rng: random.Random) -> None:
    """Copy the template cases in bulk until there are `cases` cases."""
    with engine.begin() as conn:
        for table in SCRATCH:
            table.create(conn)
        templates = conn.execute(select(Case.id, Case.risk_level).order_by(Case.id)).all()
        territories = conn.execute(select(Territory.id).order_by(Territory.id)).scalars().all()
        main = conn.execute(select(Territory.id).where(Territory.code == "vegas-bajas")).scalar_one()
        other = [t for t in territories if t != main]
        running = conn.execute(text("SELECT id, case_id FROM process_instance WHERE status = 'running' ORDER BY id"))
        ordinal: dict[int, int] = {}
        instances = []
        for instance_id, case_id in running:
            ordinal[case_id] = ordinal.get(case_id, 0) + 1
            instances.append({"src": instance_id, "ord": ordinal[case_id]})
        conn.execute(BENCH_INSTANCE.insert(), instances)
        per_case = max(ordinal.values())
        _maps(conn, territories)
        rows = []
        for i in range(1, cases - len(templates) + 1):
            source, level = templates[i % len(templates)]
            new_level = rng.choice(LEVELS) if level else None
            territory = main if rng.random() < MAIN_TERRITORY_SHARE else rng.choice(other)
            rows.append({"i": i, "src_case": source, "ref": f"VG-2025-{i:06d}", "territory_id": territory,
                         "shift": rng.randint(-SHIFT_DAYS * 86400, SHIFT_DAYS * 86400), "level": new_level,
                         "rank": SHIPPED.rank(new_level)})
        conn.execute(BENCH_N.insert(), rows)
        base = {name: conn.execute(text(f"SELECT COALESCE(MAX(id), 0) FROM {name}")).scalar_one()
                for name in ("case_file", "process_instance")}
        case_id = f"{base['case_file']} + n.i"
        instance_id = f"{base['process_instance']} + (n.i - 1) * {per_case} + bi.ord"
        agency = "COALESCE(ma.dst, s.agency_id)"
        names, exprs = _columns(TABLES["case_file"], {
            "id": case_id, "reference": "n.ref", "territory_id": "n.territory_id",
            "risk_level": "CASE WHEN s.risk_level IS NULL THEN NULL ELSE n.level END"})
        conn.execute(text(f"INSERT INTO case_file ({names}) SELECT {exprs} "
                          f"FROM bench_n n JOIN case_file s ON s.id = n.src_case"))
        names, exprs = _columns(TABLES["process_instance"], {
            "id": instance_id, "case_id": case_id, "state": "''", "row_version": "1"})
        conn.execute(text(f"INSERT INTO process_instance ({names}) SELECT {exprs} FROM bench_n n "
                          f"JOIN process_instance s ON s.case_id = n.src_case AND s.status = 'running' "
                          f"JOIN bench_instance bi ON bi.src = s.id"))
        names, exprs = _columns(TABLES["open_task"], {
            "case_id": case_id, "territory_id": "n.territory_id", "instance_id": instance_id, "agency_id": agency,
            "assignee_id": "CASE WHEN s.assignee_id IS NULL THEN NULL ELSE COALESCE(mu.dst, s.assignee_id) END",
            "risk_rank": "n.rank"}, skip=("id",))
        conn.execute(text(
            f"INSERT INTO open_task ({names}) SELECT {exprs} FROM bench_n n JOIN open_task s ON s.case_id = n.src_case "
            f"JOIN bench_instance bi ON bi.src = s.instance_id "
            f"LEFT JOIN bench_agency ma ON ma.src = s.agency_id AND ma.territory_id = n.territory_id "
            f"LEFT JOIN bench_user mu ON mu.src = s.assignee_id AND mu.territory_id = n.territory_id"))
        names, exprs = _columns(TABLES["task_event"], {
            "case_id": case_id, "task_id": "NULL", "agency_id": agency,
            "instance_id": f"CASE WHEN bi.ord IS NULL THEN NULL ELSE {instance_id} END",
            "actor_id": "CASE WHEN s.actor_id IS NULL THEN NULL ELSE COALESCE(mu.dst, s.actor_id) END"}, skip=("id",))
        conn.execute(text(
            f"INSERT INTO task_event ({names}) SELECT {exprs} FROM bench_n n "
            f"JOIN task_event s ON s.case_id = n.src_case "
            f"LEFT JOIN bench_instance bi ON bi.src = s.instance_id "
            f"LEFT JOIN bench_agency ma ON ma.src = s.agency_id AND ma.territory_id = n.territory_id "
            f"LEFT JOIN bench_user mu ON mu.src = s.actor_id AND mu.territory_id = n.territory_id"))
        for table in SCRATCH:
            table.drop(conn)
        for name in ("case_file", "process_instance"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT MAX(id) FROM {name}))"))


def _maps(conn: Any, territories: Sequence[int]) -> None:
    """Map each agency and member to the agency of the same kind (and the member in the same place) elsewhere."""
    serving = conn.execute(select(Agency.id, Agency.kind, agency_territory.c.territory_id)
                           .join(agency_territory, agency_territory.c.agency_id == Agency.id)).all()
    by_place = {(kind, territory): agency for agency, kind, territory in serving}
    members: dict[int, list[int]] = {}
    for user_id, agency_id in conn.execute(select(UserAccount.id, UserAccount.agency_id)
                                           .where(UserAccount.agency_id.is_not(None)).order_by(UserAccount.id)):
        members.setdefault(agency_id, []).append(user_id)
    agencies, users = [], []
    for agency, kind, _home in serving:
        for territory in territories:
            target = by_place.get((kind, territory), agency)
            agencies.append({"src": agency, "territory_id": territory, "dst": target})
            for source, destination in zip(members.get(agency, []), members.get(target, []), strict=False):
                users.append({"src": source, "territory_id": territory, "dst": destination})
    conn.execute(BENCH_AGENCY.insert(), agencies)
    conn.execute(BENCH_USER.insert(), users)


def timed(call: Callable[[], Any], repetitions: int, warmup: int = 3) -> float:
    """Return the median time of `call` in milliseconds, warm-up excluded."""
    samples = []
    for n in range(warmup + repetitions):
        started = time.perf_counter()
        call()
        if n >= warmup:
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    """Build the population, time the board and print the table."""
    parser = argparse.ArgumentParser(description="The supervisor's board over many cases (PostgreSQL)")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args(argv)
    reason = postgres_available()
    if reason:
        print(f"SKIP: {reason}")
        return 0
    with postgres_database() as engine:
        app = create_app({"SQLALCHEMY_DATABASE_URI": engine.url.render_as_string(hide_password=False),
                          "SECRET_KEY": "benchmark", "SESSION_COOKIE_SECURE": False, "CLOCK": FakeClock(NOW),
                          "PROCESSES_DIR": ROOT / "processes", "FORMS_DIR": ROOT / "forms"})
        built_s = build(app, engine, args.cases)
        rows: list[tuple[str, str, str, bool | None]] = [
            (f"population (built in {built_s:.0f} s)", population(app), "", None)]
        rows += deadline_passes(app)
        rows += measure(app, args.reps)
        with app.app_context():
            db.engine.dispose()
    print(f"Coordina board benchmark (PostgreSQL, {args.cases:,} cases, median of {args.reps}, "
          f"Python {sys.version.split()[0]})")
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark'.ljust(width)}  {'figure':>44}  {'target':>9}  verdict")
    for name, figure, target, ok in rows:
        verdict = "" if ok is None else "PASS" if ok else "FAIL"
        print(f"{name.ljust(width)}  {figure:>44}  {target:>9}  {verdict}")
    return 0


def deadline_passes(app: Flask) -> list[tuple[str, str, str, bool | None]]:
    """Roll the copied history up, catch the worker up to an hour before NOW, then time the pass at NOW.

    The copies come without the worker having run over them: every completion is queued for the
    board's roll-up and the copied late steps have escalations outstanding. That backlog is cleared
    first (timed, for information); the pass at NOW then does what an hour of a stopped worker leaves
    over 100,000 cases: the figure the deadline worker's target is about.
    """
    rows: list[tuple[str, str, str, bool | None]] = []
    with app.app_context():
        session = db.session()
        started, moved = time.perf_counter(), 0
        while (batch := roll_up_step_timings(session)).events:
            session.commit()
            moved += batch.events
        rows.append(("roll-up of the copied history for the board", f"{moved:,} completions in "
                     f"{time.perf_counter() - started:.1f} s", "", None))
        for label, when, target in (("catch-up pass at NOW - 1 h (the copies' backlog)", NOW - timedelta(hours=1),
                                     None),
                                    ("deadline pass at NOW (an hour of work over them)", NOW, 5.0),
                                    ("deadline pass 30 s later (the worker's interval)", NOW + timedelta(seconds=30),
                                     5.0)):
            started = time.perf_counter()
            report = run_pass(session, when, smtp=None, base_url="https://coordina.example")
            seconds = time.perf_counter() - started
            if report.errors:
                raise RuntimeError("; ".join(report.errors))
            figure = (f"{seconds:.2f} s: {report.fired:,} timers, {report.reminded + report.escalated:,} "
                      f"escalations, {report.notified:,} notices")
            rows.append((label, figure, f"< {target:g} s" if target else "", seconds < target if target else None))
        db.session.remove()
    return rows


def population(app: Flask) -> str:
    """Describe the population: cases, open steps (overdue), history rows, those the supervisor sees."""
    with app.app_context():
        session = db.session()
        cases = session.execute(select(func.count()).select_from(Case)).scalar_one()
        tasks = session.execute(select(func.count()).select_from(OpenTask)).scalar_one()
        late = session.execute(select(func.count()).where(OpenTask.due_at < NOW)).scalar_one()
        events = session.execute(select(func.count()).select_from(TaskEvent)).scalar_one()
        hers = session.execute(select(func.count()).select_from(Case).join(Territory)
                               .where(Territory.code == "vegas-bajas")).scalar_one()
    return f"{cases:,} cases ({hers:,} hers), {tasks:,} open ({late:,} late), {events:,} events"


def measure(app: Flask, reps: int) -> list[tuple[str, str, str, bool | None]]:
    """Time the board page, an export and each query alone."""
    client = app.test_client()
    login = client.get("/login").get_data(as_text=True)
    token = login.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    signed = client.post("/login", data={"username": SUPERVISOR, "password": DEMO_PASSWORD, "csrf_token": token})
    if signed.status_code != 302:
        raise RuntimeError("the supervisor could not sign in")

    def page(query: str) -> Callable[[], None]:
        def call() -> None:
            response = client.get(f"/supervision{query}")
            if response.status_code != 200:
                raise RuntimeError(f"/supervision{query} answered {response.status_code}")
        return call

    rows: list[tuple[str, str, str, bool | None]] = []
    for label, query in (("GET /supervision (30 days)", ""), ("GET /supervision?period=365", "?period=365")):
        ms = timed(page(query), reps)
        rows.append((f"{label}, median", f"{ms:.1f} ms", f"< {TARGET_MS} ms", ms < TARGET_MS))
    ms = timed(page("/export/late_steps.csv"), reps)
    rows.append(("GET /supervision/export/late_steps.csv (5,000 rows), median", f"{ms:.1f} ms", "", None))
    with app.app_context():
        session = db.session()
        principal = load_principal(session, session.execute(
            select(UserAccount.id).where(UserAccount.username == SUPERVISOR)).scalar_one())
        assert principal is not None
        places = BoardFilters().territory_ids(principal)
        queries: list[tuple[str, Callable[[], Any]]] = [
            ("open steps by agency / step / professional", lambda: open_step_counts(session, places, NOW)),
            ("late steps, first 100", lambda: late_steps(session, places, NOW)),
            ("re-assessments due in 7 days", lambda: reassessments_due(session, places, NOW)),
            ("cases by risk level", lambda: risk_levels(session, places)),
            ("step timings, 30 days", lambda: step_timings(session, places, 30, NOW)),
            ("step timings, 365 days", lambda: step_timings(session, places, 365, NOW)),
            ("own agency's steps, first 100", lambda: own_agency_tasks(session, principal, places, NOW)),
        ]
        for label, call in queries:
            rows.append((f"  query: {label}", f"{timed(call, reps):.1f} ms", "", None))
            session.rollback()
    return rows


if __name__ == "__main__":
    sys.exit(main())
