"""OSV records (ossf/osv-schema 1.x) as dataclasses, and exact evaluation of their ``affected`` entries.

Parsing is tolerant of missing optional fields and strict on types: a field of the wrong JSON type
raises ``InvalidRecord`` (the importer skips that record) instead of being half-understood.
Evaluation follows the schema's algorithm: a version is affected when it is listed in ``versions``
or lies in an ``ECOSYSTEM``/``SEMVER`` range (events sorted by version; ``introduced`` opens,
``fixed`` closes at that version, ``last_affected`` closes after it, ``limit`` caps the range).
``GIT`` ranges need the repository graph and are ignored offline; ranges whose events do not parse
under the ecosystem's ordering are ignored rather than guessed. A withdrawn record matches nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cargobay.scanning import versions
from cargobay.scanning.purls import pypi_name

INTRODUCED = "introduced"
FIXED = "fixed"
LAST_AFFECTED = "last_affected"
LIMIT = "limit"
EVENT_KINDS = (INTRODUCED, FIXED, LAST_AFFECTED, LIMIT)


class InvalidRecord(ValueError):
    """An OSV record whose fields have the wrong types."""


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    version: str


@dataclass(frozen=True, slots=True)
class Range:
    type: str
    events: tuple[Event, ...]
    repo: str = ""


@dataclass(frozen=True, slots=True)
class Severity:
    type: str
    score: str


@dataclass(frozen=True, slots=True)
class Affected:
    ecosystem: str
    name: str
    purl: str
    ranges: tuple[Range, ...]
    versions: tuple[str, ...]
    severity: tuple[Severity, ...]
    ecosystem_specific: Mapping[str, Any]
    database_specific: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class OsvRecord:
    id: str
    modified: str
    published: str
    withdrawn: str
    aliases: tuple[str, ...]
    upstream: tuple[str, ...]
    related: tuple[str, ...]
    summary: str
    details: str
    severity: tuple[Severity, ...]
    affected: tuple[Affected, ...]
    references: tuple[str, ...]
    database_specific: Mapping[str, Any]

    @classmethod
    def parse(cls, data: Any) -> OsvRecord:
        if not isinstance(data, dict):
            raise InvalidRecord("an OSV record is a JSON object")
        record_id = _str(data, "id", required=True)
        return cls(
            id=record_id,
            modified=_str(data, "modified"),
            published=_str(data, "published"),
            withdrawn=_str(data, "withdrawn"),
            aliases=_strings(data, "aliases"),
            upstream=_strings(data, "upstream"),
            related=_strings(data, "related"),
            summary=_str(data, "summary"),
            details=_str(data, "details"),
            severity=_severities(data),
            affected=tuple(_affected(a) for a in _list(data, "affected")),
            references=tuple(
                _str(r, "url") for r in _list(data, "references") if _is_obj(r) and r.get("url")
            ),
            database_specific=_obj(data, "database_specific"),
        )


def _is_obj(value: Any) -> bool:
    if not isinstance(value, dict):
        raise InvalidRecord("expected a JSON object")
    return True


def _str(data: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise InvalidRecord(f"missing {key}")
        return ""
    if not isinstance(value, str):
        raise InvalidRecord(f"{key} must be a string")
    return value


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRecord(f"{key} must be an array")
    return value


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    items = _list(data, key)
    if not all(isinstance(i, str) for i in items):
        raise InvalidRecord(f"{key} must be an array of strings")
    return tuple(items)


def _obj(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRecord(f"{key} must be an object")
    return value


def _severities(data: Mapping[str, Any]) -> tuple[Severity, ...]:
    out = []
    for s in _list(data, "severity"):
        _is_obj(s)
        out.append(Severity(_str(s, "type"), _str(s, "score")))
    return tuple(out)


def _affected(data: Any) -> Affected:
    _is_obj(data)
    package = _obj(data, "package")
    ranges = []
    for r in _list(data, "ranges"):
        _is_obj(r)
        events = []
        for e in _list(r, "events"):
            _is_obj(e)
            for kind in EVENT_KINDS:
                if kind in e:
                    events.append(Event(kind, _str(e, kind)))
                    break
        ranges.append(Range(_str(r, "type"), tuple(events), _str(r, "repo")))
    return Affected(
        ecosystem=_str(package, "ecosystem"),
        name=_str(package, "name"),
        purl=_str(package, "purl"),
        ranges=tuple(ranges),
        versions=_strings(data, "versions"),
        severity=_severities(data),
        ecosystem_specific=_obj(data, "ecosystem_specific"),
        database_specific=_obj(data, "database_specific"),
    )


def normalize_name(ecosystem: str, name: str) -> str:
    """The name under which packages and advisories meet: PEP 503 for PyPI, the name as is elsewhere."""
    return pypi_name(name) if ecosystem == "PyPI" else name


@dataclass(frozen=True, slots=True)
class Hit:
    """An affected entry that covers an installed version; ``fixed`` is the nearest fix above it."""

    affected: Affected
    fixed: str


def _range_hit(scheme: str, rng: Range, installed: versions.Comparable) -> tuple[bool, str]:
    """(affected?, nearest fixed version above installed) for one range, per the OSV algorithm."""
    keyed: list[tuple[versions.Comparable | None, int, Event]] = []
    limits: list[versions.Comparable] = []
    for order, event in enumerate(rng.events):
        if event.kind == INTRODUCED and event.version == "0":
            keyed.append((None, order, event))
            continue
        if event.kind == LIMIT and event.version == "*":
            continue
        key = versions.parse(scheme, event.version)
        if key is None:
            return False, ""  # an event we cannot order: do not guess
        if event.kind == LIMIT:
            limits.append(key)
        else:
            keyed.append((key, order, event))
    if limits and not any(installed < lim for lim in limits):
        return False, ""
    # "0" sorts before everything; equal versions keep the record's order.
    keyed.sort(key=_SortKey)
    affected = False
    for key, _, event in keyed:
        if event.kind == INTRODUCED:
            if key is None or key <= installed:
                affected = True
        elif event.kind == FIXED:
            if key is not None and key <= installed:
                affected = False
        elif event.kind == LAST_AFFECTED and key is not None and key < installed:
            affected = False
    if not affected:
        return False, ""
    fixes = [(k, e.version) for k, _, e in keyed if e.kind == FIXED and k is not None and installed < k]
    if not fixes:
        return True, ""
    nearest = fixes[0]
    for candidate in fixes[1:]:
        if candidate[0] < nearest[0]:
            nearest = candidate
    return True, nearest[1]


class _SortKey:
    """Sort key for (version key | None, order, event): None first, then by version, then record order."""

    __slots__ = ("item",)

    def __init__(self, item: tuple[versions.Comparable | None, int, Event]) -> None:
        self.item = item

    def __lt__(self, other: _SortKey) -> bool:
        a, b = self.item[0], other.item[0]
        if a is None or b is None:
            if a is None and b is None:
                return self.item[1] < other.item[1]
            return a is None
        if a < b:
            return True
        if b < a:
            return False
        return self.item[1] < other.item[1]


def affected_hit(affected: Affected, ecosystem: str, version: str) -> Hit | None:
    """Whether ``affected`` (already known to name this ecosystem and package) covers ``version``."""
    scheme = versions.scheme_of(ecosystem)
    if scheme is None:
        return None
    installed = versions.parse(scheme, version)
    listed = version in affected.versions
    if not listed and installed is not None and affected.versions:
        listed = any(versions.parse(scheme, v) == installed for v in affected.versions)
    best_fix = ""
    in_range = False
    if installed is not None:
        for rng in affected.ranges:
            if rng.type == "ECOSYSTEM":
                range_scheme = scheme
            elif rng.type == "SEMVER":
                range_scheme = versions.GO if scheme == versions.GO else versions.SEMVER
            else:
                continue
            key = installed if range_scheme == scheme else versions.parse(range_scheme, version)
            if key is None:
                continue
            hit, fixed = _range_hit(range_scheme, rng, key)
            if not hit:
                continue
            in_range = True
            if fixed and (not best_fix or versions.compare(range_scheme, fixed, best_fix) == -1):
                best_fix = fixed
    if not (listed or in_range):
        return None
    return Hit(affected, best_fix)


def record_hits(record: OsvRecord, ecosystem: str, name: str, version: str) -> list[Hit]:
    """Every affected entry of ``record`` naming (ecosystem, name) that covers ``version``."""
    if record.withdrawn:
        return []
    wanted = normalize_name(ecosystem, name)
    hits = []
    for affected in record.affected:
        if affected.ecosystem != ecosystem or normalize_name(ecosystem, affected.name) != wanted:
            continue
        hit = affected_hit(affected, ecosystem, version)
        if hit is not None:
            hits.append(hit)
    return hits


def parse_records(items: Iterable[Any]) -> tuple[list[OsvRecord], list[str]]:
    """Parse many records; invalid ones are reported by id (or position), not raised."""
    records: list[OsvRecord] = []
    problems: list[str] = []
    for index, item in enumerate(items):
        try:
            records.append(OsvRecord.parse(item))
        except InvalidRecord as exc:
            ident = item.get("id") if isinstance(item, dict) else None
            problems.append(f"{ident if isinstance(ident, str) else f'#{index}'}: {exc}")
    return records, problems
