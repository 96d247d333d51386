"""Match an image inventory against OSV records: one finding per (vulnerability, package).

OS packages are looked up by source package and matched on the source version (Debian/Ubuntu
advisories are written per source package; ``bsdutils 1:2.38.1-5+deb12u3`` is util-linux
``2.38.1-5+deb12u3``). Records describing the same vulnerability merge into one finding: a DSA/DLA
merges into every CVE it names in ``upstream`` or ``aliases``, ``DEBIAN-CVE-x`` into ``CVE-x``, a GHSA
into its CVE alias. The finding id is the CVE id when there is one, else the advisory id (advisories
without a CVE that alias each other share one finding). ``data_source`` lists the records that
contributed. The caller supplies ``advisories(ecosystem, name)`` (a database index in production,
``RecordIndex`` in memory); ``lookup_keys`` tells which keys an inventory asks for, so a vulnerability
database update only re-matches the inventories it can change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from typing import Any

from cargobay.scanning import severity, versions
from cargobay.scanning.inventory import ImageInventory, ImagePackage
from cargobay.scanning.osv import Hit, OsvRecord, Severity, normalize_name, record_hits

Advisories = Callable[[str, str], Iterable[OsvRecord]]
_ADVISORY_PREFIXES = ("DSA-", "DLA-", "DTSA-", "USN-", "ALSA-", "RLSA-", "RHSA-")
_DEBIAN_CVE = "DEBIAN-CVE-"
_UBUNTU_CVE = "UBUNTU-CVE-"


@dataclass(frozen=True, slots=True)
class Location:
    path: str
    layer: int
    location: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "layer": self.layer, "location": self.location}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the records of one vulnerability say about one version of a package key: everything of
    a finding but the installed package."""

    id: str
    aliases: tuple[str, ...]
    fixed_version: str
    severity: str
    score: float | None
    cvss_vector: str
    summary: str
    details: str
    references: tuple[str, ...]
    data_source: tuple[str, ...]
    published: str
    modified: str
    urgency: str


@dataclass(frozen=True, slots=True)
class Finding(Verdict):
    """One vulnerability in one installed package (``installed_version`` is the package's own version;
    for OS packages the comparison ran on ``source_version``)."""

    package: str
    purl: str
    installed_version: str
    ecosystem: str
    source_name: str
    source_version: str
    fixable: bool
    locations: tuple[Location, ...]

    def to_json(self, *, texts: bool = True) -> dict[str, Any]:
        """The finding as JSON; without ``texts``, no summary, details and references (what is stored
        with an artifact's findings: the texts stay in the vulnerability database)."""
        data = {
            "id": self.id,
            "aliases": list(self.aliases),
            "package": self.package,
            "purl": self.purl,
            "installed_version": self.installed_version,
            "ecosystem": self.ecosystem,
            "source_name": self.source_name,
            "source_version": self.source_version,
            "fixed_version": self.fixed_version,
            "fixable": self.fixable,
            "severity": self.severity,
            "score": self.score,
            "cvss_vector": self.cvss_vector,
            "data_source": list(self.data_source),
            "published": self.published,
            "modified": self.modified,
            "urgency": self.urgency,
            "locations": [loc.to_json() for loc in self.locations],
        }
        if texts:
            data.update(summary=self.summary, details=self.details, references=list(self.references))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        score = data.get("score")
        return cls(
            id=str(data["id"]),
            aliases=tuple(str(a) for a in data.get("aliases", ())),
            package=str(data["package"]),
            purl=str(data.get("purl", "")),
            installed_version=str(data["installed_version"]),
            ecosystem=str(data["ecosystem"]),
            source_name=str(data.get("source_name", "")),
            source_version=str(data.get("source_version", "")),
            fixed_version=str(data.get("fixed_version", "")),
            fixable=bool(data.get("fixable", False)),
            severity=str(data.get("severity", severity.UNKNOWN)),
            score=float(score) if score is not None else None,
            cvss_vector=str(data.get("cvss_vector", "")),
            summary=str(data.get("summary", "")),
            details=str(data.get("details", "")),
            references=tuple(str(r) for r in data.get("references", ())),
            data_source=tuple(str(s) for s in data.get("data_source", ())),
            published=str(data.get("published", "")),
            modified=str(data.get("modified", "")),
            urgency=str(data.get("urgency", "")),
            locations=tuple(
                Location(str(loc["path"]), int(loc["layer"]), str(loc.get("location", "")))
                for loc in data.get("locations", ())
            ),
        )


