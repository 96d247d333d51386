"""Alembic migrations produce exactly the models' schema, on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from cargobay.db.engine import Database
from cargobay.db.migrate import HEAD, MIGRATIONS, alembic_config, at_head, upgrade
from cargobay.db.models import Base


def _schema_diff(db: Database) -> list[Any]:
    def skip_alembic_version(name: str | None, type_: str, parent_names: Any) -> bool:
        return not (type_ == "table" and name == "alembic_version")

    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": skip_alembic_version}
        )
        return list(compare_metadata(context, Base.metadata))


def test_migrations_produce_the_models_schema(db: Database) -> None:
    assert _schema_diff(db) == []


def test_database_is_at_the_single_head(db: Database) -> None:
    heads = ScriptDirectory.from_config(alembic_config(db.engine)).get_heads()
    assert len(heads) == 1, f"migrations must form one line, found heads {heads}"
    assert heads == [HEAD], "a new migration moves cargobay.db.migrate.HEAD to its revision"
    assert at_head(db.engine)
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == heads[0]


def test_upgrade_again_is_a_no_op(db: Database) -> None:
    upgrade(db.engine)
    assert _schema_diff(db) == []


def test_job_revision_downgrades_and_upgrades(db: Database) -> None:
    from alembic import command

    config = alembic_config(db.engine)
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "d2e054a7564c")
    columns = {c["name"] for c in inspect(db.engine).get_columns("jobs")}
    assert "result" not in columns and "started_at" not in columns
    upgrade(db.engine)
    assert _schema_diff(db) == []


def test_migrations_live_in_the_package() -> None:
    assert (MIGRATIONS / "versions" / "j1_jobs_queue.py").is_file()
