"""Upload sessions (their bytes are staged in the blob store under ``object_key``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cargobay.db.engine import Database, RawTx
from cargobay.db.models import Upload
from cargobay.db.types import utcnow


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
    """The staged object of a session of that repository touched since ``active_since``."""
    row = await db.fetch_one(
        "SELECT object_key FROM uploads WHERE id = ? AND registry_id = ? AND repository_name = ? "
        "AND updated_at >= ?",
        upload_id,
        registry_id,
        repository,
        db.timestamp(active_since),
    )
    return str(row[0]) if row is not None else None


def touch(tx: RawTx, upload_id: str, size: int) -> None:
    tx.run(
        "UPDATE uploads SET size = ?, updated_at = ? WHERE id = ?", size, tx.timestamp(utcnow()), upload_id
    )


def forget(tx: RawTx, upload_id: str) -> bool:
    """Drop the session's row; False when it was gone already (expired or cancelled meanwhile)."""
    return tx.run("DELETE FROM uploads WHERE id = ?", upload_id) > 0


async def idle_since(db: Database, cutoff: datetime, limit: int = 1000) -> list[tuple[str, str]]:
    """(id, object key) of sessions untouched since ``cutoff`` (indexed on updated_at)."""
    rows = await db.fetch_all(
        "SELECT id, object_key FROM uploads WHERE updated_at < ? LIMIT ?", db.timestamp(cutoff), limit
    )
    return [(str(r[0]), str(r[1])) for r in rows]


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Upload)) or 0)
