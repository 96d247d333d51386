"""access seams: token password lookup, token name index, GC schedule start, job concurrency keys

Revision ID: a1_access
Revises: e1_encryption
Create Date: 2026-12-07 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cargobay.db.types

revision = "a1_access"
down_revision = "e1_encryption"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        # SHA-256 of the (random, 192-bit) token password: finds the one token a path-style login
        # means without trying argon2 on every token of that name. NULL for tokens made before.
        batch_op.add_column(sa.Column("password_lookup", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_tokens_password_lookup", ["password_lookup"], unique=False)
        batch_op.create_index("ix_tokens_name", ["name"], unique=False)
    with op.batch_alter_table("registries", schema=None) as batch_op:
        # When the GC schedule was last set (windows before it are not "missed"), and the next window
        # the scheduler will enqueue a collection for (NULL: not worked out yet).
        batch_op.add_column(sa.Column("gc_schedule_since", cargobay.db.types.UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("gc_next_window_at", cargobay.db.types.UtcDateTime(), nullable=True))
        batch_op.create_index("ix_registries_gc_next_window_at", ["gc_next_window_at"], unique=False)
        # A tenant's registries in name order (the path-style catalog pages through them).
        batch_op.create_index("ix_registries_contract_name", ["contract_number", "name"], unique=False)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        # Jobs sharing a key never run at the same time (one GC per registry, one run of a periodic kind).
        batch_op.add_column(sa.Column("concurrency_key", sa.String(length=200), nullable=True))
        batch_op.create_index("ix_jobs_concurrency", ["concurrency_key", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_concurrency")
        batch_op.drop_column("concurrency_key")
    with op.batch_alter_table("registries", schema=None) as batch_op:
        batch_op.drop_index("ix_registries_contract_name")
        batch_op.drop_index("ix_registries_gc_next_window_at")
        batch_op.drop_column("gc_next_window_at")
        batch_op.drop_column("gc_schedule_since")
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_tokens_name")
        batch_op.drop_index("ix_tokens_password_lookup")
        batch_op.drop_column("password_lookup")
