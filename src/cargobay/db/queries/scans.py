"""Scan state and results: layer and image inventories (per registry), the key index of inventories,
findings and the flat summary columns of manifests and repositories that the lists order by.

A manifest's findings are replaced whole by a scan, or per vulnerability by a rescan; its summary
(status, time, counts, score, highest severity) is written in the same transaction, and so is the
``last_severity`` of its repository when it is the repository's last pushed artifact.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import product
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Text,
    and_,
    bindparam,
    cast,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cargobay.db.engine import RawTx
from cargobay.db.models import (
    AdvisoryChange,
    Blob,
    Manifest,
    ManifestChild,
    Registry,
    Repository,
    ScanInventory,
    ScanInventoryKey,
    ScanLayer,
    Tag,
    table_of,
)
from cargobay.db.queries.findings import Summary
from cargobay.db.types import utcnow
from cargobay.domain import jsontext

PENDING = "pending"
SCANNED = "scanned"
FAILED = "failed"
UNSUPPORTED = "unsupported"
SKIPPED = "skipped"
_CHUNK = 400
FEW_KEYS = 400  # changed keys looked up in each inventory by primary key; more: each inventory read once


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- what a scan works on ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScanTarget:
    id: int
    registry_id: str
    repository_id: int
    repository: str
    digest: str
    media_type: str
    body: bytes  # as stored (sealed when encryption is on)
    subject: str | None
    status: str | None
    scanning: bool  # the registry's feature flag


def target(session: Session, manifest_id: int) -> ScanTarget | None:
    row = session.execute(
        select(
            Manifest.id,
            Manifest.registry_id,
            Manifest.repository_id,
            Repository.name,
            Manifest.digest,
            Manifest.media_type,
            Manifest.body,
            Manifest.subject_digest,
            Manifest.scan_status,
            Registry.vulnerability_scanning,
        )
        .join(Repository, Repository.id == Manifest.repository_id)
        .join(Registry, Registry.id == Manifest.registry_id)
        .where(Manifest.id == manifest_id)
    ).first()
    if row is None:
        return None
    return ScanTarget(
        row[0], row[1], row[2], row[3], row[4], row[5], bytes(row[6]), row[7], row[8], bool(row[9])
    )


def children(
    session: Session, repository_id: int, digests: Sequence[str]
) -> dict[str, tuple[int, str | None]]:
    """Manifests of the repository by digest: (id, scan status)."""
    found: dict[str, tuple[int, str | None]] = {}
    for chunk in _chunks(list(digests)):
        for manifest_id, digest, status in session.execute(
            select(Manifest.id, Manifest.digest, Manifest.scan_status).where(
                Manifest.repository_id == repository_id, Manifest.digest.in_(chunk)
            )
        ):
            found[digest] = (manifest_id, status)
    return found


def parents(session: Session, repository_id: int, digest: str) -> list[int]:
    """The indexes of the repository that list ``digest`` as a child."""
    return list(
        session.scalars(
            select(Manifest.id)
            .join(ManifestChild, ManifestChild.manifest_id == Manifest.id)
            .where(ManifestChild.child_digest == digest, Manifest.repository_id == repository_id)
        )
    )


def child_digests(session: Session, manifest_id: int) -> list[str]:
    return list(
        session.scalars(
            select(ManifestChild.child_digest)
            .where(ManifestChild.manifest_id == manifest_id)
            .order_by(ManifestChild.child_digest)
        )
    )


def registry_of(session: Session, manifest_id: int) -> str:
    return str(session.scalar(select(Manifest.registry_id).where(Manifest.id == manifest_id)))


def _upsert(session: Session, table: Any, values: dict[str, Any], keys: list[str]) -> None:
    insert_of = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert_of(table).values(**values)
    changes = {k: statement.excluded[k] for k in values if k not in keys}
    session.execute(statement.on_conflict_do_update(index_elements=keys, set_=changes))


def blob_key(session: Session, registry_id: str, digest: str) -> str | None:
    return session.scalar(
        select(Blob.object_key).where(Blob.registry_id == registry_id, Blob.digest == digest)
    )


# -- inventories ---------------------------------------------------------------------------------


def layer(session: Session, registry_id: str, digest: str) -> bytes | None:
    body = session.scalar(
        select(ScanLayer.body).where(ScanLayer.registry_id == registry_id, ScanLayer.digest == digest)
    )
    return bytes(body) if body is not None else None


def layers(session: Session, registry_id: str, digests: Sequence[str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for chunk in _chunks(list(dict.fromkeys(digests))):
        for digest, body in session.execute(
            select(ScanLayer.digest, ScanLayer.body).where(
                ScanLayer.registry_id == registry_id, ScanLayer.digest.in_(chunk)
            )
        ):
            found[digest] = bytes(body)
    return found


def save_layer(session: Session, registry_id: str, digest: str, body: bytes) -> None:
    """Store (or replace: a cache of an older format) a layer inventory."""
    _upsert(
        session,
        ScanLayer,
        {"registry_id": registry_id, "digest": digest, "body": body, "created_at": utcnow()},
        ["registry_id", "digest"],
    )


def inventory(session: Session, registry_id: str, digest: str) -> bytes | None:
    body = session.scalar(
        select(ScanInventory.body).where(
            ScanInventory.registry_id == registry_id, ScanInventory.digest == digest
        )
    )
    return bytes(body) if body is not None else None


def save_inventory(
    session: Session,
    registry_id: str,
    digest: str,
    body: bytes,
    packages: int,
    os_name: str,
    keys: dict[tuple[str, str], list[dict[str, Any]]],
) -> None:
    """Store an image inventory with its key index (replacing any older one of the digest).

    The upsert comes first: concurrent writers of one digest wait on its row before touching the keys.
    """
    _upsert(
        session,
        ScanInventory,
        {
            "registry_id": registry_id,
            "digest": digest,
            "body": body,
            "sbom": None,
            "packages": packages,
            "os": os_name[:200],
            "created_at": utcnow(),
        },
        ["registry_id", "digest"],
    )
    tx = RawTx.of(session)  # a thousand rows: the ORM's bulk insert cost a tenth of a warm scan
    tx.run("DELETE FROM scan_inventory_keys WHERE registry_id = ? AND digest = ?", registry_id, digest)
    tx.many(
        "INSERT INTO scan_inventory_keys (registry_id, digest, ecosystem, name, packages) "
        "VALUES (?, ?, ?, ?, ?)",
        [(registry_id, digest, e, n, jsontext.dumps_text(p)) for (e, n), p in keys.items()],
    )


def sbom(session: Session, registry_id: str, digest: str) -> bytes | None:
    body = session.scalar(
        select(ScanInventory.sbom).where(
            ScanInventory.registry_id == registry_id, ScanInventory.digest == digest
        )
    )
    return bytes(body) if body is not None else None


def save_sbom(session: Session, registry_id: str, digest: str, body: bytes) -> None:
    session.execute(
        update(ScanInventory)
        .where(ScanInventory.registry_id == registry_id, ScanInventory.digest == digest)
        .values(sbom=body)
    )


# -- summaries -----------------------------------------------------------------------------------


def set_status(
    session: Session, manifest_ids: Sequence[int], status: str, scanned_at: datetime | None
) -> None:
    """A result without counts (failed, unsupported, skipped) or a status change (pending)."""
    for chunk in _chunks(list(manifest_ids)):
        session.execute(
            update(Manifest)
            .where(Manifest.id.in_(chunk))
            .values(
                scan_status=status,
                scanned_at=scanned_at,
                vuln_max_severity=None if status == PENDING else 0,  # 0: unknown
                vuln_total_count=None,
                vuln_fixable_count=None,
                vuln_total_score=None,
            )
            .execution_options(synchronize_session=False)
        )
        _follow_repositories(session, chunk)


def save_summary(session: Session, manifest_id: int, summary: Summary) -> None:
    session.execute(
        update(Manifest)
        .where(Manifest.id == manifest_id)
        .values(
            scan_status=summary.status,
            scanned_at=summary.scanned_at,
            scan_db_version=summary.db_version,
            vuln_max_severity=summary.max_severity,
            vuln_total_count=summary.total,
            vuln_fixable_count=summary.fixable,
            vuln_total_score=summary.score,
        )
        .execution_options(synchronize_session=False)
    )
    _follow_repositories(session, [manifest_id])


def save_summaries(session: Session, summaries: dict[int, Summary]) -> None:
    """``save_summary`` for many manifests: one executemany."""
    if not summaries:
        return
    table = table_of(Manifest)
    statement = (
        update(table)
        .where(table.c.id == bindparam("manifest"))
        .values(
            scan_status=bindparam("status"),
            scanned_at=bindparam("scanned_at"),
            scan_db_version=bindparam("db_version"),
            vuln_max_severity=bindparam("max_severity"),
            vuln_total_count=bindparam("total"),
            vuln_fixable_count=bindparam("fixable"),
            vuln_total_score=bindparam("score"),
        )
    )
    session.execute(
        statement,
        [
            {
                "manifest": manifest_id,
                "status": s.status,
                "scanned_at": s.scanned_at,
                "db_version": s.db_version,
                "max_severity": s.max_severity,
                "total": s.total,
                "fixable": s.fixable,
                "score": s.score,
            }
            for manifest_id, s in summaries.items()
        ],
    )
    for chunk in _chunks(list(summaries)):
        _follow_repositories(session, chunk)


def parents_of(session: Session, children: Sequence[tuple[int, str]]) -> list[tuple[int, int]]:
    """(index id, repository id) of the indexes that list one of these (repository id, digest) children."""
    wanted = set(children)
    found: set[tuple[int, int]] = set()
    for chunk in _chunks(sorted({d for _, d in wanted})):
        for parent_id, repository_id, digest in session.execute(
            select(Manifest.id, Manifest.repository_id, ManifestChild.child_digest)
            .join(ManifestChild, ManifestChild.manifest_id == Manifest.id)
            .where(ManifestChild.child_digest.in_(chunk))
        ):
            if (repository_id, digest) in wanted:
                found.add((parent_id, repository_id))
    return sorted(found)


def _follow_repositories(session: Session, manifest_ids: Sequence[int]) -> None:
    """Repositories whose last pushed artifact is one of these take its severity."""
    severity = (
        select(Manifest.vuln_max_severity).where(Manifest.id == Repository.last_manifest_id).scalar_subquery()
    )
    session.execute(
        update(Repository)
        .where(Repository.last_manifest_id.in_(list(manifest_ids)))
        .values(last_severity=severity)
        .execution_options(synchronize_session=False)
    )


def set_last_pushed(session: Session, repository_id: int, manifest_id: int) -> None:
    """The push path: this manifest is now the repository's last pushed artifact."""
    severity = select(Manifest.vuln_max_severity).where(Manifest.id == manifest_id).scalar_subquery()
    session.execute(
        update(Repository)
        .where(Repository.id == repository_id)
        .values(last_manifest_id=manifest_id, last_severity=severity)
        .execution_options(synchronize_session=False)
    )


