"""Operational `flask` commands: deploy and validate processes, the deadline worker, seed demo data.

Each command is one unit of work (`webapp.transaction.unit_of_work`): it commits once on success and
leaves nothing behind on failure; checks run `read_only`. The deadline worker and the history
generator commit a batch at a time.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from engine.actor import Actor
from engine.clock import SystemClock
from engine.definitions import SourceFile, read_directory
from engine.deploy import deploy_files, validate
from engine.errors import DefinitionError, Problem
from engine.verifier import Settings, deployed_protocol, summary, verify, world_of
from webapp import clock
from webapp.demo.history import generate_history
from webapp.demo.seed import seed_demo
from webapp.extensions import db
from webapp.notifications.mailer import SmtpSettings
from webapp.notifications.worker import PassReport, Worker, run_pass
from webapp.transaction import read_only, unit_of_work

processes_cli = AppGroup("processes", help="Deploy and check PROCESSES_DIR and FORMS_DIR.")
deadlines_cli = AppGroup("deadlines", help="Fire due timers, remind and escalate overdue tasks, send e-mail.")
demo_cli = AppGroup("demo", help="Synthetic demo data.")


def _session() -> Session:
    return db.session()


def _source_files() -> list[SourceFile]:
    """Read the BPMN and DMN files of PROCESSES_DIR and the forms of FORMS_DIR."""
    return read_directory(Path(current_app.config["PROCESSES_DIR"]), Path(current_app.config["FORMS_DIR"]))


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        click.echo(str(problem), err=True)
    click.echo(f"{len(problems)} problem(s): nothing was stored.", err=True)


@processes_cli.command("deploy")
@click.option("--comment", default="", help="Why this deployment (stored with each new version).")
def deploy_command(comment: str) -> None:
    """Deploy the files of PROCESSES_DIR and FORMS_DIR: all or nothing; never over a designer's version.

    A file unchanged since it was last deployed from the files is left alone, so a version deployed
    in the designer since is kept; a file changed both here and in the designer is not deployed.
    """
    files = _source_files()
    if not files:
        click.echo(f"No .bpmn, .dmn or .json files in {current_app.config['PROCESSES_DIR']}.")
    with unit_of_work(_session()) as session:
        try:
            result = deploy_files(session, files, actor=Actor.system("cli").name, now=SystemClock().now(),
                                  comment=comment)
        except DefinitionError as exc:
            _print_problems(exc.problems)
            raise click.exceptions.Exit(1) from exc
    for definition in result.created:
        click.echo(f"created {definition.kind} {definition.key} v{definition.version} ({definition.file_name})")
    for key in result.unchanged:
        click.echo(f"unchanged {key}")
    for file_name in result.kept:
        click.echo(f"unchanged {file_name}: a designer deployed a newer version, which is kept")
    for file_name in result.conflicts:
        click.echo(f"not deployed {file_name}: changed both in the file and in the designer since the last "
                   "deploy from files; download the designer's version, merge, and deploy again", err=True)
    click.echo(f"{len(result.created)} created, {len(result.unchanged)} unchanged"
               + (f", {len(result.conflicts)} not deployed (conflict)." if result.conflicts else "."))


@processes_cli.command("verify")
@click.option("--histories", type=click.IntRange(min=1), default=500, show_default=True,
              help="Generated case histories to play.")
@click.option("--days", type=click.IntRange(min=1), default=365, show_default=True, help="Days of each history.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed: the same seed, the same histories.")
@click.option("--workers", type=click.IntRange(min=1), default=min(os.cpu_count() or 1, 2), show_default=True,
              help="Worker processes.")
def verify_command(histories: int, days: int, seed: int, workers: int) -> None:
    """Verify the deployed protocol on generated histories; exit 1 when an invariant is broken.

    Prints the speed, the levels reached, and for each broken invariant how many histories broke
    it and its shortest event sequence, in Spanish.
    """
    with read_only(_session()) as session:
        files, world = deployed_protocol(session), world_of(session)
    if not files:
        click.echo("No hay ningún protocolo desplegado: ejecute «flask processes deploy».", err=True)
        raise click.exceptions.Exit(1)
    report = verify(files, world, Settings(histories=histories, days=days, seed=seed, workers=workers))
    for line in summary(report):
        click.echo(line)
    if not report.cases:
        click.echo("Ninguna historia pudo abrir un caso: no se ha verificado nada.", err=True)
    if not report.ok or not report.cases:
        raise click.exceptions.Exit(1)


@processes_cli.command("validate")
def validate_command() -> None:
    """Check every file of PROCESSES_DIR and FORMS_DIR as a deployment would, without storing anything."""
    files = _source_files()
    with read_only(_session()) as session:
        problems = validate(session, files).problems
    if problems:
        _print_problems(problems)
        raise click.exceptions.Exit(1)
    click.echo(f"{len(files)} file(s) valid.")


def _parse_now(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO-8601 date-time: {value!r}") from exc
    if when.tzinfo is None:
        raise click.BadParameter("give a UTC offset (2026-03-02T09:00:00Z or +01:00)")
    return when


def _deadline_pass(when: datetime | None = None) -> PassReport:
    config = current_app.config
    return run_pass(_session(), when or clock.now(), smtp=SmtpSettings.from_config(config),
                    base_url=str(config["BASE_URL"]))


@deadlines_cli.command("run")
@click.option("--now", "when", callback=_parse_now, help="Pretend it is this time (ISO-8601 with offset).")
def run_command(when: datetime | None) -> None:
    """Run one pass (timers, reminders and escalations, e-mail) now or at --now; each step commits."""
    report = _deadline_pass(when)
    for error in report.errors:
        click.echo(error, err=True)
    click.echo(report.summary())


@deadlines_cli.command("worker")
@click.option("--interval", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds from the start of one pass to the start of the next.")
def worker_command(interval: float) -> None:
    """Run a pass every --interval seconds until SIGTERM or Ctrl-C (a pass under way finishes first)."""

    def run_once() -> None:
        try:
            report = _deadline_pass()
        finally:
            db.session.remove()  # a fresh session each pass: nothing cached from the last one
        for error in report.errors:
            click.echo(error, err=True)
        if report.busy:
            click.echo(report.summary())

    worker = Worker(run_once, interval)
    worker.install_signal_handlers()
    click.echo(f"Deadline worker started: a pass every {interval:g} s.")
    passes = worker.run()
    click.echo(f"Deadline worker stopped after {passes} pass(es).")


@demo_cli.command("seed")
def seed_command() -> None:
    """Create synthetic demo territories, agencies, users and cases (once)."""
    with unit_of_work(_session()) as session:
        report = seed_demo(session, now=SystemClock().now(), actor=Actor.system("demo"))
    if report.already_seeded and report.mesas:
        click.echo(f"Demo data already present; created the Mesa of {report.mesas} territories.")
        return
    if report.already_seeded:
        click.echo("Demo data already present (territory 'vegas-bajas' exists): nothing to do.")
        return
    click.echo(f"Created {report.territories} territories, {report.agencies} agencies, {report.users} users, "
               f"{report.cases} cases, {report.mesas} Mesas.")
    for note in report.notes:
        click.echo(note)


@demo_cli.command("generate")
@click.option("--cases", type=click.IntRange(min=1), default=40, show_default=True, help="Cases to open.")
@click.option("--days", type=click.IntRange(min=1), default=120, show_default=True, help="Days of history.")
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed: the same seed, the same history.")
def generate_command(cases: int, days: int, seed: int) -> None:
    """Build a history: cases driven through the protocol over the last DAYS days on a simulated clock."""
    until = clock.now()
    with unit_of_work(_session()) as session:
        seeded = seed_demo(session, now=until, actor=Actor.system("demo"))
    if not seeded.already_seeded or seeded.mesas:
        click.echo(f"Seeded the demo: {seeded.territories} territories, {seeded.agencies} agencies, "
                   f"{seeded.users} users, {seeded.cases} cases.")
    with unit_of_work(session):  # the history commits a batch of days at a time: each checkpoint ends one
        report = generate_history(session, cases=cases, days=days, seed=seed, until=until,
                                  checkpoint=session.commit)
    if report.already_present:
        click.echo("A history is already present (a case older than a day exists): nothing to do.")
        return
    click.echo(f"Generated {report.cases} cases over {days} days: {report.completed} steps completed "
               f"({report.completed_late} late), {report.open_late} open steps overdue, {report.incidents} "
               f"incidents, {report.level_changes} level changes, {report.timers_fired} timers fired.")
    for note in report.notes:
        click.echo(note, err=True)
