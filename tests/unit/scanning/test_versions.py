from __future__ import annotations

import pytest

from cargobay.scanning import versions


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
