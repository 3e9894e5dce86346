"""`flask agencies ...` and `flask users ...`: the same operations as the admin pages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click
from flask.cli import AppGroup
from sqlalchemy import select

from engine.models import Agency, UserAccount
from engine.models.user import ROLES
from webapp.auth.mfa import reset_mfa
from webapp.auth.operations import AccountError, create_agency, create_user, reset_password, set_active, set_roles
from webapp.extensions import db
from webapp.transaction import unit_of_work

agencies_cli = AppGroup("agencies", help="Agencies and the territories they serve.")
users_cli = AppGroup("users", help="User accounts.")


@agencies_cli.command("create")
@click.argument("name")
@click.option("--kind", required=True, help="agency kind code, e.g. social_services")
@click.option("--territory", "territories", multiple=True, required=True, help="territory code (repeatable)")
def create_agency_command(name: str, kind: str, territories: tuple[str, ...]) -> None:
    """Create an agency serving territories."""
    with unit_of_work(db.session()) as session, _refusal_as_click_error():
        agency = create_agency(session, name=name, kind=kind, territory_codes=territories)
    click.echo(f"Agency {agency.id} created: {agency.name} ({agency.kind}).")


@agencies_cli.command("list")
def list_agencies_command() -> None:
    """List agencies."""
    for agency in db.session.execute(select(Agency).order_by(Agency.id)).scalars():
        state = "" if agency.active else " (inactive)"
        codes = ", ".join(t.code for t in agency.territories)
        click.echo(f"{agency.id}\t{agency.kind}\t{agency.name}\t{codes}{state}")


@users_cli.command("create")
@click.argument("username")
@click.option("--name", "display_name", required=True)
@click.option("--agency-id", type=int, default=None)
@click.option("--role", "roles", multiple=True, type=click.Choice(ROLES), default=("professional",))
@click.option("--email", default=None)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="asked for when not given; never put it on a shared command line")
def create_user_command(
    username: str, display_name: str, agency_id: int | None, roles: tuple[str, ...], email: str | None,
    password: str,
) -> None:
    """Create a user."""
    with unit_of_work(db.session()) as session, _refusal_as_click_error():
        user = create_user(session, username=username, display_name=display_name, agency_id=agency_id,
                           roles=roles, password=password, email=email)
    click.echo(f"User {user.id} created: {user.username}.")


@contextmanager
def _refusal_as_click_error() -> Iterator[None]:
    """Report a refused account operation as the command's error (the unit of work rolls it back)."""
    try:
        yield
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc


def _user(username: str) -> UserAccount:
    user = db.session.execute(select(UserAccount).where(UserAccount.username == username)).scalar_one_or_none()
    if user is None:
        raise click.ClickException(f"no user named {username!r}")
    return user


@users_cli.command("disable")
@click.argument("username")
def disable_user_command(username: str) -> None:
    """Disable a user: they can no longer sign in, and their sessions and tokens end."""
    with unit_of_work(db.session()) as session:
        set_active(session, _user(username), False)
    click.echo(f"User {username} disabled.")


@users_cli.command("enable")
@click.argument("username")
def enable_user_command(username: str) -> None:
    """Enable a disabled user again."""
    with unit_of_work(db.session()) as session:
        set_active(session, _user(username), True)
    click.echo(f"User {username} enabled.")


@users_cli.command("reset-password")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def reset_password_command(username: str, password: str) -> None:
    """Set a new password (and unlock the account)."""
    with unit_of_work(db.session()) as session, _refusal_as_click_error():
        reset_password(session, _user(username), password)
    click.echo(f"Password of {username} reset.")


@users_cli.command("set-roles")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(ROLES), help="Repeat for each role.")
def set_roles_command(username: str, roles: tuple[str, ...]) -> None:
    """Give a user other roles (her sessions and tokens end: she signs in again with the new ones)."""
    with unit_of_work(db.session()) as session, _refusal_as_click_error():
        set_roles(session, _user(username), roles)
    click.echo(f"Roles of {username}: {', '.join(sorted(set(roles)))}.")


@users_cli.command("reset-mfa")
@click.argument("username")
def reset_mfa_command(username: str) -> None:
    """Remove a user's second factor (audited): she enrols again at her next sign-in if her role requires it."""
    with unit_of_work(db.session()) as session:
        reset_mfa(session, _user(username), now=datetime.now(UTC))
    click.echo(f"Second factor of {username} reset.")
