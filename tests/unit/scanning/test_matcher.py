from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from cargobay.scanning import matcher
from cargobay.scanning.inventory import ImageInventory, merge
from cargobay.scanning.layers import read_layer
from cargobay.scanning.matcher import Finding, MatchMemo, RecordIndex, lookup_keys, match
from cargobay.scanning.osv import OsvRecord
from tests.support import osv_records as R
from tests.support.scanimages import (
    DEBIAN12_OS_RELEASE,
    Entry,
    dist_info,
    dpkg_stanza,
    jar,
    layer_tar,
    npm_package,
    rpm_header,
    rpmdb,
)

STATUS = "\n".join(
    [
        dpkg_stanza("bsdutils", "1:2.38.1-5+b1", "util-linux (2.38.1-5)"),
        dpkg_stanza("mount", "2.38.1-5+b1", "util-linux (2.38.1-5)"),
        dpkg_stanza("libc6", "2.36-9+deb12u1", "glibc"),
        dpkg_stanza("bash", "5.2.15-2+b2", "bash (5.2.15-2)"),
    ]
)


@pytest.fixture(scope="module")
def image() -> ImageInventory:
    base = layer_tar([("etc/os-release", DEBIAN12_OS_RELEASE), ("var/lib/dpkg/status", STATUS.encode())])
    app = layer_tar(
        [
            dist_info("requests", "2.28.1"),
            npm_package("lodash", "4.17.20"),
            Entry(
                "opt/app/lib/log4j-core-2.14.1.jar",
                jar([("org.apache.logging.log4j", "log4j-core", "2.14.1")]),
            ),
            Entry("opt/copy/log4j-core.jar", jar([("org.apache.logging.log4j", "log4j-core", "2.14.1")])),
        ]
    )
    return merge([read_layer(io.BytesIO(base)), read_layer(io.BytesIO(app))])


@pytest.fixture(scope="module")
def findings(image: ImageInventory) -> dict[tuple[str, str], Finding]:
    index = RecordIndex(OsvRecord.parse(r) for r in R.ALL)
    return {(f.id, f.package): f for f in match(image, index)}


def test_expected_findings_and_nothing_else(findings: dict[tuple[str, str], Finding]) -> None:
    assert set(findings) == {
        ("CVE-2024-28085", "bsdutils"),
        ("CVE-2024-28085", "mount"),
        ("CVE-2022-0563", "bsdutils"),
        ("CVE-2022-0563", "mount"),
        ("CVE-2023-4911", "libc6"),
        ("CVE-2023-4527", "libc6"),
        ("CVE-2023-4806", "libc6"),
        ("CVE-2021-44228", "org.apache.logging.log4j:log4j-core"),
        ("CVE-2023-32681", "requests"),
        ("CVE-2021-23337", "lodash"),
    }


def test_debian_matches_on_source_version_and_merges_dsa_into_the_cve(
    findings: dict[tuple[str, str], Finding],
) -> None:
    f = findings[("CVE-2024-28085", "bsdutils")]
    assert f.installed_version == "1:2.38.1-5+b1"  # binary epoch + binNMU, source is 2.38.1-5
    assert (f.source_name, f.source_version) == ("util-linux", "2.38.1-5")
    assert f.fixed_version == "2.38.1-5+deb12u1" and f.fixable
    assert f.data_source == ("DEBIAN-CVE-2024-28085", "DSA-5650-1")
    assert f.severity == "unknown" and f.score is None  # no vector anywhere: never "none"
    assert f.details.startswith("wall in util-linux")  # the CVE record's text, not the DSA title
    assert f.ecosystem == "Debian:12"
    assert f.purl == "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bb1?arch=amd64&distro=debian-12&upstream=util-linux"


def test_dsa_naming_several_cves_contributes_to_each(findings: dict[tuple[str, str], Finding]) -> None:
    looney = findings[("CVE-2023-4911", "libc6")]
    assert looney.data_source == ("DEBIAN-CVE-2023-4911", "DSA-5514-1")
    assert (looney.severity, looney.score, looney.cvss_vector) == ("high", 7.8, R.V31_GLIBC)
    assert looney.urgency == "high"
    other = findings[("CVE-2023-4806", "libc6")]
    assert other.data_source == ("DSA-5514-1",)
    assert other.fixed_version == "2.36-9+deb12u3" and other.summary == "glibc - security update"


