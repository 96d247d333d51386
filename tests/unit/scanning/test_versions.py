from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from univers import debian
from univers.versions import DebianVersion, InvalidVersion

from cargobay.scanning import versions

DPKG_STATUS = Path(__file__).parent / "fixtures" / "debian12-dpkg-status"


@pytest.mark.parametrize(
    ("scheme", "a", "b", "expected"),
    [
        (versions.DPKG, "1:2.38.1-5+deb12u3", "2.38.1-5+deb12u4", 1),  # epoch wins
        (versions.DPKG, "1.0~rc1", "1.0", -1),
        (versions.DPKG, "1.0~rc1-1", "1.0-1", -1),
        (versions.DPKG, "2.36-9+deb12u10", "2.36-9+deb12u9", 1),
        (versions.DPKG, "5.2.15-2+b13", "5.2.15-2", 1),  # binNMU
        (versions.DPKG, "252.39-1~deb12u2", "252.39-1", -1),
        (versions.DPKG, "1.0", "1.0-0", 0),
        (versions.APK, "1.2.3-r0", "1.2.3_p1-r1", -1),
        (versions.APK, "1.2.3_rc1-r0", "1.2.3-r0", -1),
        (versions.APK, "1.2.3-r9", "1.2.3-r10", -1),
        (versions.RPM, "0:1.2-3.el9", "1.2-3.el9", 0),
        (versions.RPM, "1:1.0-1.el9", "2.0-1.el9", 1),
        (versions.RPM, "1.2-3.el9", "1.2-3.el9_1", -1),
        (versions.RPM, "1.0~rc1-1", "1.0-1", -1),
        (versions.PEP440, "1.0rc1", "1.0", -1),
        (versions.PEP440, "1.0.post1", "1.0", 1),
        (versions.PEP440, "1!1.0", "2.0", 1),
        (versions.PEP440, "2.0.0", "2.0", 0),
        (versions.PEP440, "1.0-RC1", "1.0rc1", 0),
        (versions.SEMVER, "1.0.0-rc.1", "1.0.0", -1),
        (versions.SEMVER, "1.2.3", "1.10.0", -1),
        (versions.SEMVER, "4.17.20", "4.17.21", -1),
        (versions.GO, "v0.13.0", "0.17.0", -1),
        (versions.GO, "v0.0.0-20230101000000-abcdef123456", "0.1.0", -1),
        (versions.GO, "v2.0.0+incompatible", "2.0.1", -1),
        (versions.MAVEN, "1.0-SNAPSHOT", "1.0", -1),
        (versions.MAVEN, "2.14.1", "2.3.0", 1),
        (versions.MAVEN, "2.0-beta9", "2.0", -1),
    ],
)
def test_ordering(scheme: str, a: str, b: str, expected: int) -> None:
    assert versions.compare(scheme, a, b) == expected


@pytest.mark.parametrize(
    ("scheme", "bad"),
    [
        (versions.DPKG, ""),
        (versions.DPKG, "not a version!"),
        (versions.APK, "abc"),
        (versions.GO, "(devel)"),
        (versions.SEMVER, "latest"),
        (versions.PEP440, "2.36-9+deb12u3x~"),
        (versions.MAVEN, ""),
    ],
)
def test_invalid_versions_compare_as_unknown(scheme: str, bad: str) -> None:
    assert versions.compare(scheme, bad, "1.0") is None


@pytest.mark.parametrize(
    ("ecosystem", "scheme"),
    [
        ("Debian:12", versions.DPKG),
        ("Ubuntu:22.04:LTS", versions.DPKG),
        ("Alpine:v3.19", versions.APK),
        ("Rocky Linux:9", versions.RPM),
        ("Red Hat", versions.RPM),
        ("PyPI", versions.PEP440),
        ("npm", versions.SEMVER),
        ("Go", versions.GO),
        ("Maven", versions.MAVEN),
        ("Packagist", None),
        ("", None),
    ],
)
def test_ecosystem_schemes_and_unknown_ecosystems(ecosystem: str, scheme: str | None) -> None:
    assert versions.scheme_of(ecosystem) == scheme


def _univers_order(a: str, b: str) -> int | None:
    """univers' own dpkg comparison, which ``versions`` orders by a precomputed key instead."""
    try:
        return int(debian.compare_versions(DebianVersion(a).value, DebianVersion(b).value))
    except InvalidVersion:
        return None


def _dpkg_agrees_with_univers(a: str, b: str) -> None:
    assert versions.compare(versions.DPKG, a, b) == _univers_order(a, b), (a, b)
    ka, kb = versions.parse(versions.DPKG, a), versions.parse(versions.DPKG, b)
    if ka is not None and kb is not None:
        assert (ka == kb) == (DebianVersion(a) == DebianVersion(b)), (a, b)  # univers' equality: same strings


_DPKG_TAILS = st.text(alphabet="0123456789~.+-azAZ", max_size=6)
_DPKG_VERSIONS = st.builds(
    lambda epoch, first, rest: f"{epoch}{first}{rest}",
    st.sampled_from(["", "", "0:", "1:", "12:"]),
    st.sampled_from("0123456789"),
    _DPKG_TAILS,
)


@settings(max_examples=1000, deadline=None)
@given(_DPKG_VERSIONS, _DPKG_TAILS, _DPKG_TAILS)
def test_dpkg_order_is_univers_order(common: str, a: str, b: str) -> None:
    """Two versions sharing a start (where the ends of texts and the tildes decide), and two unrelated."""
    _dpkg_agrees_with_univers(common + a, common + b)
    _dpkg_agrees_with_univers(common + a, b and f"{b[0] if b[0].isdigit() else 1}{b}")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("0", "0~"),
        ("0.1", "0~"),
        ("1.0", "1.00"),
        ("1.0", "1.0~"),
        ("1.0a", "1.0a0"),
        ("1.0-", "1.0"),
        ("1.0~~", "1.0~~a"),
        ("1:0", "0:9"),
        ("1.0+dfsg-1", "1.0-1"),
        ("1.0-1-1", "1.0-1"),
        ("0a", "1"),
        ("2.36-9+deb12u9", "2.36-9+deb12u10"),
    ],
)
def test_dpkg_edges_order_as_univers(a: str, b: str) -> None:
    _dpkg_agrees_with_univers(a, b)
    _dpkg_agrees_with_univers(b, a)


def test_dpkg_order_of_every_pair_of_a_real_bookworm_status_is_univers_order() -> None:
    found = re.findall(r"^(?:Version: |Source: \S+ \()([^)\s]+)", DPKG_STATUS.read_text(), re.MULTILINE)
    real = sorted(set(found))
    assert len(real) > 50
    for a, b in itertools.product(real, repeat=2):
        _dpkg_agrees_with_univers(a, b)
