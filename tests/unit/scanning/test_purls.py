from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packageurl import PackageURL

from cargobay.scanning.facts import Package
from cargobay.scanning.purls import fast_purl, package_purl, pypi_name

component = st.text(string.ascii_letters + string.digits + ".-_~:+@/ %é", min_size=1, max_size=12)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["deb", "apk", "rpm", "pypi", "npm", "golang", "maven"]),
    st.none() | component,
    component,
    st.none() | component,
    st.none()
    | st.dictionaries(st.sampled_from(["arch", "distro", "epoch", "upstream"]), component, max_size=4),
)
def test_fast_purl_is_what_packageurl_writes(
    kind: str, namespace: str | None, name: str, version: str | None, qualifiers: dict[str, str] | None
) -> None:
    fast = fast_purl(kind, namespace, name, version, qualifiers)
    if fast is None:
        return  # left to packageurl
    try:
        expected = PackageURL(
            type=kind, namespace=namespace, name=name, version=version, qualifiers=qualifiers
        ).to_string()
    except ValueError:
        pytest.fail(f"fast path accepted what packageurl refuses: {fast}")
    assert fast == expected


@pytest.mark.parametrize(
    ("pkg", "os_id", "os_version", "purl"),
    [
        (
            Package("deb", "bsdutils", "1:2.38.1-5+b1", "util-linux", "2.38.1-5", "amd64"),
            "debian",
            "12",
            "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bb1?arch=amd64&distro=debian-12&upstream=util-linux",
        ),
        (
            Package("apk", "libcrypto3", "3.1.4-r5", "openssl", arch="x86_64"),
            "alpine",
            "3.19.1",
            "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1",
        ),
        (
            Package("rpm", "openssl-libs", "1:3.0.7-24.el9", arch="x86_64"),
            "rhel",
            "9.3",
            "pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?arch=x86_64&distro=rhel-9.3&epoch=1",
        ),
        (Package("pypi", "Zope_Interface", "6.0"), "", "", "pkg:pypi/zope-interface@6.0"),
        (Package("npm", "@babel/core", "7.0.0"), "", "", "pkg:npm/%40babel/core@7.0.0"),
        (Package("golang", "golang.org/x/net", "v0.13.0"), "", "", "pkg:golang/golang.org/x/net@v0.13.0"),
        (
            Package("maven", "org.apache.logging.log4j:log4j-core", "2.14.1"),
            "",
            "",
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
        ),
    ],
)
def test_package_purls(pkg: Package, os_id: str, os_version: str, purl: str) -> None:
    assert package_purl(pkg, os_id, os_version) == purl


def test_pep503_names() -> None:
    assert [pypi_name(n) for n in ("Jinja2", "zope.interface", "A__b--c", "PyYAML")] == [
        "jinja2",
        "zope-interface",
        "a-b-c",
        "pyyaml",
    ]
