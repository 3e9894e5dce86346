"""The watchdog's extra time per deadline pass over 100,000 open cases on PostgreSQL.

Run from the project root:  python -m benchmarks.watchdog_bench [--cases N] [--reps R]

Builds the population exactly as `board_bench` does (the real protocol and its invariants deployed,
`flask demo generate` for template cases, bulk SQL copies up to N cases with their open steps,
running instances and history), then times the watchdog step of the deadline pass
(`webapp.notifications.worker._watchdog`). The figure the target is about is the check every pass
pays (find the violations of every deployed invariant, end the episodes no longer found; median of
R). Handling a violation (lock, record, repair, notify) is paid once per new violation, not per pass:
a whole first step over the copies' gaps is timed for information (at most 500 handled), and each
invariant's query alone.
Prints one table; figures are reported against the target, not asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from benchmarks.board_bench import NOW, build, population, timed
from benchmarks.engine_bench import postgres_available, postgres_database
from engine.clock import FakeClock
from engine.db import Base
from engine.definitions import read_directory
from engine.deploy import deploy
from engine.invariants import current_invariants
from engine.models import AgencyKind, Case, Territory
from engine.models.agency import DEFAULT_KINDS
from engine.violations import find_violations
from engine.watchdog import current_violations
from webapp import create_app
from webapp.extensions import db
from webapp.notifications.worker import PassReport, _watchdog

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests" / "engine"
TARGET_S = 1.0
Row = tuple[str, str, str, bool | None]


def watchdog_passes(app: Flask, reps: int) -> list[Row]:
    """Time the watchdog's check per pass (median of `reps`), a whole first step, and each query alone."""
    rows: list[Row] = []
    with app.app_context():
        session = db.session()
        invariants = current_invariants(session)
        active = session.execute(select(func.count()).select_from(Case).where(Case.status == "active")).scalar_one()
        rows.append(("active cases", f"{active:,}", "", None))
        samples, found = [], 0
        for n in range(reps):
            started = time.perf_counter()
            violations = current_violations(session, NOW + timedelta(seconds=30 * n), invariants)
            session.commit()
            samples.append(time.perf_counter() - started)
            found = len(violations.violations)
        median = statistics.median(samples)
        rows.append((f"watchdog check per deadline pass (median of {reps})",
                     f"{median:.3f} s ({found:,} violations found)", f"< {TARGET_S:g} s", median < TARGET_S))
        report = PassReport()
        started = time.perf_counter()
        _watchdog(session, NOW + timedelta(seconds=30 * reps), report, None, "https://coordina.example")
        seconds = time.perf_counter() - started
        handled = report.violations_recorded or 1
        rows.append(("first whole watchdog step (check + handling the copies' gaps)",
                     f"{seconds:.1f} s: {report.violations_recorded:,} recorded, {report.repaired:,} repaired, "
                     f"{len(report.errors):,} errors", "", None))
        if report.errors:
            rows.append(("  first error", report.errors[0][:100], "", None))
        rows.append(("  handling one violation (lock, record, repair, notify)",
                     f"{(seconds - median) / handled * 1000:.0f} ms", "", None))
        for invariant in invariants:
            ms = timed(lambda i=invariant: find_violations(session, NOW, [i]), max(3, reps // 2))  # type: ignore[misc]
            rows.append((f"  query: {invariant.id} ({invariant.kind})", f"{ms:.0f} ms", "", None))
            session.rollback()
        db.session.remove()
    return rows


def build_synthetic(engine: Engine, cases: int) -> float:
    """Make a healthy population in SQL alone (about a minute); return seconds.

    The test protocol and its invariants; every case active and assessed, its police re-assessment and
    social follow-up open and on time, except one case in a hundred whose re-assessment is missing.
    """
    started = time.perf_counter()
    Base.metadata.create_all(engine)
    with sessionmaker(bind=engine)() as session:
        session.add_all([AgencyKind(code=c, name=n) for c, n in DEFAULT_KINDS.items()])
        session.add(Territory(code="vegas-bajas", name="Mancomunidad Vegas Bajas", region="EX"))
        session.commit()
        deploy(session, [*read_directory(TESTS / "bpmn", TESTS / "forms"), *read_directory(TESTS / "invariants")],
               actor="benchmark", now=NOW)
        session.commit()
    values = {"n": cases, "now": NOW}
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO case_file (id, reference, territory_id, status, risk_level, facts, created_at, updated_at, "
            "version) SELECT i, 'VG-2026-' || lpad(i::text, 6, '0'), 1, 'active', "
            "(ARRAY['bajo', 'medio', 'alto', 'extremo'])[1 + i % 4], jsonb_build_object('last_assessment_at', "
            "to_char((:now - (i % 48) * interval '1 hour') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS+00:00')), "
            ":now - interval '30 days', :now, 1 FROM generate_series(1, :n) i"), values)
        conn.execute(text(
            "INSERT INTO process_instance (id, case_id, definition_id, process_key, status, state, serializer_version, "
            "row_version, started_at) SELECT i, i, (SELECT id FROM definition WHERE key = 'broken_followup'), "
            "'broken_followup', 'running', '', '1', 1, :now - interval '2 days' FROM generate_series(1, :n) i"), values)
        for step, skip in (("police_reassessment", 100), ("social_services_followup", 0)):
            conn.execute(text(
                "INSERT INTO open_task (case_id, territory_id, instance_id, task_guid, element_id, name, created_at, "
                "visible_from, due_at, priority, risk_rank, needs_identity, version, escalation_level) "
                "SELECT i, 1, i, md5(i::text || :step), :step, :step, :now - interval '1 hour', :now, "
                ":now + interval '23 hours', 0, 1, false, 1, 0 FROM generate_series(1, :n) i "
                "WHERE :skip = 0 OR i % :skip <> 0"), {**values, "step": step, "skip": skip})
        for name in ("case_file", "process_instance"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT MAX(id) FROM {name}))"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE)"))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Build the population, time the watchdog and print the table."""
    parser = argparse.ArgumentParser(description="The watchdog's time per deadline pass (PostgreSQL)")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--synthetic", action="store_true",
                        help="a healthy population made in SQL (the test protocol, 1%% of gaps): about a minute")
    args = parser.parse_args(argv)
    reason = postgres_available()
    if reason:
        print(f"SKIP: {reason}")
        return 0
    with postgres_database() as engine:
        app = create_app({"SQLALCHEMY_DATABASE_URI": engine.url.render_as_string(hide_password=False),
                          "SECRET_KEY": "benchmark", "SESSION_COOKIE_SECURE": False, "CLOCK": FakeClock(NOW),
                          "PROCESSES_DIR": ROOT / "processes", "FORMS_DIR": ROOT / "forms"})
        built_s = build_synthetic(engine, args.cases) if args.synthetic else build(app, engine, args.cases)
        rows: list[Row] = [(f"population (built in {built_s:.0f} s)", population(app), "", None)]
        rows += watchdog_passes(app, args.reps)
        with app.app_context():
            db.engine.dispose()
    kind = "synthetic, healthy" if args.synthetic else "generated-like, the shipped protocol"
    print(f"Coordina watchdog benchmark (PostgreSQL, {args.cases:,} cases, {kind}, Python {sys.version.split()[0]})")
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark'.ljust(width)}  {'figure':>60}  {'target':>7}  verdict")
    for name, figure, target, ok in rows:
        verdict = "" if ok is None else "PASS" if ok else "FAIL"
        print(f"{name.ljust(width)}  {figure:>60}  {target:>7}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
