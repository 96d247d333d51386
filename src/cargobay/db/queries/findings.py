"""Findings of artifacts: one row per (manifest, vulnerability) with the per-package matches behind it,
and the aliases (DSA, GHSA, DEBIAN-CVE…) a search by id also finds it under.

The rows are indexed by (registry, vulnerability id) and the aliases by (registry, alias), so "which
artifacts have CVE-x" is two index ranges, never a walk over artifacts. Reads and writes of rows are raw
statements on the session's transaction (``RawTx``): a rescan moves thousands of rows per batch, and
SQLAlchemy's per-row processing cost more than the database did.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, union
from sqlalchemy.orm import Session

from cargobay.db.engine import RawTx
from cargobay.db.models import Manifest, ScanFinding, ScanFindingAlias, table_of
from cargobay.domain import jsontext

SCANNED = "scanned"
_CHUNK = 400


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def lock(session: Session, manifest_id: int) -> None:
    """Writers of one manifest's results take turns (a row lock on PostgreSQL; SQLite has one writer)."""
    session.execute(select(Manifest.id).where(Manifest.id == manifest_id).with_for_update())


# -- findings ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FindingRow:
    """One vulnerability of an artifact; ``matches`` are the per-package matches behind it and
    ``keys`` their lookup keys ("ecosystem name" lines, so a rescan finds them without decoding)."""

    vulnerability_id: str
    severity: int
    score: float | None
    fixable: bool
    published_at: datetime | None
    updated_at: datetime | None
    aliases: tuple[str, ...]
    keys: str
    matches: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Summary:
    status: str
    scanned_at: datetime | None
    db_version: int | None
    max_severity: int | None
    total: int | None
    fixable: int | None
    score: float | None

    @classmethod
    def of(cls, rows: Sequence[FindingRow], scanned_at: datetime, db_version: int, none_rank: int) -> Summary:
        return cls(
            status=SCANNED,
            scanned_at=scanned_at,
            db_version=db_version,
            max_severity=max((r.severity for r in rows), default=none_rank),
            total=len(rows),
            fixable=sum(1 for r in rows if r.fixable),
            score=round(sum(r.score or 0.0 for r in rows), 1),
        )


_FINDINGS = table_of(ScanFinding)
_ALIASES = table_of(ScanFindingAlias)
_COLUMNS = (
    "manifest_id, registry_id, vulnerability_id, severity, score, fixable, published_at, updated_at, "
    "package_keys, detail"
)
_INSERT = f"INSERT INTO scan_findings ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_ALIAS = (
    "INSERT INTO scan_finding_aliases (manifest_id, vulnerability_id, alias, registry_id) VALUES (?, ?, ?, ?)"
)
_READ = (
    "SELECT vulnerability_id, severity, score, fixable, published_at, updated_at, package_keys, detail "
    "FROM scan_findings WHERE manifest_id = ?"
)


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _insert_rows(
    tx: RawTx,
    manifest_id: int,
    registry_id: str,
    rows: Sequence[FindingRow],
    encoded: dict[int, tuple[Any, ...]],
) -> tuple[list[Any], list[Any]]:
    """The insert parameters of ``rows``; ``encoded`` keeps each row's columns by identity, so a row
    shared by many manifests (a rescan copies one artifact's new findings to images on the same base)
    is turned into JSON and timestamps once."""
    findings = []
    for r in rows:
        columns = encoded.get(id(r))
        if columns is None:
            columns = encoded[id(r)] = (
                r.vulnerability_id,
                r.severity,
                r.score,
                r.fixable,
                tx.timestamp(r.published_at) if r.published_at is not None else None,
                tx.timestamp(r.updated_at) if r.updated_at is not None else None,
                r.keys,
                jsontext.dumps_text({"matches": r.matches}),
            )
        findings.append((manifest_id, registry_id, *columns))
    aliases = [
        (manifest_id, r.vulnerability_id, a, registry_id)
        for r in rows
        for a in dict.fromkeys(r.aliases)
        if a != r.vulnerability_id
    ]
    return findings, aliases


