"""Queueing scans: the job kinds of vulnerability scanning and the hooks other services call in their
own transactions (a push, a registry that turns scanning on).

A manifest's scan is one ``scan.manifest`` job (deduplicated per manifest while queued or running);
its ``scan_status`` says ``pending`` from the push's transaction on, so the API never shows a result
that was not computed. Repository names the scanner refuses (shorter than 2 or longer than 255
characters, as the IONOS service) are ``skipped`` at once, with no scan time.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargobay.db.models import Registry
from cargobay.db.queries import scans
from cargobay.jobs.queue import enqueue

SCAN_JOB = "scan.manifest"
REGISTRY_JOB = "scan.registry"
BACKLOG_JOB = "scan.backlog"
SBOM_JOB = "scan.sbom"
MIN_NAME, MAX_NAME = 2, 255


def scannable_name(repository: str) -> bool:
    return MIN_NAME <= len(repository) <= MAX_NAME


def enqueue_scan(session: Session, manifest_id: int, *, delay_key: str = "") -> None:
    enqueue(session, SCAN_JOB, {"manifest_id": manifest_id}, dedupe_key=f"scan:{manifest_id}{delay_key}")


def queue_manifest(session: Session, manifest_id: int, repository: str) -> str:
    """Mark a manifest pending and enqueue its scan, or skip it for its repository name."""
    if not scannable_name(repository):
        scans.set_status(session, [manifest_id], scans.SKIPPED, None)
        return scans.SKIPPED
    scans.set_status(session, [manifest_id], scans.PENDING, None)
    enqueue_scan(session, manifest_id)
    return scans.PENDING


def on_push(
    session: Session,
    registry_id: str,
    repository: str,
    repository_id: int,
    manifest_id: int,
    status: str | None,
    has_subject: bool,
) -> None:
    """In the push's transaction: the repository's last pushed artifact, and the scan of a new manifest.

    Referrers (signatures, attestations: manifests with a subject) describe another artifact and do
    not become the repository's last pushed one.
    """
    if not has_subject:
        scans.set_last_pushed(session, repository_id, manifest_id)
    if status is not None:
        return  # queued, scanned or skipped before: a re-push changes no content
    scanning = session.scalar(select(Registry.vulnerability_scanning).where(Registry.id == registry_id))
    if scanning:
        queue_manifest(session, manifest_id, repository)


def on_scanning_enabled(session: Session, registry_id: str) -> None:
    """Scanning was switched on: scan what the registry already holds (in a job, page by page)."""
    enqueue(session, REGISTRY_JOB, {"registry_id": registry_id}, dedupe_key=f"scan-registry:{registry_id}")
