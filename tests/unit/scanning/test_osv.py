from __future__ import annotations

from typing import Any

import pytest

from cargobay.scanning.osv import InvalidRecord, OsvRecord, parse_records, record_hits
from tests.support import osv_records as R


def record(
    ecosystem: str, name: str, events: list[dict[str, str]], kind: str = "ECOSYSTEM", **extra: Any
) -> OsvRecord:
    affected: dict[str, Any] = {
        "package": {"ecosystem": ecosystem, "name": name},
        "ranges": [{"type": kind, "events": events}],
    }
    affected.update(extra)
    return OsvRecord.parse({"id": "TEST-1", "modified": "2024-01-01T00:00:00Z", "affected": [affected]})


def fixed_of(rec: OsvRecord, ecosystem: str, name: str, version: str) -> str | None:
    hits = record_hits(rec, ecosystem, name, version)
    return hits[0].fixed if hits else None


def test_installed_equal_to_fixed_is_not_vulnerable() -> None:
    rec = OsvRecord.parse(R.DEBIAN_CVE_2024_28085)
    assert fixed_of(rec, "Debian:12", "util-linux", "2.38.1-5+deb12u1") is None
    assert fixed_of(rec, "Debian:12", "util-linux", "2.38.1-5") == "2.38.1-5+deb12u1"
    assert fixed_of(rec, "Debian:12", "util-linux", "2.38.1-5+deb12u3") is None


def test_release_specific_debian_ecosystems_do_not_cross() -> None:
    rec = OsvRecord.parse(R.DEBIAN_CVE_2024_28085)
    assert fixed_of(rec, "Debian:11", "util-linux", "2.36.1-8+deb11u1") == "2.36.1-8+deb11u2"
    assert fixed_of(rec, "Debian:13", "util-linux", "2.38.1-5") is None
    only11 = record("Debian:11", "glibc", [{"introduced": "0"}, {"fixed": "2.31-13+deb11u7"}])
    assert record_hits(only11, "Debian:12", "glibc", "2.36-9+deb12u1") == []


def test_unfixed_debian_entry_matches_every_version_without_a_fix() -> None:
    rec = OsvRecord.parse(R.DEBIAN_CVE_2022_0563)
    assert fixed_of(rec, "Debian:12", "util-linux", "2.38.1-5+deb12u3") == ""


def test_several_introduced_fixed_pairs_in_one_range() -> None:
    rec = OsvRecord.parse(R.GHSA_LOG4SHELL)
    cases = {
        "2.0-beta8": None,
        "2.0-beta9": "2.3.1",
        "2.3.1": None,
        "2.4": "2.12.2",
        "2.12.1": "2.12.2",
        "2.12.2": None,
        "2.14.1": "2.15.0",
        "2.15.0": None,
        "2.17.0": None,
    }
    got = {v: fixed_of(rec, "Maven", "org.apache.logging.log4j:log4j-core", v) for v in cases}
    assert got == cases


def test_last_affected_is_inclusive() -> None:
    rec = record("PyPI", "pkg", [{"introduced": "1.0"}, {"last_affected": "1.4.2"}])
    assert fixed_of(rec, "PyPI", "pkg", "1.4.2") == ""
    assert fixed_of(rec, "PyPI", "pkg", "1.4.2.post1") is None
    assert fixed_of(rec, "PyPI", "pkg", "0.9") is None


def test_limit_caps_the_range() -> None:
    rec = record("npm", "pkg", [{"introduced": "0"}, {"limit": "2.0.0"}], kind="SEMVER")
    assert fixed_of(rec, "npm", "pkg", "1.9.9") == ""
    assert fixed_of(rec, "npm", "pkg", "2.0.0") is None
    star = record("npm", "pkg", [{"introduced": "1.0.0"}, {"limit": "*"}], kind="SEMVER")
    assert fixed_of(star, "npm", "pkg", "9.0.0") == ""


