"""Garbage collection runs (``gc_runs``) and each registry's policy for untagged manifests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from cargobay.db.models import GcBlobReview, GcManifestReview, GcObjectDeletion, GcOrphan, GcRun, Registry
from cargobay.db.types import utcnow

# -- runs and policy --------------------------------------------------------------------------------


def untagged_policy(session: Session, registry_id: str) -> str | None:
    """The registry's policy for untagged manifests, None when the registry does not exist."""
    return session.scalar(select(Registry.gc_untagged_manifests).where(Registry.id == registry_id))


def set_untagged_policy(session: Session, registry_id: str, policy: str) -> bool:
    result = session.execute(
        update(Registry)
        .where(Registry.id == registry_id)
        .values(gc_untagged_manifests=policy)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def registry_ids(session: Session) -> list[tuple[str, str]]:
    """(id, name) of every registry, in name order."""
    return [(r[0], r[1]) for r in session.execute(select(Registry.id, Registry.name).order_by(Registry.name))]


def add_run(session: Session, run: GcRun) -> GcRun:
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, run_id: int) -> GcRun | None:
    return session.get(GcRun, run_id)


def run_of_job(session: Session, job_id: int) -> GcRun | None:
    return session.scalar(select(GcRun).where(GcRun.job_id == job_id).order_by(GcRun.id.desc()).limit(1))


def runs_of(
    session: Session, registry_id: str | None, limit: int, before_id: int | None = None
) -> list[GcRun]:
    """Newest first."""
    query = select(GcRun).where(
        GcRun.registry_id == registry_id if registry_id is not None else GcRun.registry_id.is_(None)
    )
    if before_id is not None:
        query = query.where(GcRun.id < before_id)
    return list(session.scalars(query.order_by(GcRun.id.desc()).limit(limit)))


def update_run(session: Session, run_id: int, **values: Any) -> None:
    session.execute(
        update(GcRun).where(GcRun.id == run_id).values(**values).execution_options(synchronize_session=False)
    )


def fail_stale_runs(session: Session, registry_id: str | None, heartbeat_before: datetime) -> int:
    """Runs left running by a process that died (no progress written since ``heartbeat_before``)."""
    result = session.execute(
        update(GcRun)
        .where(
            GcRun.registry_id == registry_id if registry_id is not None else GcRun.registry_id.is_(None),
            GcRun.state == "running",
            GcRun.heartbeat_at < heartbeat_before,
        )
        .values(state="failed", error="interrupted: the process running it stopped", finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def last_runs(session: Session) -> list[tuple[str, str, datetime]]:
    """(registry id, state, finished at) of each registry's last finished run (not a dry run)."""
    latest = (
        select(func.max(GcRun.id))
        .where(GcRun.finished_at.is_not(None), GcRun.dry_run.is_(False), GcRun.registry_id.is_not(None))
        .group_by(GcRun.registry_id)
    )
    rows = session.execute(
        select(GcRun.registry_id, GcRun.state, GcRun.finished_at)
        .join(Registry, Registry.id == GcRun.registry_id)
        .where(GcRun.id.in_(latest))
    )
    return [(str(r[0]), r[1], r[2]) for r in rows if r[2] is not None]


def queue_depths(session: Session) -> list[tuple[str, int]]:
    """Rows in each garbage-collection queue (reviews due or not, objects to delete, sightings)."""
    return [
        (name, int(session.scalar(select(func.count()).select_from(model)) or 0))
        for name, model in (
            ("blob_reviews", GcBlobReview),
            ("manifest_reviews", GcManifestReview),
            ("object_deletions", GcObjectDeletion),
            ("orphans", GcOrphan),
        )
    ]


def prune_runs(session: Session, registry_id: str | None, keep: int) -> int:
    """Forget all but the newest ``keep`` runs of a registry."""
    scope = GcRun.registry_id == registry_id if registry_id is not None else GcRun.registry_id.is_(None)
    cutoff = session.scalar(select(GcRun.id).where(scope).order_by(GcRun.id.desc()).offset(keep).limit(1))
    if cutoff is None:
        return 0
    result = session.execute(delete(GcRun).where(scope, GcRun.id <= cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]