def _delete(tx: RawTx, replacements: Sequence[Replacement]) -> None:
    """The findings the replacements replace: manifests replacing the same vulnerability ids (images on
    one base after a rescan) share their statements, an index range of (manifest, vulnerability) each."""
    whole: list[int] = []
    some: dict[frozenset[str], list[int]] = {}
    for r in replacements:
        if r.vulnerability_ids is None:
            whole.append(r.manifest_id)
        elif r.vulnerability_ids:
            some.setdefault(r.vulnerability_ids, []).append(r.manifest_id)
    for chunk in _chunks(sorted(set(whole))):
        where = f"manifest_id IN ({_marks(len(chunk))})"
        tx.run(f"DELETE FROM scan_finding_aliases WHERE {where}", *chunk)
        tx.run(f"DELETE FROM scan_findings WHERE {where}", *chunk)
    for ids, manifest_ids in some.items():
        for manifests in _chunks(sorted(set(manifest_ids))):
            for vulns in _chunks(sorted(ids)):
                where = (
                    f"manifest_id IN ({_marks(len(manifests))}) "
                    f"AND vulnerability_id IN ({_marks(len(vulns))})"
                )
                tx.run(f"DELETE FROM scan_finding_aliases WHERE {where}", *manifests, *vulns)
                tx.run(f"DELETE FROM scan_findings WHERE {where}", *manifests, *vulns)


def replace_findings(
    session: Session, manifest_id: int, registry_id: str, rows: Sequence[FindingRow]
) -> None:
    """The manifest's findings become ``rows``."""
    lock(session, manifest_id)
    replace_many(session, [Replacement(manifest_id, registry_id, None, rows)])


def replace_vulnerabilities(
    session: Session,
    manifest_id: int,
    registry_id: str,
    vulnerability_ids: Iterable[str],
    rows: Sequence[FindingRow],
) -> None:
    """Replace only the findings of ``vulnerability_ids`` (a rescan's) with ``rows``."""
    replace_many(session, [Replacement(manifest_id, registry_id, frozenset(vulnerability_ids), rows)])


@dataclass(frozen=True, slots=True)
class FindingKeys:
    """A stored finding, light: which package keys its matches have."""

    vulnerability_id: str
    keys: str


def finding_keys(session: Session, manifest_id: int) -> list[FindingKeys]:
    return finding_keys_of(session, [manifest_id]).get(manifest_id, [])


def findings(
    session: Session, manifest_id: int, vulnerability_ids: Iterable[str] | None = None
) -> list[FindingRow]:
    """The findings of a manifest (of these vulnerability ids), in id order, with their aliases."""
    tx = RawTx.of(session)
    rows: list[tuple[Any, ...]] = []
    aliases: dict[str, list[str]] = {}
    alias_sql = "SELECT vulnerability_id, alias FROM scan_finding_aliases WHERE manifest_id = ?"
    if vulnerability_ids is None:
        rows = tx.all(_READ, manifest_id)
        for vuln, alias in tx.all(alias_sql, manifest_id):
            aliases.setdefault(vuln, []).append(alias)
    else:
        for chunk in _chunks(sorted(set(vulnerability_ids))):
            marks = _marks(len(chunk))
            rows += tx.all(f"{_READ} AND vulnerability_id IN ({marks})", manifest_id, *chunk)
            for vuln, alias in tx.all(f"{alias_sql} AND vulnerability_id IN ({marks})", manifest_id, *chunk):
                aliases.setdefault(vuln, []).append(alias)
    rows.sort(key=lambda r: str(r[0]))
    out = []
    for vuln, severity, score, fixable, published, updated, keys, detail in rows:
        data = detail if isinstance(detail, dict) else json.loads(detail or "{}")
        out.append(
            FindingRow(
                vulnerability_id=vuln,
                severity=int(severity),
                score=float(score) if score is not None else None,
                fixable=bool(fixable),
                published_at=RawTx.time(published),
                updated_at=RawTx.time(updated),
                aliases=tuple(sorted(aliases.get(vuln, ()))),
                keys=str(keys),
                matches=list(data.get("matches", [])),
            )
        )
    return out


