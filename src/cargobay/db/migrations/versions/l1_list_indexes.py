"""management lists: an index for each documented order of repositories, artifacts and tokens

Revision ID: l1_lists
Revises: a1_access
Create Date: 2026-12-07 16:00:00

Each list reads its page from one index (scope, key, tiebreak) instead of sorting every row; the
single-column ix_manifests_registry_id becomes (registry_id, id), which also serves the id order.
"""

from __future__ import annotations

from alembic import op

revision = "l1_lists"
down_revision = "u1_upload_writers"
branch_labels = None
depends_on = None

INDEXES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ix_tokens_listing", "tokens", ("registry_id", "name", "expiry_date")),
    ("ix_repositories_last_push", "repositories", ("registry_id", "last_pushed_at", "name")),
    ("ix_repositories_last_pull", "repositories", ("registry_id", "last_pulled_at", "name")),
    ("ix_repositories_pulls", "repositories", ("registry_id", "pull_count", "name")),
    ("ix_repositories_pushes", "repositories", ("registry_id", "push_count", "name")),
    ("ix_manifests_registry_order", "manifests", ("registry_id", "id")),
    ("ix_manifests_registry_push", "manifests", ("registry_id", "pushed_at", "id")),
    ("ix_manifests_registry_pull", "manifests", ("registry_id", "pulled_at", "id")),
    ("ix_manifests_registry_pulls", "manifests", ("registry_id", "pull_count", "id")),
    ("ix_manifests_registry_pushes", "manifests", ("registry_id", "push_count", "id")),
    ("ix_manifests_repository_order", "manifests", ("repository_id", "id")),
    ("ix_manifests_repository_push", "manifests", ("repository_id", "pushed_at", "id")),
    ("ix_manifests_repository_pull", "manifests", ("repository_id", "pulled_at", "id")),
    ("ix_manifests_repository_pulls", "manifests", ("repository_id", "pull_count", "id")),
    ("ix_manifests_repository_pushes", "manifests", ("repository_id", "push_count", "id")),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, list(columns), unique=False)
    op.drop_index("ix_manifests_registry_id", table_name="manifests")


def downgrade() -> None:
    op.create_index("ix_manifests_registry_id", "manifests", ["registry_id"], unique=False)
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
