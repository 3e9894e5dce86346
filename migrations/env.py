"""Alembic environment for Coordina (Flask-Migrate): the metadata is engine.db.Base's."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy import types as sqltypes

import engine.models  # noqa: F401 - registers every table on Base.metadata
from engine.db import UTCDateTime

config = context.config

# Configure logging from alembic.ini only when nobody else did (a test run or an app keeps theirs).
if config.config_file_name is not None and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def get_engine():
    """Return the app's engine (configured by engine.db.configure_engine)."""
    return current_app.extensions["migrate"].db.engine


def get_metadata():
    """Return the metadata every Coordina table is declared on."""
    return current_app.extensions["migrate"].db.metadata


def render_item(type_, obj, autogen_context):
    """Render the engine's column types as plain SQLAlchemy types: migrations never import app code."""
    if type_ != "type":
        return False
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(obj, sqltypes.JSON) and "postgresql" in getattr(obj, "_variant_mapping", {}):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')"
    return False


def configure_args():
    """Return the options shared by online runs and by `compare_metadata` in tests."""
    return {
        "target_metadata": get_metadata(),
        # SQLite alters tables by copying them; batch mode lets the same migration run on both databases.
        "render_as_batch": True,
        "render_item": render_item,
        "compare_type": True,
    }


def run_migrations_offline():
    """Emit SQL for the migrations instead of running them (`flask db upgrade --sql`)."""
    url = get_engine().url.render_as_string(hide_password=False)
    context.configure(url=url, literal_binds=True, **configure_args())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run the migrations on the app's database."""

    def process_revision_directives(context, revision, directives):
        # Do not write an empty revision when autogenerate finds no change.
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = {**configure_args(), **current_app.extensions["migrate"].configure_args}
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    with get_engine().connect() as connection:
        context.configure(connection=connection, **conf_args)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
