"""Schema migrations with Alembic, run at start and by ``cargobay migrate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision (tests/integration/db/test_migrations.py checks it is Alembic's one head): a
# database already there is recognised by one query, without importing Alembic (a CLI command's
# start-up).
HEAD = "t1_token_lookup"


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe to run concurrently from several processes."""
    if at_head(engine):
        return
    from alembic import command

    config = alembic_config(engine)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Serialise concurrent starters (several workers or nodes) on one advisory lock.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(724201)")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def revision(engine: Engine, message: str) -> None:
    """Developer helper: autogenerate a new revision against a database at head."""
    from alembic import command

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


def has_schema(engine: Engine) -> bool:
    """Whether the database was migrated at least once (it has Alembic's version table)."""
    with engine.connect() as connection:
        return inspect(connection).has_table("alembic_version")


def at_head(engine: Engine) -> bool:
    """Whether the schema is at ``HEAD`` (False for an empty or older database)."""
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
    except DBAPIError:  # no version table yet
        return False
