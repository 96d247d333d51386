"""management API: issued bearer tokens

Revision ID: m1_mgmt
Revises: j1_jobs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cargobay.db.types

revision = "m1_mgmt"
down_revision = "j1_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("contract_number", sa.BigInteger(), nullable=False),
        sa.Column("created_at", cargobay.db.types.UtcDateTime(), nullable=False),
        sa.Column("expires_at", cargobay.db.types.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_number"],
            ["contracts.number"],
            name=op.f("fk_api_tokens_contract_number_contracts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_tokens_contract_number"), ["contract_number"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_tokens_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_expires_at"))
        batch_op.drop_index(batch_op.f("ix_api_tokens_contract_number"))
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))
    op.drop_table("api_tokens")