def recompute_last_pushed(session: Session, repository_id: int) -> None:
    """After a delete: the most recently pushed remaining artifact (referrers aside) becomes the last."""
    latest = session.execute(
        select(Manifest.id, Manifest.vuln_max_severity)
        .where(Manifest.repository_id == repository_id, Manifest.subject_digest.is_(None))
        .order_by(Manifest.pushed_at.desc(), Manifest.id.desc())
        .limit(1)
    ).first()
    session.execute(
        update(Repository)
        .where(Repository.id == repository_id)
        .values(
            last_manifest_id=latest[0] if latest else None,
            last_severity=latest[1] if latest else None,
        )
        .execution_options(synchronize_session=False)
    )


# -- backlog and rescans -------------------------------------------------------------------------


def unqueued(session: Session, registry_id: str | None, limit: int) -> list[tuple[int, str, str]]:
    """(manifest id, registry id, repository name) of manifests never queued, in registries that scan."""
    query = (
        select(Manifest.id, Manifest.registry_id, Repository.name)
        .join(Registry, Registry.id == Manifest.registry_id)
        .join(Repository, Repository.id == Manifest.repository_id)
        .where(Manifest.scan_status.is_(None), Registry.vulnerability_scanning.is_(True))
        .order_by(Manifest.id)
        .limit(limit)
    )
    if registry_id is not None:
        query = query.where(Manifest.registry_id == registry_id)
    return [(r[0], r[1], r[2]) for r in session.execute(query)]


