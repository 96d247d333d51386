"""From the matcher's findings to what is stored and shown: one row per vulnerability of an artifact.

``scanning.matcher`` reports one finding per (vulnerability, package). An artifact shows each
vulnerability once, with the packages it affects: severity and score are the highest among them, it is
fixable when every affected package has a fixed version, published is the earliest and updated the
latest record time. The per-package matches are kept with the row (without the advisory texts, which
stay in the vulnerability database) so that a rescan can replace the matches of changed packages only,
and an image index can show the union of its children.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from cargobay.db.queries.findings import FindingRow
from cargobay.scanning import severity, versions
from cargobay.scanning.inventory import ImageInventory, ImagePackage
from cargobay.scanning.matcher import Finding
from cargobay.scanning.osv import normalize_name
from cargobay.services.vulndb import parse_time

RANKS = {level: rank for rank, level in enumerate(severity.LEVELS)}  # unknown 0 .. critical 5
NONE_RANK = RANKS[severity.NONE]
_BY_SOURCE = (versions.DPKG, versions.APK)

Key = tuple[str, str]


def severity_name(rank: int | None) -> str | None:
    return severity.LEVELS[rank] if rank is not None and 0 <= rank < len(severity.LEVELS) else None


def package_key(pkg: ImagePackage) -> Key:
    return (pkg.ecosystem, normalize_name(pkg.ecosystem, pkg.match_name))


def match_key(match: dict[str, Any]) -> Key:
    """The lookup key of a stored match (the package's, as ``package_key`` gives it)."""
    return _match_key(
        str(match.get("ecosystem", "")), str(match.get("package", "")), str(match.get("source_name") or "")
    )


@lru_cache(maxsize=1 << 14)
def _match_key(ecosystem: str, package: str, source_name: str) -> Key:
    name = (source_name or package) if versions.scheme_of(ecosystem) in _BY_SOURCE else package
    return (ecosystem, normalize_name(ecosystem, name))


def key_line(key: Key) -> str:
    return f"{key[0]}\t{key[1]}"


def inventory_keys(
    inventory: ImageInventory, encoded: Sequence[dict[str, Any]] | None = None
) -> dict[Key, list[dict[str, Any]]]:
    """The matchable packages of an inventory by lookup key (what the key index stores); ``encoded``:
    the packages' JSON already made (``inventory.to_json()["packages"]``)."""
    keys: dict[Key, list[dict[str, Any]]] = {}
    for index, pkg in enumerate(inventory.packages):
        if not pkg.ecosystem or versions.scheme_of(pkg.ecosystem) is None:
            continue
        key = package_key(pkg)
        if len(key[1]) > 1000:
            continue
        keys.setdefault(key, []).append(encoded[index] if encoded is not None else pkg.to_json())
    return keys


def compact(finding: Finding) -> dict[str, Any]:
    return finding.to_json(texts=False)


def _rank(match: dict[str, Any]) -> int:
    return RANKS.get(str(match.get("severity", severity.UNKNOWN)), 0)


def _times(matches: Iterable[dict[str, Any]], field: str) -> list[datetime]:
    return [t for m in matches if (t := parse_time(str(m.get(field) or ""))) is not None]


def rows_from_matches(matches: Iterable[dict[str, Any]]) -> list[FindingRow]:
    """Group per-package matches by vulnerability id (duplicates of one package match are dropped)."""
    grouped: dict[str, dict[tuple[str, str, str], dict[str, Any]]] = {}
    for match in matches:
        ident = str(match["id"])
        package = (
            str(match.get("ecosystem", "")),
            str(match.get("purl") or match.get("package")),
            str(match.get("installed_version", "")),
        )
        grouped.setdefault(ident, {}).setdefault(package, match)
    rows = []
    for ident in sorted(grouped):
        members = sorted(
            grouped[ident].values(),
            key=lambda m: (str(m.get("package", "")), str(m.get("installed_version", ""))),
        )
        scores = [float(m["score"]) for m in members if m.get("score") is not None]
        published = _times(members, "published")
        updated = _times(members, "modified")
        aliases = sorted({str(a) for m in members for a in m.get("aliases", ()) if a != ident})
        rows.append(
            FindingRow(
                vulnerability_id=ident,
                severity=max(_rank(m) for m in members),
                score=max(scores) if scores else None,
                fixable=all(bool(m.get("fixable")) for m in members),
                published_at=min(published) if published else None,
                updated_at=max(updated) if updated else None,
                aliases=tuple(aliases),
                keys="\n".join(sorted({key_line(match_key(m)) for m in members})),
                matches=members,
            )
        )
    return rows


def rows_from_findings(findings: Iterable[Finding]) -> list[FindingRow]:
    return rows_from_matches(compact(f) for f in findings)


def union(rows: Iterable[FindingRow]) -> list[FindingRow]:
    """The findings of an image index: every vulnerability of its children, each package once."""
    return rows_from_matches(m for row in rows for m in row.matches)


def recommendation(row_matches: Iterable[dict[str, Any]]) -> str:
    """ "Upgrade glibc to 2.36-9+deb12u3" for each affected package that has a fix."""
    advice = []
    for match in row_matches:
        fixed = match.get("fixed_version")
        if fixed:
            name = match.get("source_name") or match.get("package")
            line = f"Upgrade {name} to {fixed}"
            if line not in advice:
                advice.append(line)
    return "; ".join(advice)
