"""Repositories: lookup, lazy creation (a repository exists once something was pushed to it), listing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cargobay.db.engine import Database, RawTx
from cargobay.db.models import Manifest, Repository
from cargobay.db.queries import keyset
from cargobay.db.queries.keyset import Keys, Ordering
from cargobay.db.types import utcnow
from cargobay.domain.listing import Position


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


# Each key but artifactCount is served by an index (registry_id, key, name) of models.py.
_KEYS: dict[str, tuple[Any, bool]] = {
    "name": (Repository.name, False),
    "lastPush": (Repository.last_pushed_at, True),
    "lastPull": (Repository.last_pulled_at, True),
    "pullCount": (Repository.pull_count, False),
    "pushCount": (Repository.push_count, False),
}


def page(
    session: Session,
    registry_id: str,
    order: str,
    descending: bool,
    *,
    name_filter: str | None,
    severities: Sequence[int] | None,
    offset: int,
    limit: int,
    after: Position | None,
) -> tuple[list[tuple[Repository, int]], Keys]:
    """One page of a registry's repositories with their artifact counts, in the order asked.

    ``artifactCount`` has no index (the count is not stored): that order counts every repository's
    manifests and sorts them. The others read an index and count the artifacts of the page only.
    ``severities`` keeps the repositories whose last pushed artifact has one of these severity ranks.
    """
    scope: list[Any] = [Repository.registry_id == registry_id]
    if name_filter:
        escaped = name_filter.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        scope.append(Repository.name.like(f"%{escaped}%", escape="\\"))
    if severities is not None:
        scope.append(Repository.last_severity.in_(sorted(set(severities))))
    source: Any = None
    if order == "artifactCount":
        counts = (
            select(Manifest.repository_id, func.count().label("n"))
            .where(Manifest.registry_id == registry_id)
            .group_by(Manifest.repository_id)
            .subquery()
        )
        source = Repository.__table__.outerjoin(counts, counts.c.repository_id == Repository.id)
        ordering = Ordering(func.coalesce(counts.c.n, 0), Repository.name, descending, False)
    else:
        key, nullable = _KEYS[order]
        ordering = Ordering(key, Repository.name, descending, nullable)
    keys = keyset.page(session, scope, ordering, offset=offset, limit=limit, after=after, source=source)
    names = [row[1] for row in keys.rows]
    rows = {
        r.name: r for r in session.scalars(select(Repository).where(*scope[:1], Repository.name.in_(names)))
    }
    counts_of = artifact_counts(session, [r.id for r in rows.values()])
    return [(rows[n], counts_of.get(rows[n].id, 0)) for n in names if n in rows], keys


def artifact_counts(session: Session, repository_ids: list[int]) -> dict[int, int]:
    """How many manifests each of these repositories holds (an index range each)."""
    if not repository_ids:
        return {}
    rows = session.execute(
        select(Manifest.repository_id, func.count())
        .where(Manifest.repository_id.in_(repository_ids))
        .group_by(Manifest.repository_id)
    )
    return {int(repository_id): int(count) for repository_id, count in rows}


def delete_manifests(tx: RawTx, repository_id: int) -> int:
    """Delete the repository's manifests; returns the summed sizes of those this transaction deleted.
    A manifest that a concurrent delete or collection removed first is not counted again (summed
    before deleting, on PostgreSQL it would be: the storage usage would drop twice)."""
    rows = tx.all("DELETE FROM manifests WHERE repository_id = ? RETURNING size", repository_id)
    return sum(int(r[0]) for r in rows)


def delete(session: Session, repository: Repository) -> None:
    """Remove the repository; its manifests, tags and blob links go by ON DELETE CASCADE."""
    session.delete(repository)
    session.flush()
