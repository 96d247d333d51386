"""job queue: result, started_at, lease index

Revision ID: j1_jobs
Revises: d2e054a7564c
Create Date: 2026-11-28 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cargobay.db.types

revision = "j1_jobs"
down_revision = "d2e054a7564c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("result", sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column("started_at", cargobay.db.types.UtcDateTime(), nullable=True))
        batch_op.create_index("ix_jobs_lease", ["status", "lease_expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_lease")
        batch_op.drop_column("started_at")
        batch_op.drop_column("result")
