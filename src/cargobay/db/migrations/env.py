"""Alembic environment: the connection comes from ``cargobay.db.migrate`` (never from an ini file)."""

from __future__ import annotations

from alembic import context

from cargobay.db.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `cargobay migrate`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
