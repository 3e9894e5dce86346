"""`flask mesa create`: give a territory its Mesa de Coordinación (the same operation the demo seed uses)."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from engine.clock import SystemClock
from engine.errors import ConflictError
from engine.models import Territory
from webapp.extensions import db
from webapp.mesa.schedule import create_mesa
from webapp.mesa.settings import MAX_INTERVAL_DAYS
from webapp.transaction import unit_of_work

mesa_cli = AppGroup("mesa", help="The Mesa de Coordinación of each territory.")


@mesa_cli.command("create")
@click.argument("territory_code")
@click.option("--interval", type=click.IntRange(min=1, max=MAX_INTERVAL_DAYS), default=15, show_default=True,
              help="Days between ordinary meetings.")
def create_command(territory_code: str, interval: int) -> None:
    """Create the Mesa of TERRITORY_CODE: its mesa_coordinator agency coordinates, the other agencies sit at it."""
    with unit_of_work(db.session()) as session:
        territory = session.execute(select(Territory).where(Territory.code == territory_code)).scalar_one_or_none()
        if territory is None:
            raise click.ClickException(f"no territory with code {territory_code!r}")
        try:
            mesa = create_mesa(session, territory.id, now=SystemClock().now(), interval_days=interval)
        except ConflictError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"Created {mesa.name} (id {mesa.id}); first meeting planned.")
