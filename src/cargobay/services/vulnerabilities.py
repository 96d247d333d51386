"""Vulnerabilities as users see them: an artifact's findings (one per vulnerability, with the packages
it affects) and one advisory by id, each with the description and references of its OSV records.

Findings keep only what is particular to an artifact (packages, versions, fixes, rating); the texts
stay in the vulnerability database once and are joined here for the page being shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from cargobay.db.engine import Database
from cargobay.db.queries import findings as finding_queries
from cargobay.db.queries import vulndb as store
from cargobay.db.queries.findings import FindingRow
from cargobay.domain.errors import InvalidInput, NotFound
from cargobay.scanning import severity as severities
from cargobay.services.scan_results import RANKS, recommendation, severity_name
from cargobay.services.vulndb import AdvisoryView, VulnerabilityDatabase, advisory_view, purl_type

SEVERITY_NAMES = tuple(severities.LEVELS)


@dataclass(frozen=True, slots=True)
class AffectedPackage:
    type: str  # purl type
    name: str
    version: str  # the installed version (an artifact's finding) or the affected range (an advisory)
    fixed_version: str = ""
    purl: str = ""


@dataclass(frozen=True, slots=True)
class VulnerabilityView:
    id: str
    aliases: tuple[str, ...]
    description: str
    recommendations: str
    data_source: str
    data_source_url: str
    fixable: bool
    affects: tuple[AffectedPackage, ...]
    references: tuple[str, ...]
    severity: str
    score: float | None
    published_at: datetime | None
    updated_at: datetime | None
    vector: str = ""  # the CVSS vector the score was computed from


@dataclass(frozen=True, slots=True)
class FindingQuery:
    offset: int
    limit: int
    order: str  # score, severity, publishedAt, updatedAt, fixable
    descending: bool
    severities: frozenset[str] | None = None  # lower-case names of scanning.severity.LEVELS
    fixable: bool | None = None


def severity_ranks(names: frozenset[str] | None, field: str = "filter.severity") -> list[int] | None:
    if names is None:
        return None
    unknown = sorted(n for n in names if n not in RANKS)
    if unknown:
        raise InvalidInput(f"{', '.join(unknown)} is not one of {', '.join(SEVERITY_NAMES)}", field=field)
    return [RANKS[n] for n in names]


def _purl_type(purl: str, ecosystem: str) -> str:
    if purl.startswith("pkg:") and "/" in purl:
        return purl[4:].split("/", 1)[0]
    return purl_type(ecosystem)


def finding_view(row: FindingRow, texts: AdvisoryView | None) -> VulnerabilityView:
    affects = tuple(
        AffectedPackage(
            type=_purl_type(str(m.get("purl", "")), str(m.get("ecosystem", ""))),
            name=str(m.get("package", "")),
            version=str(m.get("installed_version", "")),
            fixed_version=str(m.get("fixed_version") or ""),
            purl=str(m.get("purl", "")),
        )
        for m in row.matches
    )
    sources = sorted({str(s) for m in row.matches for s in m.get("data_source", ())})
    return VulnerabilityView(
        id=row.vulnerability_id,
        aliases=row.aliases,
        description=texts.description if texts else "",
        recommendations=recommendation(row.matches),
        data_source=texts.data_source if texts else (sources[0] if sources else row.vulnerability_id),
        data_source_url=texts.data_source_url if texts else "",
        fixable=row.fixable,
        affects=affects,
        references=texts.references if texts else (),
        severity=severity_name(row.severity) or severities.UNKNOWN,
        score=row.score,
        published_at=row.published_at,
        updated_at=row.updated_at,
        vector=texts.cvss_vector if texts else "",
    )


def advisory_to_view(view: AdvisoryView) -> VulnerabilityView:
    fixes = [a for a in view.affects if a.fixed]
    return VulnerabilityView(
        id=view.id,
        aliases=view.aliases,
        description=view.description,
        recommendations="; ".join(f"Upgrade {a.name} to {', '.join(a.fixed)}" for a in fixes[:10]),
        data_source=view.data_source,
        data_source_url=view.data_source_url,
        fixable=view.fixable,
        affects=tuple(AffectedPackage(a.type, a.name, a.versions, ", ".join(a.fixed)) for a in view.affects),
        references=view.references,
        severity=view.severity,
        score=view.score,
        published_at=view.published,
        updated_at=view.modified,
        vector=view.cvss_vector,
    )


class VulnerabilityService:
    def __init__(self, db: Database, vulndb: VulnerabilityDatabase) -> None:
        self.db = db
        self.vulndb = vulndb

    async def find(self, ident: str) -> VulnerabilityView:
        """One advisory by id or alias, for any authenticated caller (the database is global)."""
        return await self.db.read(self.advisory, ident)

    def views(self, session: Session, rows: Sequence[FindingRow]) -> list[VulnerabilityView]:
        """Findings with the texts of their records (one read for the whole page)."""
        wanted = {str(s) for row in rows for m in row.matches for s in m.get("data_source", ())}
        records = {r.id: r for r in store.records_by_id(session, wanted)}
        out = []
        for row in rows:
            ids = sorted({str(s) for m in row.matches for s in m.get("data_source", ())})
            parsed = [self.vulndb.parsed(records[i]) for i in ids if i in records]
            out.append(finding_view(row, advisory_view(row.vulnerability_id, parsed) if parsed else None))
        return out

    def page(
        self, session: Session, manifest_id: int, query: FindingQuery
    ) -> tuple[list[VulnerabilityView], bool]:
        """One page of a manifest's findings and whether more follow (the caller checked access)."""
        found = finding_queries.page_of(
            session,
            manifest_id,
            severities=severity_ranks(query.severities),
            fixable=query.fixable,
            order=query.order,
            descending=query.descending,
            offset=query.offset,
            limit=query.limit,
        )
        return self.views(session, found.rows), found.more

    def advisory(self, session: Session, ident: str) -> VulnerabilityView:
        view = self.vulndb.advisory(session, ident)
        if view is None:
            raise NotFound(
                "vulnerability", ident, f"vulnerability {ident} not found in the vulnerability database"
            )
        return advisory_to_view(view)