class RecordIndex:
    """An in-memory ``advisories`` look-up: records indexed by (ecosystem, normalised name)."""

    def __init__(self, records: Iterable[OsvRecord] = ()) -> None:
        self._index: dict[tuple[str, str], list[OsvRecord]] = {}
        for record in records:
            self.add(record)

    def add(self, record: OsvRecord) -> None:
        seen: set[tuple[str, str]] = set()
        for affected in record.affected:
            key = (affected.ecosystem, normalize_name(affected.ecosystem, affected.name))
            if key not in seen:
                seen.add(key)
                self._index.setdefault(key, []).append(record)

    def __call__(self, ecosystem: str, name: str) -> list[OsvRecord]:
        return self._index.get((ecosystem, name), [])


def lookup_keys(inventory: ImageInventory) -> set[tuple[str, str]]:
    """The (ecosystem, normalised name) keys the inventory's matchable packages are looked up by."""
    return {
        (p.ecosystem, normalize_name(p.ecosystem, p.match_name))
        for p in inventory.packages
        if p.ecosystem and versions.scheme_of(p.ecosystem) is not None
    }


def vulnerability_ids(record: OsvRecord) -> tuple[str, ...]:
    """The CVE ids a record stands for (its own id if it is one), else empty."""
    if record.id.startswith("CVE-"):
        return (record.id,)
    for prefix in (_DEBIAN_CVE, _UBUNTU_CVE):
        if record.id.startswith(prefix):
            return ("CVE-" + record.id[len(prefix) :],)
    found: dict[str, None] = {}
    for other in (*record.aliases, *record.upstream):
        if other.startswith("CVE-"):
            found[other] = None
        elif other.startswith(_DEBIAN_CVE):
            found["CVE-" + other[len(_DEBIAN_CVE) :]] = None
    return tuple(found)


@dataclass(slots=True)
class _Group:
    id: str
    records: dict[str, tuple[OsvRecord, list[Hit]]]


def _groups(matched: list[tuple[OsvRecord, list[Hit]]]) -> list[_Group]:
    by_id: dict[str, _Group] = {}
    loose: list[tuple[OsvRecord, list[Hit]]] = []
    for record, hits in matched:
        cves = vulnerability_ids(record)
        if not cves:
            loose.append((record, hits))
        for cve in cves:
            by_id.setdefault(cve, _Group(cve, {})).records[record.id] = (record, hits)
    # Advisories without a CVE: records that name each other (id or alias) are one vulnerability.
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for record, _ in loose:
        for other in (*record.aliases, *record.upstream):
            ra, rb = find(record.id), find(other)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    clusters: dict[str, list[tuple[OsvRecord, list[Hit]]]] = {}
    for record, hits in loose:
        clusters.setdefault(find(record.id), []).append((record, hits))
    for members in clusters.values():
        ident = min(r.id for r, _ in members)
        by_id[ident] = _Group(ident, {r.id: (r, h) for r, h in members})
    return list(by_id.values())


def _rank(record: OsvRecord, finding_id: str) -> tuple[int, str]:
    if record.id == finding_id:
        return (0, record.id)
    if record.id.startswith(_ADVISORY_PREFIXES):
        return (2, record.id)
    return (1, record.id)


def _urgency(hits: Iterable[Hit], record: OsvRecord) -> str:
    for hit in hits:
        for source in (hit.affected.ecosystem_specific, hit.affected.database_specific):
            value = source.get("urgency")
            if isinstance(value, str) and value:
                return value
        for s in hit.affected.severity:
            if s.type == "Ubuntu" and s.score:
                return s.score
    for s in record.severity:
        if s.type == "Ubuntu" and s.score:
            return s.score
    return ""


def _fixed(scheme: str | None, hits: Iterable[Hit]) -> str:
    best = ""
    for hit in hits:
        if hit.fixed and (
            not best or (scheme is not None and versions.compare(scheme, hit.fixed, best) == -1)
        ):
            best = hit.fixed
    return best


