"""Repository rows: lookup and lazy creation (a repository exists once something was pushed to it)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargobay.db.engine import RawTx
from cargobay.db.models import Repository
from cargobay.db.types import utcnow


def find(session: Session, registry_id: str, name: str) -> Repository | None:
    return session.scalar(
        select(Repository).where(Repository.registry_id == registry_id, Repository.name == name)
    )


def ensure_id(tx: RawTx, registry_id: str, name: str) -> int:
    """The repository's id, creating the row if needed; safe against a concurrent creator."""
    row = tx.one("SELECT id FROM repositories WHERE registry_id = ? AND name = ?", registry_id, name)
    if row is None:
        row = tx.one(
            "INSERT INTO repositories (registry_id, name, created_at, push_count, pull_count) "
            "VALUES (?, ?, ?, 0, 0) ON CONFLICT (registry_id, name) DO NOTHING RETURNING id",
            registry_id,
            name,
            tx.timestamp(utcnow()),
        )
    if row is None:  # lost the race: the other writer's row is visible now
        row = tx.one("SELECT id FROM repositories WHERE registry_id = ? AND name = ?", registry_id, name)
    assert row is not None
    return int(row[0])