def all_findings(session: Session, manifest_ids: Sequence[int]) -> list[FindingRow]:
    out: list[FindingRow] = []
    for manifest_id in manifest_ids:
        out.extend(findings(session, manifest_id))
    return out


def summarize(
    session: Session, manifest_id: int, scanned_at: datetime, version: int, none_rank: int
) -> Summary:
    """The summary of the findings stored for a manifest."""
    total, fixable, score, worst = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((ScanFinding.fixable.is_(True), 1), else_=0)), 0),
            func.coalesce(func.sum(func.coalesce(ScanFinding.score, 0.0)), 0.0),
            func.max(ScanFinding.severity),
        ).where(ScanFinding.manifest_id == manifest_id)
    ).one()
    return Summary(
        status=SCANNED,
        scanned_at=scanned_at,
        db_version=version,
        max_severity=none_rank if worst is None else int(worst),
        total=int(total),
        fixable=int(fixable),
        score=round(float(score), 1),
    )


def affected_manifests(registry_id: str, ident: str) -> Any:
    """The ids of the registry's manifests with a finding of that id or alias (two index ranges)."""
    by_id = select(ScanFinding.manifest_id).where(
        ScanFinding.registry_id == registry_id, ScanFinding.vulnerability_id == ident
    )
    by_alias = select(_ALIASES.c.manifest_id).where(
        _ALIASES.c.registry_id == registry_id, _ALIASES.c.alias == ident
    )
    return union(by_id, by_alias)


def manifests_with(session: Session, registry_id: str, ident: str) -> list[int]:
    return sorted(session.scalars(affected_manifests(registry_id, ident)))


# -- many manifests at once (a rescan works on batches: a statement per artifact cost more than the work)


def lock_many(session: Session, manifest_ids: Sequence[int]) -> None:
    for chunk in _chunks(sorted(set(manifest_ids))):
        session.execute(
            select(Manifest.id).where(Manifest.id.in_(chunk)).order_by(Manifest.id).with_for_update()
        )


def finding_keys_of(
    session: Session, manifest_ids: Sequence[int], lines: Sequence[str] | None = None
) -> dict[int, list[FindingKeys]]:
    """The key lines of these manifests' findings; with ``lines``, only findings that may have one of
    them (one of the lines exactly, or several lines: the caller checks those)."""
    tx = RawTx.of(session)
    found: dict[int, list[FindingKeys]] = {}
    wanted = sorted(set(lines)) if lines is not None else None
    for chunk in _chunks(list(manifest_ids)):
        sql = (
            "SELECT manifest_id, vulnerability_id, package_keys FROM scan_findings "
            f"WHERE manifest_id IN ({_marks(len(chunk))})"
        )
        params: list[Any] = list(chunk)
        if wanted is not None:
            # a newline marks a finding with several keys; the IN list is small (the changed keys)
            sql += f" AND (package_keys IN ({_marks(len(wanted))}) OR package_keys LIKE ?)"
            params += [*wanted, "%\n%"]
        for manifest_id, vuln, keys in tx.all(sql, *params):
            found.setdefault(manifest_id, []).append(FindingKeys(vuln, keys))
    return found


def finding_keys_by_id(
    session: Session, manifest_ids: Sequence[int], vulnerability_ids: Sequence[str]
) -> dict[int, list[FindingKeys]]:
    """The key lines of these manifests' findings of these vulnerability ids (an index probe each)."""
    tx = RawTx.of(session)
    found: dict[int, list[FindingKeys]] = {}
    for manifests, vulns in itertools.product(_chunks(list(manifest_ids)), _chunks(list(vulnerability_ids))):
        sql = (
            "SELECT manifest_id, vulnerability_id, package_keys FROM scan_findings "
            f"WHERE manifest_id IN ({_marks(len(manifests))}) AND vulnerability_id IN ({_marks(len(vulns))})"
        )
        for manifest_id, vuln, keys in tx.all(sql, *manifests, *vulns):
            found.setdefault(manifest_id, []).append(FindingKeys(vuln, keys))
    return found


