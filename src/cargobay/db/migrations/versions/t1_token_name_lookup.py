"""token logins by name: one index on (name, password_lookup, created_at)

Revision ID: t1_token_lookup
Revises: g1_gc
Create Date: 2026-12-07 18:30:00

A path-style login finds its token by name and password lookup, and a token made before lookups
existed by name among those without one, oldest first. With an index on the name alone both read
every token of that name (a name like ``ci`` that 50,000 registries use: 27 ms a token request),
so the name index becomes (name, password_lookup, created_at): one range for either question.
"""

from __future__ import annotations

from alembic import op

revision = "t1_token_lookup"
down_revision = "g1_gc"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = ["name", "password_lookup", "created_at"]
    op.create_index("ix_tokens_name_lookup", "tokens", columns, unique=False)
    op.drop_index("ix_tokens_name", table_name="tokens")


def downgrade() -> None:
    op.create_index("ix_tokens_name", "tokens", ["name"], unique=False)
    op.drop_index("ix_tokens_name_lookup", table_name="tokens")
