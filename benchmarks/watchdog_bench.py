"""The watchdog's extra time per deadline pass over 100,000 open cases on PostgreSQL.

Run from the project root:  python -m benchmarks.watchdog_bench [--cases N] [--reps R]

Builds the population exactly as `board_bench` does (the real protocol and its invariants deployed,
`flask demo generate` for template cases, bulk SQL copies up to N cases with their open steps,
running instances and history), then times the watchdog step of the deadline pass
(`webapp.notifications.worker._watchdog`: find the violations of every deployed invariant, end the
episodes no longer found, handle the new ones). The first pass records (and repairs) the gaps the
copies carry: timed for information. The passes after it are what a running worker pays every
interval: the figure the target is about (median of R). Each invariant's query alone is timed too.
Prints one table; figures are reported against the target, not asserted.
"""

from __future__ import annotations

import argparse
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
from webapp import create_app
from webapp.extensions import db
from webapp.notifications.worker import PassReport, _watchdog

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.0
Row = tuple[str, str, str, bool | None]


def watchdog_passes(app: Flask, reps: int) -> list[Row]:
    """Time the first watchdog step (the copies' gaps), then the steady state, median of `reps`."""
    rows: list[Row] = []
    with app.app_context():
        session = db.session()
        when = NOW
        for label in ("first watchdog step (records the copies' gaps)", "second watchdog step"):
            report = PassReport()
            started = time.perf_counter()
            _watchdog(session, when, report, None, "https://coordina.example")
            rows.append((label, f"{time.perf_counter() - started:.2f} s: {report.violations:,} violations, "
                         f"{report.violations_recorded:,} recorded, {report.repaired:,} repaired", "", None))
            when += timedelta(seconds=30)
        samples = []
        for _ in range(reps):
            report = PassReport()
            started = time.perf_counter()
            _watchdog(session, when, report, None, "https://coordina.example")
            samples.append(time.perf_counter() - started)
            when += timedelta(seconds=30)
        samples.sort()
        median = samples[len(samples) // 2]
        rows.append((f"watchdog step per deadline pass, steady state (median of {reps})",
                     f"{median:.3f} s ({report.violations:,} open violations, {len(report.errors)} errors)",
                     f"< {TARGET_S:g} s", median < TARGET_S))
        invariants = current_invariants(session)
        for invariant in invariants:
            ms = timed(lambda i=invariant: find_violations(session, when, [i]), max(3, reps // 2))  # type: ignore[misc]
            rows.append((f"  query: {invariant.id} ({invariant.kind})", f"{ms:.0f} ms", "", None))
            session.rollback()
        active = session.execute(select(func.count()).select_from(Case).where(Case.status == "active")).scalar_one()
        rows.insert(0, ("active cases", f"{active:,}", "", None))
        db.session.remove()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Build the population, time the watchdog and print the table."""
    parser = argparse.ArgumentParser(description="The watchdog's time per deadline pass (PostgreSQL)")
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=7)
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