def changed_inventories(
    session: Session, since: int, limit: int, after: tuple[str, str] | None
) -> list[tuple[str, str]]:
    """(registry id, digest) of inventories holding a key changed after version ``since``, in order."""
    query = (
        select(ScanInventoryKey.registry_id, ScanInventoryKey.digest)
        .join(
            AdvisoryChange,
            and_(
                AdvisoryChange.ecosystem == ScanInventoryKey.ecosystem,
                AdvisoryChange.name == ScanInventoryKey.name,
            ),
        )
        .where(AdvisoryChange.version > since)
    )
    if after is not None:
        query = query.where(tuple_(ScanInventoryKey.registry_id, ScanInventoryKey.digest) > tuple_(*after))
    query = (
        query.group_by(ScanInventoryKey.registry_id, ScanInventoryKey.digest)
        .order_by(ScanInventoryKey.registry_id, ScanInventoryKey.digest)
        .limit(limit)
    )
    return [(r[0], r[1]) for r in session.execute(query)]


ChangedKeys = dict[tuple[str, str], tuple[str, int]]


def _per_registry(inventories: Sequence[tuple[str, str]]) -> Iterator[tuple[str, list[str]]]:
    """(registry id, digests) in chunks: ``registry_id = ? AND digest IN (...)`` is an index range on
    both databases, where SQLite reads a row-value IN list of (registry, digest) pairs by scanning the
    whole table."""
    digests: dict[str, list[str]] = {}
    for registry_id, digest in inventories:
        digests.setdefault(registry_id, []).append(digest)
    for registry_id, mine in digests.items():
        for chunk in _chunks(mine):
            yield registry_id, list(chunk)


