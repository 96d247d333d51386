"""encryption at rest: the encryption_state row

Revision ID: e1_encryption
Revises: m1_mgmt
Create Date: 2026-11-28 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cargobay.db.types

revision = "e1_encryption"
down_revision = "m1_mgmt"
branch_labels = None
depends_on = None


def upgrade() -> None:
    state = op.create_table(
        "encryption_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("active_master_key_id", sa.String(length=32), nullable=True),
        sa.Column("plaintext_may_exist", sa.Boolean(), nullable=False),
        sa.Column("updated_at", cargobay.db.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_encryption_state")),
    )
    # Everything stored before this revision was stored in plaintext (nothing sealed yet).
    has_data = op.get_bind().execute(sa.text("SELECT 1 FROM registries LIMIT 1")).first() is not None
    op.bulk_insert(
        state,
        [
            {
                "id": 1,
                "active_master_key_id": None,
                "plaintext_may_exist": has_data,
                "updated_at": cargobay.db.types.utcnow(),
            }
        ],
    )


def downgrade() -> None:
    op.drop_table("encryption_state")
