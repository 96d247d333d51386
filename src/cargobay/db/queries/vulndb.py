"""The vulnerability database: OSV records by id, their package keys and aliases, the version, sync state.

A record's package keys are (OSV ecosystem, normalised name): a match reads the records of an image's
keys with one index range per key. Changes are kept as the keys they touched (``advisory_changes``),
written with no version while an import runs and given the new version by the transaction that ends
it, together with the version bump: a rescan re-matches what those keys can change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from cargobay.db.engine import RawTx
from cargobay.db.models import (
    Advisory,
    AdvisoryAlias,
    AdvisoryChange,
    AdvisoryPackage,
    VulnDbSource,
    VulnDbState,
    table_of,
)
from cargobay.db.types import utcnow

Key = tuple[str, str]  # (ecosystem, normalised name)
_CHUNK = 400  # keys or ids per IN list: well under every driver's parameter limit


@dataclass(frozen=True, slots=True)
class NewAdvisory:
    """A record to store: its row, and the keys and aliases it is found by (none when withdrawn)."""

    id: str
    modified: datetime
    published: datetime | None
    withdrawn: datetime | None
    body: bytes  # zlib-compressed JSON
    keys: frozenset[Key]
    aliases: frozenset[str]


@dataclass(frozen=True, slots=True)
class StoredRecord:
    id: str
    modified: datetime
    body: bytes  # zlib-compressed JSON


@dataclass(frozen=True, slots=True)
class State:
    version: int
    rescanned_version: int
    advisories: int
    updated_at: datetime | None


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def stored_versions(session: Session, ids: Sequence[str]) -> dict[str, datetime]:
    """``modified`` of the records of ``ids`` already stored."""
    found: dict[str, datetime] = {}
    for chunk in _chunks(ids):
        for advisory_id, modified in session.execute(
            select(Advisory.id, Advisory.modified).where(Advisory.id.in_(chunk))
        ):
            found[advisory_id] = modified
    return found


def keys_of(session: Session, ids: Sequence[str]) -> set[Key]:
    keys: set[Key] = set()
    for chunk in _chunks(ids):
        keys.update(
            (e, n)
            for e, n in session.execute(
                select(AdvisoryPackage.ecosystem, AdvisoryPackage.name).where(
                    AdvisoryPackage.advisory_id.in_(chunk)
                )
            )
        )
    return keys


def replace(session: Session, advisories: Sequence[NewAdvisory], *, existing: Iterable[str]) -> None:
    """Store ``advisories``; those whose ids are in ``existing`` replace the stored ones (and their
    keys and aliases)."""
    old = list(existing)
    for chunk in _chunks(old):
        session.execute(delete(AdvisoryPackage).where(AdvisoryPackage.advisory_id.in_(chunk)))
        session.execute(delete(AdvisoryAlias).where(AdvisoryAlias.advisory_id.in_(chunk)))
        session.execute(delete(Advisory).where(Advisory.id.in_(chunk)))
    if not advisories:
        return
    now = utcnow()
    # Core inserts of the tables (executemany): the ORM's bulk path costs more than the statements.
    session.execute(
        insert(table_of(Advisory)),
        [
            {
                "id": a.id,
                "modified": a.modified,
                "published": a.published,
                "withdrawn": a.withdrawn,
                "body": a.body,
                "imported_at": now,
            }
            for a in advisories
        ],
    )
    packages = [{"ecosystem": e, "name": n, "advisory_id": a.id} for a in advisories for e, n in a.keys]
    if packages:
        session.execute(insert(table_of(AdvisoryPackage)), packages)
    aliases = [{"alias": alias, "advisory_id": a.id} for a in advisories for alias in a.aliases]
    if aliases:
        session.execute(insert(table_of(AdvisoryAlias)), aliases)


def record_changes(session: Session, keys: Iterable[Key]) -> int:
    """Note keys whose advisories changed, without a version yet (see ``finish_import``)."""
    rows = [{"version": None, "ecosystem": e, "name": n} for e, n in keys]
    if rows:
        session.execute(insert(table_of(AdvisoryChange)), rows)
    return len(rows)


def state(session: Session) -> State:
    row = session.get(VulnDbState, 1)
    if row is None:
        return State(0, 0, 0, None)
    return State(row.version, row.rescanned_version, row.advisories, row.updated_at)


def _state_row(session: Session) -> VulnDbState:
    row = session.get(VulnDbState, 1, with_for_update=True)
    if row is None:
        row = VulnDbState(id=1, version=0, rescanned_version=0, advisories=0)
        session.add(row)
        session.flush()
    return row


def finish_import(session: Session) -> int | None:
    """End an import: if changes without a version are waiting (this import's, or a crashed one's),
    bump the version and give it to them. Returns the new version, None when nothing changed."""
    pending = session.scalar(select(AdvisoryChange.id).where(AdvisoryChange.version.is_(None)).limit(1))
    row = _state_row(session)
    row.advisories = int(
        session.scalar(select(func.count()).select_from(Advisory).where(Advisory.withdrawn.is_(None))) or 0
    )
    if pending is None:
        return None
    row.version = row.version + 1
    row.updated_at = utcnow()
    session.execute(
        update(AdvisoryChange)
        .where(AdvisoryChange.version.is_(None))
        .values(version=row.version)
        .execution_options(synchronize_session=False)
    )
    return row.version


def changed_keys_since(session: Session, version: int) -> int:
    """How many change rows were recorded after ``version`` (finished imports only)."""
    return int(
        session.scalar(
            select(func.count()).select_from(AdvisoryChange).where(AdvisoryChange.version > version)
        )
        or 0
    )


def mark_rescanned(session: Session, version: int) -> None:
    """The rescan has re-matched every change up to ``version``: drop those changes."""
    row = _state_row(session)
    if version > row.rescanned_version:
        row.rescanned_version = version
    session.execute(
        delete(AdvisoryChange)
        .where(AdvisoryChange.version <= version)
        .execution_options(synchronize_session=False)
    )


def record_versions(session: Session, keys: Iterable[Key]) -> dict[Key, list[tuple[str, datetime]]]:
    """(id, modified) of the records stored under each key (withdrawn records have no keys): an index
    range of (ecosystem, name) per key, asked per ecosystem (SQLite reads a row-value IN list of keys
    by scanning the whole table)."""
    wanted = sorted(set(keys))
    found: dict[Key, list[tuple[str, datetime]]] = {k: [] for k in wanted}
    names: dict[str, list[str]] = {}
    for ecosystem, name in wanted:
        names.setdefault(ecosystem, []).append(name)
    tx = RawTx.of(session)  # a scan asks a thousand keys: the ORM's statement and row handling cost more
    for ecosystem, mine in names.items():
        for chunk in _chunks(mine):
            rows = tx.all(
                "SELECT p.name, a.id, a.modified FROM advisory_packages p JOIN advisories a ON a.id = "
                f"p.advisory_id WHERE p.ecosystem = ? AND p.name IN ({', '.join('?' * len(chunk))})",
                ecosystem,
                *chunk,
            )
            for name, advisory_id, modified in rows:
                found[(ecosystem, name)].append((advisory_id, cast(datetime, RawTx.time(modified))))
    return found


def records_for(session: Session, keys: Iterable[Key]) -> dict[Key, list[StoredRecord]]:
    """The records stored under each key (withdrawn records have no keys)."""
    listed = record_versions(session, keys)
    bodies = {r.id: r for r in records_by_id(session, {i for rows in listed.values() for i, _ in rows})}
    return {key: [bodies[i] for i, _ in rows if i in bodies] for key, rows in listed.items()}


def records_named(session: Session, ident: str) -> list[StoredRecord]:
    """The record with this id and every record naming it (alias, upstream, its CVE), not withdrawn."""
    ids = select(AdvisoryAlias.advisory_id).where(AdvisoryAlias.alias == ident)
    rows = session.execute(
        select(Advisory.id, Advisory.modified, Advisory.body)
        .where(Advisory.id.in_(ids), Advisory.withdrawn.is_(None))
        .order_by(Advisory.id)
    )
    return [StoredRecord(r[0], r[1], bytes(r[2])) for r in rows]


# -- sync sources ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceState:
    url: str
    etag: str | None
    last_modified: str | None
    checked_at: datetime | None
    changed_at: datetime | None


def source(session: Session, url: str) -> SourceState | None:
    row = session.get(VulnDbSource, url)
    if row is None:
        return None
    return SourceState(row.url, row.etag, row.last_modified, row.checked_at, row.changed_at)


def sources(session: Session) -> list[SourceState]:
    return [
        SourceState(r.url, r.etag, r.last_modified, r.checked_at, r.changed_at)
        for r in session.scalars(select(VulnDbSource).order_by(VulnDbSource.url))
    ]


def save_source(
    session: Session, url: str, *, etag: str | None, last_modified: str | None, changed: bool
) -> None:
    now = utcnow()
    row = session.get(VulnDbSource, url)
    if row is None:
        row = VulnDbSource(url=url)
        session.add(row)
    row.etag = etag
    row.last_modified = last_modified
    row.checked_at = now
    if changed:
        row.changed_at = now


def records_by_id(session: Session, ids: Iterable[str]) -> list[StoredRecord]:
    """The stored records of these ids (withdrawn ones too: a finding may predate the withdrawal)."""
    wanted = sorted(set(ids))
    found: list[StoredRecord] = []
    for chunk in _chunks(wanted):
        rows = session.execute(
            select(Advisory.id, Advisory.modified, Advisory.body).where(Advisory.id.in_(chunk))
        )
        found.extend(StoredRecord(r[0], r[1], bytes(r[2])) for r in rows)
    return found
