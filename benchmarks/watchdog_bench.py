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
from sqlalchemy import func, select

from benchmarks.board_bench import NOW, build, population, timed
from benchmarks.engine_bench import postgres_available, postgres_database
from engine.clock import FakeClock
from engine.invariants import current_invariants, find_violations
from engine.models import Case
from engine.watchdog import current_violations
from webapp import create_app
from webapp.extensions import db
from webapp.notifications.worker import PassReport, _watchdog

ROOT = Path(__file__).resolve().parents[1]
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
        rows.append(("  handling one violation (lock, record, repair, notify)",
                     f"{(seconds - median) / handled * 1000:.0f} ms", "", None))
        for invariant in invariants:
            ms = timed(lambda i=invariant: find_violations(session, NOW, [i]), max(3, reps // 2))  # type: ignore[misc]
            rows.append((f"  query: {invariant.id} ({invariant.kind})", f"{ms:.0f} ms", "", None))
            session.rollback()
        db.session.remove()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Build the population, time the watchdog and print the table."""
    parser = argparse.ArgumentParser(description="The watchdog's time per deadline pass (PostgreSQL)")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=9)
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
        rows: list[Row] = [(f"population (built in {built_s:.0f} s)", population(app), "", None)]
        rows += watchdog_passes(app, args.reps)
        with app.app_context():
            db.engine.dispose()
    print(f"Coordina watchdog benchmark (PostgreSQL, {args.cases:,} cases, Python {sys.version.split()[0]})")
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark'.ljust(width)}  {'figure':>60}  {'target':>7}  verdict")
    for name, figure, target, ok in rows:
        verdict = "" if ok is None else "PASS" if ok else "FAIL"
        print(f"{name.ljust(width)}  {figure:>60}  {target:>7}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