def test_unimportant_urgency_is_reported_and_kept(findings: dict[tuple[str, str], Finding]) -> None:
    f = findings[("CVE-2022-0563", "mount")]
    assert f.urgency == "unimportant"
    assert (f.fixable, f.fixed_version, f.severity) == (False, "", "medium")


def test_language_findings_merge_aliases_and_carry_record_details(
    findings: dict[tuple[str, str], Finding],
) -> None:
    req = findings[("CVE-2023-32681", "requests")]
    assert req.data_source == ("GHSA-j8r2-6x86-q33q", "PYSEC-2023-74")
    assert set(req.aliases) == {"GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"}
    assert (req.fixed_version, req.score, req.severity) == ("2.31.0", 6.1, "medium")
    assert req.published == "2023-05-22T20:36:32Z" and req.modified == "2024-06-24T00:00:00Z"
    log4j = findings[("CVE-2021-44228", "org.apache.logging.log4j:log4j-core")]
    assert (log4j.severity, log4j.fixed_version) == ("critical", "2.15.0")
    assert {loc.path for loc in log4j.locations} == {
        "opt/app/lib/log4j-core-2.14.1.jar",
        "opt/copy/log4j-core.jar",
    }
    assert log4j.references == ("https://logging.apache.org/log4j/2.x/security.html",)
    lodash = findings[("CVE-2021-23337", "lodash")]
    assert lodash.data_source == ("GHSA-35jh-r3h4-6jhm",)  # the withdrawn duplicate did not contribute


def test_advisories_without_cve_that_alias_each_other_are_one_finding(image: ImageInventory) -> None:
    a = {
        "id": "GHSA-aaaa",
        "aliases": ["PYSEC-2099-1"],
        "affected": [{"package": {"ecosystem": "PyPI", "name": "requests"}, "versions": ["2.28.1"]}],
    }
    b = {
        "id": "PYSEC-2099-1",
        "aliases": ["GHSA-aaaa"],
        "affected": [{"package": {"ecosystem": "PyPI", "name": "requests"}, "versions": ["2.28.1"]}],
    }
    found = match(image, RecordIndex([OsvRecord.parse(a), OsvRecord.parse(b)]))
    assert [(f.id, f.data_source, f.fixable) for f in found] == [
        ("GHSA-aaaa", ("GHSA-aaaa", "PYSEC-2099-1"), False)
    ]


