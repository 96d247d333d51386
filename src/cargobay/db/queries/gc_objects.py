"""Garbage collection's stored objects: the deletion outbox, and what the sweep needs to tell an
object that no row names (a crash leftover) from one a blob or an upload session names."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cargobay.db.engine import Database, RawTx
from cargobay.db.models import Blob, Upload
from cargobay.db.queries.gc import FreedObject, chunks, marks
from cargobay.db.types import utcnow

# -- the object-deletion outbox ---------------------------------------------------------------------


async def pending_deletions(
    db: Database, registry_id: str | None, after_id: int, limit: int
) -> list[FreedObject]:
    """Outbox rows after ``after_id`` (of one registry, or of all), in id order."""
    if registry_id is None:
        rows = await db.fetch_all(
            "SELECT id, object_key, staged, writer_state FROM gc_object_deletions WHERE id > ? "
            "ORDER BY id LIMIT ?",
            after_id,
            limit,
        )
    else:
        rows = await db.fetch_all(
            "SELECT id, object_key, staged, writer_state FROM gc_object_deletions "
            "WHERE registry_id = ? AND id > ? "
            "ORDER BY id LIMIT ?",
            registry_id,
            after_id,
            limit,
        )
    return [FreedObject(int(r[0]), str(r[1]), bool(r[2]), str(r[3]) if r[3] else None) for r in rows]


async def count_pending_deletions(db: Database, registry_id: str | None) -> int:
    if registry_id is None:
        row = await db.fetch_one("SELECT COUNT(*) FROM gc_object_deletions")
    else:
        row = await db.fetch_one(
            "SELECT COUNT(*) FROM gc_object_deletions WHERE registry_id = ?", registry_id
        )
    return int(row[0]) if row is not None else 0


def forget_deletions(tx: RawTx, ids: Sequence[int]) -> None:
    for part in chunks(sorted(ids)):
        tx.run(f"DELETE FROM gc_object_deletions WHERE id IN ({marks(len(part))})", *part)


# -- the sweep: objects no row names ----------------------------------------------------------------


_HEX = frozenset("0123456789abcdef")


def upload_id_of(object_id: str) -> str | None:
    """The upload session an object id comes from (ids are the session's UUID without dashes)."""
    if len(object_id) != 32 or not _HEX.issuperset(object_id):
        return None
    h = object_id
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


async def sighted(db: Database, keys: Sequence[str], staged: bool) -> set[str]:
    """Of ``keys``, those a sweep recorded as unnamed before."""
    found: set[str] = set()
    for part in chunks(sorted(set(keys))):
        rows = await db.fetch_all(
            f"SELECT object_key FROM gc_orphans WHERE staged = ? AND object_key IN ({marks(len(part))})",
            staged,
            *part,
        )
        found |= {str(r[0]) for r in rows}
    return found


async def any_sighted(db: Database, namespaces: Iterable[str]) -> bool:
    for part in chunks(sorted(set(namespaces))):
        row = await db.fetch_one(
            f"SELECT 1 FROM gc_orphans WHERE namespace IN ({marks(len(part))}) LIMIT 1", *part
        )
        if row is not None:
            return True
    return False


async def registries_present(db: Database, ids: Iterable[str]) -> set[str]:
    wanted = sorted(set(ids))
    found: set[str] = set()
    for part in chunks(wanted):
        rows = await db.fetch_all(f"SELECT id FROM registries WHERE id IN ({marks(len(part))})", *part)
        found |= {str(r[0]) for r in rows}
    return found


async def named_blob_keys(db: Database, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for part in chunks(sorted(set(keys))):
        rows = await db.fetch_all(
            f"SELECT object_key FROM blobs WHERE object_key IN ({marks(len(part))})", *part
        )
        found |= {str(r[0]) for r in rows}
    return found


async def live_uploads(db: Database, upload_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for part in chunks(sorted(set(upload_ids))):
        rows = await db.fetch_all(f"SELECT id FROM uploads WHERE id IN ({marks(len(part))})", *part)
        found |= {str(r[0]) for r in rows}
    return found


def sight_orphans(
    tx: RawTx,
    orphans: Sequence[tuple[str, bool, str]],
    named: Sequence[tuple[str, bool]],
    grace: timedelta,
) -> list[tuple[str, bool]]:
    """Record this sweep's sightings of unnamed objects ``(key, staged, namespace)``; returns those
    first seen at least ``grace`` ago. Objects found named again (an upload that finished) are
    forgotten."""
    moment = utcnow()
    now, cutoff = tx.timestamp(moment), moment - grace
    forget_orphans(tx, named)
    due: list[tuple[str, bool]] = []
    for part in chunks(orphans):
        values = ", ".join("(?, ?, ?, ?, ?)" for _ in part)
        params = [p for key, staged, namespace in part for p in (key, staged, namespace, now, now)]
        tx.run(
            "INSERT INTO gc_orphans (object_key, staged, namespace, first_seen_at, last_seen_at) "
            f"VALUES {values} ON CONFLICT (object_key, staged) "
            "DO UPDATE SET last_seen_at = excluded.last_seen_at",
            *params,
        )
        for staged, keys in _by_staged([(key, staged) for key, staged, _ns in part]):
            rows = tx.all(
                "SELECT object_key FROM gc_orphans WHERE first_seen_at <= ? AND staged = ? "
                f"AND object_key IN ({marks(len(keys))})",
                tx.timestamp(cutoff),
                staged,
                *keys,
            )
            due += [(str(r[0]), staged) for r in rows]
    return due


def _by_staged(pairs: Sequence[tuple[str, bool]]) -> list[tuple[bool, list[str]]]:
    groups: dict[bool, list[str]] = {}
    for key, staged in pairs:
        groups.setdefault(bool(staged), []).append(key)
    return sorted(groups.items())


def forget_orphans(tx: RawTx, orphans: Sequence[tuple[str, bool]]) -> None:
    for part in chunks(orphans):
        for staged, keys in _by_staged(part):
            tx.run(
                f"DELETE FROM gc_orphans WHERE staged = ? AND object_key IN ({marks(len(keys))})",
                staged,
                *keys,
            )


def forget_vanished_orphans(tx: RawTx, namespaces: Iterable[str], seen_before: datetime) -> None:
    """Sightings of objects a complete sweep of their namespace no longer found."""
    for namespace in namespaces:
        tx.run(
            "DELETE FROM gc_orphans WHERE namespace = ? AND last_seen_at < ?",
            namespace,
            tx.timestamp(seen_before),
        )


def object_estimate(session: Session, registry_id: str) -> int:
    """About how many objects a sweep of the registry lists: one per blob and upload."""
    blobs = session.scalar(select(func.count()).select_from(Blob).where(Blob.registry_id == registry_id))
    uploads = session.scalar(
        select(func.count()).select_from(Upload).where(Upload.registry_id == registry_id)
    )
    return int(blobs or 0) + int(uploads or 0)


async def idle_uploads(db: Database, cutoff: datetime) -> int:
    """Upload sessions untouched since ``cutoff`` (what an expiry would drop)."""
    row = await db.fetch_one("SELECT COUNT(*) FROM uploads WHERE updated_at < ?", db.timestamp(cutoff))
    return int(row[0]) if row is not None else 0
