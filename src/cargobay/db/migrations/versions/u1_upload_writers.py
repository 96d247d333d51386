"""uploads keep their storage writer's state and their running digest

Revision ID: u1_upload_writers
Revises: a2_signing_keys

Rows of uploads in progress at the upgrade get neither: an upload that had received bytes then
answers BLOB_UPLOAD_UNKNOWN (its staged bytes are dropped) and the client starts it again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "u1_upload_writers"
down_revision = "a2_signing_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("storage_state", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("hash_state", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_column("hash_state")
        batch_op.drop_column("storage_state")
