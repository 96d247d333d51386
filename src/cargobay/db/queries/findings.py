"""Findings of artifacts: one row per (manifest, vulnerability) with the per-package matches behind it,
and the aliases (DSA, GHSA, DEBIAN-CVE…) a search by id also finds it under.

The rows are indexed by (registry, vulnerability id) and the aliases by (registry, alias), so "which
artifacts have CVE-x" is two index ranges, never a walk over artifacts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, insert, select, union
from sqlalchemy.orm import Session

from cargobay.db.models import Manifest, ScanFinding, ScanFindingAlias

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


def _finding_values(manifest_id: int, registry_id: str, row: FindingRow) -> dict[str, Any]:
    return {
        "manifest_id": manifest_id,
        "registry_id": registry_id,
        "vulnerability_id": row.vulnerability_id,
        "severity": row.severity,
        "score": row.score,
        "fixable": row.fixable,
        "published_at": row.published_at,
        "updated_at": row.updated_at,
        "detail": {"keys": row.keys, "matches": row.matches},
    }


def _insert_findings(
    session: Session, manifest_id: int, registry_id: str, rows: Sequence[FindingRow]
) -> None:
    if not rows:
        return
    ids = session.execute(
        insert(ScanFinding).returning(
            ScanFinding.id, ScanFinding.vulnerability_id, sort_by_parameter_order=True
        ),
        [_finding_values(manifest_id, registry_id, r) for r in rows],
    ).all()
    by_vuln = {vuln: finding_id for finding_id, vuln in ids}
    aliases = [
        {
            "finding_id": by_vuln[r.vulnerability_id],
            "alias": a,
            "registry_id": registry_id,
            "manifest_id": manifest_id,
        }
        for r in rows
        for a in r.aliases
        if a != r.vulnerability_id
    ]
    if aliases:
        session.execute(insert(ScanFindingAlias), aliases)


def replace_findings(
    session: Session, manifest_id: int, registry_id: str, rows: Sequence[FindingRow]
) -> None:
    """The manifest's findings become ``rows``."""
    lock(session, manifest_id)
    _delete_alias_rows(session, [manifest_id])
    session.execute(delete(ScanFinding).where(ScanFinding.manifest_id == manifest_id))
    _insert_findings(session, manifest_id, registry_id, rows)


def replace_vulnerabilities(
    session: Session,
    manifest_id: int,
    registry_id: str,
    vulnerability_ids: Iterable[str],
    rows: Sequence[FindingRow],
) -> None:
    """Replace only the findings of ``vulnerability_ids`` (a rescan's) with ``rows``."""
    lock(session, manifest_id)
    wanted = sorted(set(vulnerability_ids))
    for chunk in _chunks(wanted):
        old = select(ScanFinding.id).where(
            ScanFinding.manifest_id == manifest_id, ScanFinding.vulnerability_id.in_(chunk)
        )
        session.execute(delete(ScanFindingAlias).where(ScanFindingAlias.finding_id.in_(old)))
        session.execute(
            delete(ScanFinding).where(
                ScanFinding.manifest_id == manifest_id, ScanFinding.vulnerability_id.in_(chunk)
            )
        )
    _insert_findings(session, manifest_id, registry_id, rows)


def _delete_alias_rows(session: Session, manifest_ids: Sequence[int]) -> None:
    # SQLite enforces ON DELETE CASCADE only with foreign_keys on (it is), but deleting explicitly keeps
    # the statement count predictable and works on connections opened elsewhere too.
    session.execute(
        delete(ScanFindingAlias).where(
            ScanFindingAlias.finding_id.in_(
                select(ScanFinding.id).where(ScanFinding.manifest_id.in_(manifest_ids))
            )
        )
    )


@dataclass(frozen=True, slots=True)
class FindingKeys:
    """A stored finding, light: which package keys its matches have."""

    vulnerability_id: str
    keys: str


def finding_keys(session: Session, manifest_id: int) -> list[FindingKeys]:
    rows = session.execute(
        select(ScanFinding.vulnerability_id, ScanFinding.detail).where(ScanFinding.manifest_id == manifest_id)
    )
    return [FindingKeys(v, str((d or {}).get("keys", ""))) for v, d in rows]


def findings(
    session: Session, manifest_id: int, vulnerability_ids: Iterable[str] | None = None
) -> list[FindingRow]:
    query = select(ScanFinding).where(ScanFinding.manifest_id == manifest_id)
    if vulnerability_ids is not None:
        wanted = sorted(set(vulnerability_ids))
        if not wanted:
            return []
        query = query.where(ScanFinding.vulnerability_id.in_(wanted))
    rows = list(session.scalars(query.order_by(ScanFinding.vulnerability_id)))
    aliases = _aliases_of(session, [r.id for r in rows])
    return [
        FindingRow(
            vulnerability_id=r.vulnerability_id,
            severity=r.severity,
            score=r.score,
            fixable=r.fixable,
            published_at=r.published_at,
            updated_at=r.updated_at,
            aliases=aliases.get(r.id, ()),
            keys=str((r.detail or {}).get("keys", "")),
            matches=list((r.detail or {}).get("matches", [])),
        )
        for r in rows
    ]


def _aliases_of(session: Session, finding_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = {}
    for chunk in _chunks(list(finding_ids)):
        for finding_id, alias in session.execute(
            select(ScanFindingAlias.finding_id, ScanFindingAlias.alias)
            .where(ScanFindingAlias.finding_id.in_(chunk))
            .order_by(ScanFindingAlias.alias)
        ):
            found.setdefault(finding_id, []).append(alias)
    return {k: tuple(v) for k, v in found.items()}


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
    by_alias = select(ScanFindingAlias.manifest_id).where(
        ScanFindingAlias.registry_id == registry_id, ScanFindingAlias.alias == ident
    )
    return union(by_id, by_alias)


def manifests_with(session: Session, registry_id: str, ident: str) -> list[int]:
    return sorted(session.scalars(affected_manifests(registry_id, ident)))