def findings_of(session: Session, wanted: dict[int, set[str]]) -> dict[int, list[FindingRow]]:
    """The findings of these (manifest, vulnerability ids): an index range each (SQLite reads a
    row-value IN list without the index)."""
    return {manifest_id: findings(session, manifest_id, ids) for manifest_id, ids in wanted.items() if ids}


@dataclass(frozen=True, slots=True)
class Replacement:
    manifest_id: int
    registry_id: str
    vulnerability_ids: frozenset[str] | None  # the findings replaced (None: all of them) ...
    rows: Sequence[FindingRow]  # ... by these


def replace_many(session: Session, replacements: Sequence[Replacement]) -> None:
    """Replace some findings of many manifests: an index range deleted per manifest, one insert in all."""
    if not replacements:
        return
    lock_many(session, [r.manifest_id for r in replacements])
    tx = RawTx.of(session)
    _delete(tx, replacements)
    rows: list[Any] = []
    aliases: list[Any] = []
    encoded: dict[int, tuple[Any, ...]] = {}
    for r in replacements:
        found, named = _insert_rows(tx, r.manifest_id, r.registry_id, r.rows, encoded)
        rows += found
        aliases += named
    tx.many(_INSERT, rows)
    tx.many(_INSERT_ALIAS, aliases)


def summarize_many(
    session: Session, manifest_ids: Sequence[int], scanned_at: datetime, version: int, none_rank: int
) -> dict[int, Summary]:
    """The summaries of the findings stored for these manifests (one grouped read)."""
    found = {m: Summary(SCANNED, scanned_at, version, none_rank, 0, 0, 0.0) for m in manifest_ids}
    for chunk in _chunks(list(manifest_ids)):
        for manifest_id, total, fixable, score, worst in session.execute(
            select(
                _FINDINGS.c.manifest_id,
                func.count(),
                func.coalesce(func.sum(case((_FINDINGS.c.fixable.is_(True), 1), else_=0)), 0),
                func.coalesce(func.sum(func.coalesce(_FINDINGS.c.score, 0.0)), 0.0),
                func.max(_FINDINGS.c.severity),
            )
            .where(_FINDINGS.c.manifest_id.in_(chunk))
            .group_by(_FINDINGS.c.manifest_id)
        ):
            found[manifest_id] = Summary(
                SCANNED,
                scanned_at,
                version,
                none_rank if worst is None else int(worst),
                int(total),
                int(fixable),
                round(float(score), 1),
            )
    return found


# -- the management API's list of an artifact's vulnerabilities --------------------------------------

_ORDERS: dict[str, Any] = {
    "score": _FINDINGS.c.score,
    "severity": _FINDINGS.c.severity,
    "publishedAt": _FINDINGS.c.published_at,
    "updatedAt": _FINDINGS.c.updated_at,
    "fixable": _FINDINGS.c.fixable,
}


@dataclass(frozen=True, slots=True)
class FindingPage:
    rows: list[FindingRow]
    more: bool


def page_of(
    session: Session,
    manifest_id: int,
    *,
    severities: Sequence[int] | None,
    fixable: bool | None,
    order: str,
    descending: bool,
    offset: int,
    limit: int,
) -> FindingPage:
    """One page of a manifest's findings, filtered and ordered (NULLs last, then by id); an artifact
    has at most a few thousand findings, all in one index range of (manifest, vulnerability id)."""
    key = _ORDERS[order]
    query = select(_FINDINGS.c.vulnerability_id).where(_FINDINGS.c.manifest_id == manifest_id)
    if severities is not None:
        query = query.where(_FINDINGS.c.severity.in_(sorted(set(severities))))
    if fixable is not None:
        query = query.where(_FINDINGS.c.fixable.is_(fixable))
    ordered = key.desc() if descending else key.asc()
    query = (
        query.order_by(key.is_(None), ordered, _FINDINGS.c.vulnerability_id).offset(offset).limit(limit + 1)
    )
    ids = list(session.scalars(query))
    rows = {r.vulnerability_id: r for r in findings(session, manifest_id, ids[:limit])}
    return FindingPage([rows[i] for i in ids[:limit] if i in rows], len(ids) > limit)