def test_versions_list_without_ranges_and_pep440_equivalence() -> None:
    rec = OsvRecord.parse(
        {
            "id": "PYSEC-X",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "Foo.Bar"}, "versions": ["1.0", "1.1"]}],
        }
    )
    assert fixed_of(rec, "PyPI", "foo-bar", "1.0.0") == ""
    assert fixed_of(rec, "PyPI", "FOO_bar", "1.1") == ""
    assert fixed_of(rec, "PyPI", "foo-bar", "1.2") is None


def test_pep503_names_match_but_other_ecosystems_are_exact() -> None:
    rec = OsvRecord.parse(R.PYSEC_2023_74)  # the record says "Requests"
    assert fixed_of(rec, "PyPI", "requests", "2.28.1") == "2.31.0"
    npm = record("npm", "Lodash", [{"introduced": "0"}], kind="SEMVER")
    assert record_hits(npm, "npm", "lodash", "1.0.0") == []


def test_go_semver_range_with_prerelease_introduced_and_v_prefix() -> None:
    rec = OsvRecord.parse(R.GO_2023_2102)
    assert fixed_of(rec, "Go", "stdlib", "1.21.0") == "1.21.3"
    assert fixed_of(rec, "Go", "stdlib", "1.20.9") == "1.20.10"
    assert fixed_of(rec, "Go", "stdlib", "1.20.10") is None
    assert fixed_of(rec, "Go", "stdlib", "1.21.3") is None
    assert fixed_of(rec, "Go", "golang.org/x/net", "v0.13.0") == "0.17.0"
    assert fixed_of(rec, "Go", "golang.org/x/net", "v0.17.0") is None


def test_withdrawn_records_match_nothing() -> None:
    assert record_hits(OsvRecord.parse(R.WITHDRAWN), "npm", "lodash", "4.17.20") == []


def test_unparsable_event_versions_and_git_ranges_never_match() -> None:
    assert (
        record_hits(
            record("Debian:12", "x", [{"introduced": "0"}, {"fixed": "!!bad"}]), "Debian:12", "x", "1.0"
        )
        == []
    )
    assert record_hits(record("Go", "x", [{"introduced": "0"}], kind="GIT"), "Go", "x", "v1.0.0") == []
    assert record_hits(record("Packagist", "x", [{"introduced": "0"}]), "Packagist", "x", "1.0") == []


def test_events_are_sorted_before_evaluation() -> None:
    rec = record(
        "Debian:12",
        "x",
        [{"fixed": "1.5-1"}, {"introduced": "1.0-1"}, {"introduced": "0"}, {"fixed": "0.5-1"}],
    )
    assert fixed_of(rec, "Debian:12", "x", "0.1-1") == "0.5-1"
    assert fixed_of(rec, "Debian:12", "x", "0.7-1") is None
    assert fixed_of(rec, "Debian:12", "x", "1.2-1") == "1.5-1"


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"id": 5},
        {"modified": "x"},
        {"id": "X", "aliases": "CVE-1"},
        {"id": "X", "affected": [{"package": {"name": 3}}]},
        {"id": "X", "affected": [{"ranges": [{"events": ["0"]}]}]},
        {"id": "X", "severity": [{"type": "CVSS_V3", "score": 9.8}]},
        {"id": "X", "references": ["https://x"]},
    ],
)
def test_wrong_types_are_rejected(bad: Any) -> None:
    with pytest.raises(InvalidRecord):
        OsvRecord.parse(bad)


def test_missing_optional_fields_are_tolerated_and_bulk_parse_reports_bad_ones() -> None:
    rec = OsvRecord.parse({"id": "X"})
    assert (rec.modified, rec.affected, rec.aliases) == ("", (), ())
    records, problems = parse_records([R.GHSA_LODASH, {"id": "BAD", "aliases": 1}, 7])
    assert [r.id for r in records] == ["GHSA-35jh-r3h4-6jhm"]
    assert problems == ["BAD: aliases must be an array", "#2: an OSV record is a JSON object"]