def changed_keys(session: Session, since: int) -> dict[tuple[str, str], int]:
    """The keys changed after version ``since``, with the version of each one's latest change."""
    rows = session.execute(
        select(AdvisoryChange.ecosystem, AdvisoryChange.name, func.max(AdvisoryChange.version))
        .where(AdvisoryChange.version > since)
        .group_by(AdvisoryChange.ecosystem, AdvisoryChange.name)
    )
    return {(ecosystem, name): int(version or 0) for ecosystem, name, version in rows}


def changed_keys_of(
    session: Session, inventories: Sequence[tuple[str, str]], since: int
) -> dict[tuple[str, str], ChangedKeys]:
    """For each inventory, its keys changed after ``since``: the packages that have them, as the stored
    JSON text (equal texts are equal packages: images on one base share them, and the caller decodes
    each text once), and the version of the key's latest change.

    A few changed keys (a day's update) are looked up in each inventory by primary key; many (a first
    import) are found by reading each inventory's keys once.
    """
    changed = changed_keys(session, since)
    if len(changed) > FEW_KEYS:
        return _changed_keys_by_inventory(session, inventories, since)
    names: dict[str, list[str]] = {}
    for ecosystem, name in sorted(changed):
        names.setdefault(ecosystem, []).append(name)
    found: dict[tuple[str, str], ChangedKeys] = {}
    for (registry_id, chunk), (ecosystem, wanted) in product(_per_registry(inventories), names.items()):
        rows = session.execute(
            select(
                ScanInventoryKey.digest, ScanInventoryKey.name, cast(ScanInventoryKey.packages, Text)
            ).where(
                ScanInventoryKey.registry_id == registry_id,
                ScanInventoryKey.digest.in_(chunk),
                ScanInventoryKey.ecosystem == ecosystem,
                ScanInventoryKey.name.in_(wanted),
            )
        )
        for digest, name, packages in rows:
            found.setdefault((registry_id, digest), {})[(ecosystem, name)] = (
                str(packages or "[]"),
                changed[(ecosystem, name)],
            )
    return found


def _changed_keys_by_inventory(
    session: Session, inventories: Sequence[tuple[str, str]], since: int
) -> dict[tuple[str, str], ChangedKeys]:
    found: dict[tuple[str, str], ChangedKeys] = {}
    latest = (
        select(func.max(AdvisoryChange.version))
        .where(
            AdvisoryChange.ecosystem == ScanInventoryKey.ecosystem,
            AdvisoryChange.name == ScanInventoryKey.name,
            AdvisoryChange.version > since,
        )
        .scalar_subquery()
    )
    for registry_id, chunk in _per_registry(inventories):
        rows = session.execute(
            select(
                ScanInventoryKey.digest,
                ScanInventoryKey.ecosystem,
                ScanInventoryKey.name,
                cast(ScanInventoryKey.packages, Text),
                latest,
            ).where(
                ScanInventoryKey.registry_id == registry_id,
                ScanInventoryKey.digest.in_(chunk),
                latest.is_not(None),
            )
        )
        for digest, ecosystem, name, packages, version in rows:
            found.setdefault((registry_id, digest), {})[(ecosystem, name)] = (
                str(packages or "[]"),
                int(version),
            )
    return found


