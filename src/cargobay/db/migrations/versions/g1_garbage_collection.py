"""garbage collection: review queues, object deletions, sweep sightings, runs, untagged policy

Revision ID: g1_gc
Revises: s1_scanning
Create Date: 2026-12-08 15:00:00

Every blob and manifest that exists at the upgrade is queued for review as changed now: blobs left
unreferenced by repository deletes of earlier releases are collected once the grace period has passed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cargobay.db.types
from cargobay.db.engine import timestamp_binder
from cargobay.db.types import utcnow

revision = "g1_gc"
down_revision = "s1_scanning"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("gc_untagged_manifests", sa.String(length=16), server_default="keep", nullable=False)
        )
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.create_index("ix_blobs_object_key", ["object_key"], unique=False)

    op.create_table(
        "gc_blob_reviews",
        sa.Column("blob_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("registry_id", sa.String(length=36), nullable=False),
        sa.Column("changed_at", cargobay.db.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("blob_id", name=op.f("pk_gc_blob_reviews")),
    )
    op.create_index(
        "ix_gc_blob_reviews_due", "gc_blob_reviews", ["registry_id", "changed_at", "blob_id"], unique=False
    )
    op.create_table(
        "gc_manifest_reviews",
        sa.Column("manifest_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("registry_id", sa.String(length=36), nullable=False),
        sa.Column("changed_at", cargobay.db.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("manifest_id", name=op.f("pk_gc_manifest_reviews")),
    )
    op.create_index(
        "ix_gc_manifest_reviews_due",
        "gc_manifest_reviews",
        ["registry_id", "changed_at", "manifest_id"],
        unique=False,
    )
    op.create_table(
        "gc_object_deletions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("registry_id", sa.String(length=36), nullable=False),
        sa.Column("object_key", sa.String(length=300), nullable=False),
        sa.Column("staged", sa.Boolean(), nullable=False),
        sa.Column("writer_state", sa.Text(), nullable=True),
        sa.Column("created_at", cargobay.db.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gc_object_deletions")),
    )
    op.create_index(
        "ix_gc_object_deletions_registry", "gc_object_deletions", ["registry_id", "id"], unique=False
    )
    op.create_table(
        "gc_orphans",
        sa.Column("object_key", sa.String(length=300), nullable=False),
        sa.Column("staged", sa.Boolean(), nullable=False),
        sa.Column("namespace", sa.String(length=300), nullable=False),
        sa.Column("first_seen_at", cargobay.db.types.UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", cargobay.db.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("object_key", "staged", name=op.f("pk_gc_orphans")),
    )
    op.create_index("ix_gc_orphans_namespace", "gc_orphans", ["namespace", "last_seen_at"], unique=False)
    op.create_table(
        "gc_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("registry_id", sa.String(length=36), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=254), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("grace_seconds", sa.BigInteger(), nullable=False),
        sa.Column("untagged_manifests", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=32), nullable=True),
        sa.Column("done", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("eta_seconds", sa.Float(), nullable=True),
        sa.Column("candidates", sa.BigInteger(), nullable=False),
        sa.Column("blobs_freed", sa.BigInteger(), nullable=False),
        sa.Column("bytes_freed", sa.BigInteger(), nullable=False),
        sa.Column("manifests_deleted", sa.BigInteger(), nullable=False),
        sa.Column("uploads_expired", sa.BigInteger(), nullable=False),
        sa.Column("objects_deleted", sa.BigInteger(), nullable=False),
        sa.Column("orphans_found", sa.BigInteger(), nullable=False),
        sa.Column("orphans_deleted", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", cargobay.db.types.UtcDateTime(), nullable=False),
        sa.Column("started_at", cargobay.db.types.UtcDateTime(), nullable=True),
        sa.Column("finished_at", cargobay.db.types.UtcDateTime(), nullable=True),
        sa.Column("heartbeat_at", cargobay.db.types.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["registries.id"],
            name=op.f("fk_gc_runs_registry_id_registries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gc_runs")),
    )
    op.create_index("ix_gc_runs_registry", "gc_runs", ["registry_id", "id"], unique=False)
    op.create_index(op.f("ix_gc_runs_job_id"), "gc_runs", ["job_id"], unique=False)

    bind = op.get_bind()
    now = timestamp_binder(bind.dialect)(utcnow())
    bind.execute(
        sa.text(
            "INSERT INTO gc_blob_reviews (blob_id, registry_id, changed_at) "
            "SELECT id, registry_id, :now FROM blobs"
        ),
        {"now": now},
    )
    bind.execute(
        sa.text(
            "INSERT INTO gc_manifest_reviews (manifest_id, registry_id, changed_at) "
            "SELECT id, registry_id, :now FROM manifests"
        ),
        {"now": now},
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_gc_runs_job_id"), table_name="gc_runs")
    op.drop_index("ix_gc_runs_registry", table_name="gc_runs")
    op.drop_table("gc_runs")
    op.drop_index("ix_gc_orphans_namespace", table_name="gc_orphans")
    op.drop_table("gc_orphans")
    op.drop_index("ix_gc_object_deletions_registry", table_name="gc_object_deletions")
    op.drop_table("gc_object_deletions")
    op.drop_index("ix_gc_manifest_reviews_due", table_name="gc_manifest_reviews")
    op.drop_table("gc_manifest_reviews")
    op.drop_index("ix_gc_blob_reviews_due", table_name="gc_blob_reviews")
    op.drop_table("gc_blob_reviews")
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.drop_index("ix_blobs_object_key")
    with op.batch_alter_table("registries", schema=None) as batch_op:
        batch_op.drop_column("gc_untagged_manifests")
