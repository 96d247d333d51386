"""Upload sessions: each row holds what a request needs to take the next chunk (size, the storage
writer's state, the running digest's state); ``object_key`` is where the earlier release staged bytes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cargobay.db.engine import Database, RawTx
from cargobay.db.models import Upload
from cargobay.db.queries.gc import QUEUE_UPLOAD_DATA
from cargobay.db.types import utcnow


@dataclass(frozen=True, slots=True)
class Recorded:
    """Where an upload stands: its size and the states a chunk continues from (None before any)."""

    size: int
    storage_state: str | None
    hash_state: bytes | None


def insert(tx: RawTx, upload_id: str, registry_id: str, repository: str, object_key: str) -> None:
    now = tx.timestamp(utcnow())
    tx.run(
        "INSERT INTO uploads (id, registry_id, repository_name, object_key, size, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, 0, ?, ?)",
        upload_id,
        registry_id,
        repository,
        object_key,
        now,
        now,
    )


async def live_object_key(
    db: Database, upload_id: str, registry_id: str, repository: str, active_since: datetime
) -> str | None:
    """The object key of a session of that repository touched since ``active_since``; not one an
    earlier release had begun writing (it has no writer state, so it cannot continue)."""
    row = await db.fetch_one(
        "SELECT object_key FROM uploads WHERE id = ? AND registry_id = ? AND repository_name = ? "
        "AND updated_at >= ? AND (storage_state IS NOT NULL OR size = 0)",
        upload_id,
        registry_id,
        repository,
        db.timestamp(active_since),
    )
    return str(row[0]) if row is not None else None


async def recorded(db: Database, upload_id: str) -> Recorded | None:
    row = await db.fetch_one("SELECT size, storage_state, hash_state FROM uploads WHERE id = ?", upload_id)
    if row is None:
        return None
    size, storage, hashed = row
    return Recorded(int(size), str(storage) if storage else None, bytes(hashed) if hashed else None)


async def size_of(db: Database, upload_id: str) -> int | None:
    row = await db.fetch_one("SELECT size FROM uploads WHERE id = ?", upload_id)
    return int(row[0]) if row is not None else None


def record_chunk(
    tx: RawTx, upload_id: str, old_size: int, size: int, storage_state: str, hash_state: bytes
) -> bool:
    """Record a chunk, only if the upload still has the size the chunk started from."""
    changed = tx.run(
        "UPDATE uploads SET size = ?, storage_state = ?, hash_state = ?, updated_at = ? "
        "WHERE id = ? AND size = ?",
        size,
        storage_state,
        hash_state,
        tx.timestamp(utcnow()),
        upload_id,
        old_size,
    )
    return changed == 1


async def storage_state(db: Database, upload_id: str) -> str | None:
    row = await db.fetch_one("SELECT storage_state FROM uploads WHERE id = ?", upload_id)
    return str(row[0]) if row is not None and row[0] else None


def forget(tx: RawTx, upload_id: str) -> bool:
    """Drop the session's row; False when it was gone already (expired or cancelled meanwhile)."""
    return tx.run("DELETE FROM uploads WHERE id = ?", upload_id) > 0


def forget_keeping_data_queued(tx: RawTx, upload_id: str) -> int | None:
    """Drop the session's row while its writer's data is still there: the data is queued in the
    deletion outbox in the same transaction (the caller deletes it, then the outbox row: a crash in
    between leaves it to garbage collection). The outbox row's id; None when the session was gone."""
    row = tx.one(f"{QUEUE_UPLOAD_DATA} WHERE id = ? RETURNING id", True, tx.timestamp(utcnow()), upload_id)
    if row is None:
        return None
    forget(tx, upload_id)
    return int(row[0])


async def idle_since(
    db: Database, cutoff: datetime, limit: int = 1000
) -> list[tuple[str, str, str, str | None]]:
    """(id, registry id, object key, storage state) of sessions untouched since ``cutoff``
    (indexed on updated_at)."""
    rows = await db.fetch_all(
        "SELECT id, registry_id, object_key, storage_state FROM uploads WHERE updated_at < ? LIMIT ?",
        db.timestamp(cutoff),
        limit,
    )
    return [(str(r[0]), str(r[1]), str(r[2]), str(r[3]) if r[3] else None) for r in rows]


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Upload)) or 0)