def test_a_memo_answers_again_only_for_the_same_records(
    image: ImageInventory, findings: dict[tuple[str, str], Finding], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Images on one base ask the same (key, version) questions: a memo answers them without
    evaluating the records again, until a record changes (a new ``modified``)."""
    memo = MatchMemo()
    records = [OsvRecord.parse(r) for r in R.ALL]
    first = match(image, RecordIndex(records), memo)
    assert {(f.id, f.package): f for f in first} == findings
    evaluated: list[str] = []
    real = matcher.record_hits

    def counting(record: OsvRecord, *args: str) -> list[Any]:
        evaluated.append(record.id)
        return real(record, *args)

    monkeypatch.setattr(matcher, "record_hits", counting)
    assert match(image, RecordIndex(records), memo) == first
    assert evaluated == []

    rescored = copy.deepcopy(R.DEBIAN_CVE_2023_4911)
    rescored["modified"] = "2025-01-01T00:00:00Z"
    rescored["severity"] = [{"type": "CVSS_V3", "score": R.V31_LOG4SHELL}]
    changed = [OsvRecord.parse(rescored) if r.id == rescored["id"] else r for r in records]
    again = {(f.id, f.package): f for f in match(image, RecordIndex(changed), memo)}
    assert findings[("CVE-2023-4911", "libc6")].severity == "high"
    assert again[("CVE-2023-4911", "libc6")].severity == "critical"
    assert "DEBIAN-CVE-2023-4911" in evaluated and "GHSA-jfh8-c2jp-5v3q" not in evaluated


def test_a_full_memo_starts_again() -> None:
    memo = MatchMemo(size=2)
    for n in range(3):
        memo.put(n, [])
    assert memo.get(2) == [] and memo.get(0) is None


def test_lookup_keys_use_source_names_and_normalised_names(image: ImageInventory) -> None:
    assert lookup_keys(image) == {
        ("Debian:12", "util-linux"),
        ("Debian:12", "glibc"),
        ("Debian:12", "bash"),
        ("PyPI", "requests"),
        ("npm", "lodash"),
        ("Maven", "org.apache.logging.log4j:log4j-core"),
    }


def test_findings_round_trip_through_json(findings: dict[tuple[str, str], Finding]) -> None:
    for f in findings.values():
        assert Finding.from_json(json.loads(json.dumps(f.to_json()))) == f


def test_unknown_ecosystem_never_matches() -> None:
    image = merge([read_layer(io.BytesIO(layer_tar([("var/lib/dpkg/status", STATUS.encode())])))])  # no OS
    assert lookup_keys(image) == set()
    assert match(image, RecordIndex(OsvRecord.parse(r) for r in R.ALL)) == []


def test_alpine_matches_the_origin_package() -> None:
    installed = "P:libcrypto3\nV:3.1.4-r4\nA:x86_64\no:openssl\n\nP:musl\nV:1.2.4_git20230717-r4\no:musl\n"
    layer = layer_tar(
        [("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n"), ("lib/apk/db/installed", installed.encode())]
    )
    image = merge([read_layer(io.BytesIO(layer))])
    # CVE-2024-0727 (PKCS#12 NULL dereference): Alpine 3.19 fixed it in openssl 3.1.4-r5.
    record = {
        "id": "ALPINE-CVE-2024-0727",
        "upstream": ["CVE-2024-0727"],
        "affected": [
            {
                "package": {"ecosystem": "Alpine:v3.19", "name": "openssl"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.4-r5"}]}],
            }
        ],
    }
    found = match(image, RecordIndex([OsvRecord.parse(record)]))
    assert [(f.id, f.package, f.fixed_version, f.ecosystem) for f in found] == [
        ("CVE-2024-0727", "libcrypto3", "3.1.4-r5", "Alpine:v3.19")
    ]
    assert lookup_keys(image) == {("Alpine:v3.19", "openssl"), ("Alpine:v3.19", "musl")}


def test_rpm_packages_match_by_binary_name_and_epoch_version(tmp_path: Path) -> None:
    from cargobay.scanning.catalogers import rpm

    header = rpm_header(
        {
            rpm.TAG_NAME: "openssl-libs",
            rpm.TAG_EPOCH: 1,
            rpm.TAG_VERSION: "3.0.7",
            rpm.TAG_RELEASE: "24.el9",
            rpm.TAG_ARCH: "x86_64",
            rpm.TAG_SOURCERPM: "openssl-3.0.7-24.el9.src.rpm",
        }
    )
    layer = layer_tar(
        [
            ("etc/os-release", b'ID="rocky"\nVERSION_ID="9.3"\n'),
            ("var/lib/rpm/rpmdb.sqlite", rpmdb(tmp_path, [header])),
        ]
    )
    image = merge([read_layer(io.BytesIO(layer))])
    assert [(p.ecosystem, p.match_name, p.match_version) for p in image.packages] == [
        ("Rocky Linux:9", "openssl-libs", "1:3.0.7-24.el9")
    ]
    # A test record in the shape of Rocky's OSV data (binary rpm names, epoch in the fixed version).
    record = {
        "id": "RLSA-TEST-0001",
        "aliases": ["CVE-2023-5678"],
        "affected": [
            {
                "package": {"ecosystem": "Rocky Linux:9", "name": "openssl-libs"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0.7-25.el9_3"}]}
                ],
            }
        ],
    }
    found = match(image, RecordIndex([OsvRecord.parse(record)]))
    assert [(f.id, f.package, f.fixed_version) for f in found] == [
        ("CVE-2023-5678", "openssl-libs", "1:3.0.7-25.el9_3")
    ]
