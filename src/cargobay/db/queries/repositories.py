"""Repositories: lookup, lazy creation (a repository exists once something was pushed to it), listing."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargobay.db.engine import Database, RawTx
from cargobay.db.models import Repository
from cargobay.db.types import utcnow


def find(session: Session, registry_id: str, name: str, *, lock: bool = False) -> Repository | None:
    """The repository; with ``lock``, held FOR UPDATE (PostgreSQL) until the transaction ends."""
    query = select(Repository).where(Repository.registry_id == registry_id, Repository.name == name)
    return session.scalar(query.with_for_update() if lock else query)


def find_id(tx: RawTx, registry_id: str, name: str) -> int | None:
    """The repository's id; on PostgreSQL its row is then kept (FOR KEY SHARE) until the transaction
    ends, so a repository delete waits for a writer that got there first, before either holds more."""
    lock = "" if tx.is_sqlite else " FOR KEY SHARE"
    row = tx.one(f"SELECT id FROM repositories WHERE registry_id = ? AND name = ?{lock}", registry_id, name)
    return int(row[0]) if row is not None else None


def ensure_id(tx: RawTx, registry_id: str, name: str) -> int:
    """The repository's id, creating the row if needed; safe against a concurrent creator."""
    found = find_id(tx, registry_id, name)
    if found is not None:
        return found
    row = tx.one(
        "INSERT INTO repositories (registry_id, name, created_at, push_count, pull_count) "
        "VALUES (?, ?, ?, 0, 0) ON CONFLICT (registry_id, name) DO NOTHING RETURNING id",
        registry_id,
        name,
        tx.timestamp(utcnow()),
    )
    if row is not None:
        return int(row[0])
    found = find_id(tx, registry_id, name)  # lost the race: the other writer's row is visible now
    assert found is not None
    return found


async def names_after(db: Database, registry_id: str, after: str | None, limit: int) -> list[str]:
    """Repository names of a registry in lexical order, strictly after ``after`` (the unique
    (registry_id, name) index serves both the filter and the order)."""
    if after is None:
        rows = await db.fetch_all(
            "SELECT name FROM repositories WHERE registry_id = ? ORDER BY name LIMIT ?", registry_id, limit
        )
    else:
        rows = await db.fetch_all(
            "SELECT name FROM repositories WHERE registry_id = ? AND name > ? ORDER BY name LIMIT ?",
            registry_id,
            after,
            limit,
        )
    return [str(r[0]) for r in rows]
