"""Schema migrations with Alembic, run at start and by ``cargobay migrate``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe to run concurrently from several processes."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Serialise concurrent starters (several workers or nodes) on one advisory lock.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(724201)")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def revision(engine: Engine, message: str) -> None:
    """Developer helper: autogenerate a new revision against a database at head."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


def has_schema(engine: Engine) -> bool:
    """Whether the database was migrated at least once (it has Alembic's version table)."""
    with engine.connect() as connection:
        return inspect(connection).has_table("alembic_version")