def _verdict(group: _Group, scheme: str | None) -> Verdict:
    entries = sorted(group.records.values(), key=lambda rh: _rank(rh[0], group.id))
    all_hits = [h for _, hits in entries for h in hits]
    severities: list[Severity] = []
    aliases: dict[str, None] = {}
    references: dict[str, None] = {}
    urgency = ""
    for record, hits in entries:
        severities.extend(record.severity)
        for hit in hits:
            severities.extend(hit.affected.severity)
        for other in (record.id, *record.aliases, *record.upstream):
            if other != group.id:
                aliases[other] = None
        references.update(dict.fromkeys(record.references))
        urgency = urgency or _urgency(hits, record)
    score = severity.best_score(severities)
    text = next((r for r, _ in entries if r.summary or r.details), None)
    published = [r.published for r, _ in entries if r.published]
    modified = [r.modified for r, _ in entries if r.modified]
    return Verdict(
        id=group.id,
        aliases=tuple(sorted(aliases)),
        fixed_version=_fixed(scheme, all_hits),
        severity=severity.bucket(score.base if score else None),
        score=score.base if score else None,
        cvss_vector=score.vector if score else "",
        summary=text.summary if text else "",
        details=text.details if text else "",
        references=tuple(references),
        data_source=tuple(sorted(group.records)),
        published=min(published) if published else "",
        modified=max(modified) if modified else "",
        urgency=urgency,
    )


_VERDICT_FIELDS = tuple(field.name for field in fields(Verdict))


def _finding(verdict: Verdict, pkg: ImagePackage) -> Finding:
    return Finding(
        **{name: getattr(verdict, name) for name in _VERDICT_FIELDS},
        package=pkg.name,
        purl=pkg.purl,
        installed_version=pkg.version,
        ecosystem=pkg.ecosystem,
        source_name=pkg.source_name,
        source_version=pkg.source_version,
        fixable=bool(verdict.fixed_version),
        locations=(Location(pkg.path, pkg.layer, pkg.location),),
    )


class MatchMemo:
    """Verdicts kept across matches, by package key, version and the records (id, modified) behind
    them: images on one base ask the same questions of the same records, which an import changes.
    Bounded: emptied when full. Safe to share between threads (single dict operations)."""

    def __init__(self, size: int = 1 << 15) -> None:
        self._items: dict[Any, list[Verdict]] = {}
        self._size = size

    def get(self, key: Any) -> list[Verdict] | None:
        return self._items.get(key)

    def put(self, key: Any, verdicts: list[Verdict]) -> None:
        if len(self._items) >= self._size:
            self._items.clear()
        self._items[key] = verdicts


def _verdicts(records: Iterable[OsvRecord], ecosystem: str, name: str, version: str) -> list[Verdict]:
    matched = []
    for record in records:
        hits = record_hits(record, ecosystem, name, version)
        if hits:
            matched.append((record, hits))
    scheme = versions.scheme_of(ecosystem)
    return [_verdict(group, scheme) for group in _groups(matched)]


def match(inventory: ImageInventory, advisories: Advisories, memo: MatchMemo | None = None) -> list[Finding]:
    """Findings for every matchable package, sorted by package, version and id; ``memo`` keeps what
    the records say about each (key, version) for later matches."""
    cache: dict[tuple[str, str, str], list[Verdict]] = {}
    findings: dict[tuple[str, str, str, str], Finding] = {}
    for pkg in inventory.packages:
        if not pkg.ecosystem or versions.scheme_of(pkg.ecosystem) is None:
            continue
        key = (pkg.ecosystem, normalize_name(pkg.ecosystem, pkg.match_name), pkg.match_version)
        verdicts = cache.get(key)
        if verdicts is None:
            records = tuple(advisories(key[0], key[1]))
            shared = (key, tuple((r.id, r.modified) for r in records))
            verdicts = memo.get(shared) if memo is not None else None
            if verdicts is None:
                verdicts = _verdicts(records, pkg.ecosystem, pkg.match_name, pkg.match_version)
                if memo is not None:
                    memo.put(shared, verdicts)
            cache[key] = verdicts
        for verdict in verdicts:
            finding = _finding(verdict, pkg)
            fkey = (finding.id, pkg.ecosystem, pkg.purl or pkg.name, pkg.version)
            previous = findings.get(fkey)
            if previous is None:
                findings[fkey] = finding
            else:
                merged = tuple(dict.fromkeys(previous.locations + finding.locations))
                findings[fkey] = replace(previous, locations=merged)
    return sorted(findings.values(), key=lambda f: (f.package, f.installed_version, f.id, f.purl))