def oldest_scan_version(session: Session, version: int, recent: datetime) -> int | None:
    """The oldest database version a rescannable artifact (scanned, with an inventory, pushed or pulled
    since ``recent``) was matched at below ``version``; None when every one of them is current.

    Changes up to it were matched by every such artifact's own scan: a rescan reads only later ones."""
    return session.scalar(
        select(func.min(func.coalesce(Manifest.scan_db_version, 0)))
        .join(
            ScanInventory,
            and_(ScanInventory.registry_id == Manifest.registry_id, ScanInventory.digest == Manifest.digest),
        )
        .where(*_rescannable(version, recent))
    )


def _rescannable(version: int, recent: datetime) -> tuple[ColumnElement[bool], ...]:
    """Scanned, matched below ``version``, pushed or pulled since ``recent``: what a rescan re-matches."""
    return (
        Manifest.scan_status == SCANNED,
        or_(Manifest.scan_db_version.is_(None), Manifest.scan_db_version < version),
        or_(Manifest.pushed_at >= recent, Manifest.pulled_at >= recent),
    )


def mark_current(session: Session, manifest_ids: Sequence[int], version: int) -> None:
    """Nothing these manifests hold changed up to ``version``: they keep their result and scan time."""
    for chunk in _chunks(list(manifest_ids)):
        session.execute(
            update(Manifest)
            .where(Manifest.id.in_(chunk))
            .values(scan_db_version=version)
            .execution_options(synchronize_session=False)
        )


@dataclass(frozen=True, slots=True)
class Rescannable:
    id: int
    registry_id: str
    repository_id: int
    digest: str
    db_version: int


def rescannable(
    session: Session, inventories: Sequence[tuple[str, str]], version: int, recent: datetime
) -> list[Rescannable]:
    """Scanned manifests of these inventories, pushed or pulled since ``recent``, not yet at ``version``."""
    out: list[Rescannable] = []
    for registry_id, chunk in _per_registry(inventories):
        rows = session.execute(
            select(
                Manifest.id,
                Manifest.registry_id,
                Manifest.repository_id,
                Manifest.digest,
                Manifest.scan_db_version,
            ).where(
                Manifest.registry_id == registry_id,
                Manifest.digest.in_(chunk),
                *_rescannable(version, recent),
            )
        )
        out.extend(Rescannable(r[0], r[1], r[2], r[3], int(r[4] or 0)) for r in rows)
    return out


# -- reads for the API and the CLI -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScanState:
    manifest_id: int
    status: str | None
    scanned_at: datetime | None
    db_version: int | None
    max_severity: int | None
    total: int | None
    fixable: int | None
    score: float | None


def state(session: Session, manifest_id: int) -> ScanState | None:
    row = session.execute(
        select(
            Manifest.id,
            Manifest.scan_status,
            Manifest.scanned_at,
            Manifest.scan_db_version,
            Manifest.vuln_max_severity,
            Manifest.vuln_total_count,
            Manifest.vuln_fixable_count,
            Manifest.vuln_total_score,
        ).where(Manifest.id == manifest_id)
    ).first()
    return ScanState(*row) if row is not None else None


def manifest_id_of(session: Session, registry_id: str, repository: str, reference: str) -> int | None:
    """The manifest a tag or digest names in a repository."""
    if reference.startswith("sha") and ":" in reference:
        return session.scalar(
            select(Manifest.id)
            .join(Repository, Repository.id == Manifest.repository_id)
            .where(
                Repository.registry_id == registry_id,
                Repository.name == repository,
                Manifest.digest == reference,
            )
        )
    return session.scalar(
        select(Tag.manifest_id)
        .join(Repository, Repository.id == Tag.repository_id)
        .where(Repository.registry_id == registry_id, Repository.name == repository, Tag.name == reference)
    )


def registry_id_of(session: Session, name: str) -> str | None:
    return session.scalar(select(Registry.id).where(Registry.name == name))


def digest_of(session: Session, manifest_id: int) -> str:
    return str(session.scalar(select(Manifest.digest).where(Manifest.id == manifest_id)))


def inventory_facts(session: Session, registry_id: str, digest: str) -> tuple[str, int] | None:
    """(operating system, package count) of a stored image inventory."""
    row = session.execute(
        select(ScanInventory.os, ScanInventory.packages).where(
            ScanInventory.registry_id == registry_id, ScanInventory.digest == digest
        )
    ).first()
    return (str(row[0]), int(row[1])) if row is not None else None
